"""Which transactions `fraud serve` accepts: event-time rules and bounds, checked before anything is scored.

Event time (`AdmissionConfig`):
- future: a timestamp later than the service clock plus `max_skew` (default 5 min) is refused. The clock is the
  machine's UTC clock (`clock="wall"`, live traffic) or, for replaying historical files (`clock="replay"`), the
  newest timestamp absorbed, advancing with the accepted rows of the request in time order (so a replayed
  file's consecutive rows may be at most `max_skew` apart);
- late: a timestamp up to `lateness` (default 1 h) behind the newest transaction absorbed is accepted and
  scored as of its own time (`fraud.serve.live_history`: the same score it would have had in order); more
  than that is refused, as is anything before the end of the model's stored history;
- bounds: amounts above `max_amount` (default 1e9, far above any training amount: it keeps every integer sum
  of the state exact) and timestamps outside 1970-2199 are refused.

Every refusal is (row index, field, message naming the value and the fix); the service answers 422 with all of
them and absorbs nothing of that request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from fraud.data.durations import NS, parse_duration

CLOCKS = ("wall", "replay")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
YEARS = (1970, 2200)  # accepted timestamp years [from, to): far inside int64 nanoseconds


@dataclass
class AdmissionConfig:
    """Event-time rules and bounds of the service (`fraud serve --clock --max-skew --lateness --max-amount`)."""

    clock: str = "wall"
    max_skew: str = "5m"
    lateness: str = "1h"
    max_amount: float = 1e9

    def __post_init__(self):
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        for name in ("max_skew", "lateness"):
            value = getattr(self, name)
            if str(value).strip() != "0":
                parse_duration(value)
        if not 0 < self.max_amount <= 1e12:
            raise ValueError(f"max_amount must be in (0, 1e12] (amounts become int64 cents), got {self.max_amount}")

    @property
    def skew_ns(self) -> int:
        return 0 if str(self.max_skew).strip() == "0" else parse_duration(self.max_skew) * NS

    @property
    def lateness_ns(self) -> int:
        return 0 if str(self.lateness).strip() == "0" else parse_duration(self.lateness) * NS

    def describe(self) -> dict:
        return {"clock": self.clock, "max_skew": self.max_skew, "lateness": self.lateness,
                "max_amount": self.max_amount}


def to_ns(ts: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, in exact integers (no float, no overflow)."""
    delta = ts - EPOCH
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def check_rows(t_ns: np.ndarray, amount: np.ndarray, cfg: AdmissionConfig, newest_ns: int | None,
               floor_ns: int | None, now_ns: int) -> list[tuple[int, str, str]]:
    """Refusals (row, field, message) of a request's rows by the rules above.

    t_ns [n] int64 ns and amount [n] in request order; newest_ns: the newest absorbed timestamp (None: none);
    floor_ns: the end of the model's stored history; now_ns: the machine's clock.
    """
    out: list[tuple[int, str, str]] = []
    if not len(t_ns):
        return out
    big = np.flatnonzero(amount > cfg.max_amount)
    for i in big.tolist():
        out.append((i, "amount", f"amount {amount[i]:g} is above this service's maximum {cfg.max_amount:g}; "
                                 "check the amount's unit (or start the service with a larger --max-amount)"))
    floors = [(f, kind) for f, kind in ((floor_ns, "model"),
                                        (None if newest_ns is None else newest_ns - cfg.lateness_ns, "late"))
              if f is not None]
    floor, kind = max(floors) if floors else (None, None)
    order = np.argsort(t_ns, kind="stable")
    limit = (now_ns if cfg.clock == "wall" else (newest_ns if newest_ns is not None else int(t_ns[order[0]])))
    limit += cfg.skew_ns
    for i in order.tolist():
        t = int(t_ns[i])
        if t > limit:
            clock = "the service clock" if cfg.clock == "wall" else "the newest transaction seen"
            out.append((i, "timestamp", f"timestamp {_iso(t)} is later than {clock} ({_iso(limit - cfg.skew_ns)}) "
                                        f"plus the allowed skew {cfg.max_skew}; check the sender's clock"
                                        + (" (a replayed file's consecutive rows may be at most --max-skew apart)"
                                           if cfg.clock == "replay" else "")))
        elif cfg.clock == "replay":
            limit = max(limit, t + cfg.skew_ns)
        if floor is not None and t < floor:
            if kind == "late":
                msg = (f"timestamp {_iso(t)} is more than the allowed lateness {cfg.lateness} behind the newest "
                       f"transaction absorbed ({_iso(newest_ns)}): it can no longer be scored as of its own time "
                       "(start the service with a larger --lateness to accept later arrivals)")
            else:
                msg = (f"timestamp {_iso(t)} is before the end of the model's stored history ({_iso(floor)}); "
                       "the service scores transactions after the model's training data")
            out.append((i, "timestamp", msg))
    return sorted(out)
