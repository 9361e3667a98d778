"""The threat model: what a fraudster controls on their own fraudulent transactions, within which budget.

An attacker who sends a fraudulent payment chooses, for that payment only:

| control | budget (ThreatModel field) | raw fields it moves |
|---|---|---|
| amount | `amount_rel`: new total within [1 - r, 1 + r] x the original amount | amount |
| timing | `time_shift`: each part sent within +-window of the original time | timestamp |
| splitting | `max_splits`: one payment sent as up to k parts (new ids), parts summing to the (budgeted) total | transaction_id, amount, timestamp |
| labels of choice | `choice_fields`: e.g. merchant category or channel, any value seen in the data | that column |

They cannot touch: source and target (who pays whom: their account history and the counterparty's),
anyone else's transactions, the history the model stored, or the graph built before they act. Every
derived feature (velocity windows, z-scores, snapshot graph, GNN embedding) is recomputed by the real
pipeline from the edited raw rows, so derived features move exactly as far as the raw edit moves them.

Named presets (`PRESETS`) say which controls are on; `ThreatModel.scaled(b)` multiplies every budget by
`b` (the `--budget` of `fraud attack`): amount and timing linearly, extra parts `round((max_splits-1) b)`.

An `Edits` object holds one candidate edit per attacked row; `apply_edits(df, rows, edits, tm)` returns
the edited canonical frame plus, per output row, the index of the original row it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fraud.data.durations import NS, parse_duration
from fraud.data.frame import validate

MIN_PART = 0.01  # smallest part of a split payment (one cent)


@dataclass
class ThreatModel:
    """Controls and budgets of an attacker on their own fraudulent rows (see the module docstring)."""

    amount_rel: float = 0.3
    time_shift: str = "6h"
    max_splits: int = 3
    choice_fields: list[str] = field(default_factory=lambda: ["category", "channel"])

    def __post_init__(self):
        if not 0 <= self.amount_rel < 1:
            raise ValueError(f"threat.amount_rel must be in [0, 1) (a relative change of the amount), "
                             f"got {self.amount_rel}")
        if self.max_splits < 1:
            raise ValueError(f"threat.max_splits must be >= 1 (1 = no splitting), got {self.max_splits}")
        parse_duration(self.time_shift)

    @property
    def shift_ns(self) -> int:
        return parse_duration(self.time_shift) * NS

    def scaled(self, budget: float) -> ThreatModel:
        """The same controls with every budget multiplied by `budget` (>= 0)."""
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        secs = int(round(parse_duration(self.time_shift) * budget))
        return replace(self, amount_rel=min(self.amount_rel * budget, 0.99), time_shift=f"{secs}s",
                       max_splits=1 + int(round((self.max_splits - 1) * budget)))


# When to use each: "amount" for a fraudster who only scales payments (the cheapest change), "timing" for one
# who waits for business hours, "split" for one who structures a payment, "full" for all of them at once
# (the table's default: the strongest attacker the threat model allows).
PRESETS: dict[str, ThreatModel] = {
    "amount": ThreatModel(amount_rel=0.3, time_shift="0s", max_splits=1, choice_fields=[]),
    "timing": ThreatModel(amount_rel=0.0, time_shift="6h", max_splits=1, choice_fields=[]),
    "split": ThreatModel(amount_rel=0.0, time_shift="1h", max_splits=3, choice_fields=[]),
    "full": ThreatModel(),
}


def preset(name: str) -> ThreatModel:
    """The named threat model (a copy), with a clear error for unknown names."""
    if name not in PRESETS:
        raise ValueError(f"unknown threat model {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], choice_fields=list(PRESETS[name].choice_fields))


@dataclass
class Edits:
    """One edit per attacked row (n rows, up to K = max_splits parts each).

    factor [n]: total amount multiplier; parts [n] int in 1..K; weights [n, K]: share of the total per part
    (rows sum to 1 over the first `parts`); shifts [n, K] int64 ns: time shift of each part;
    choices {field: [n] object}: chosen value per field (None = keep).
    """

    factor: np.ndarray
    parts: np.ndarray
    weights: np.ndarray
    shifts: np.ndarray
    choices: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.factor)

    @classmethod
    def identity(cls, n: int, tm: ThreatModel) -> Edits:
        k = tm.max_splits
        w = np.zeros((n, k))
        w[:, 0] = 1.0
        return cls(np.ones(n), np.ones(n, np.int64), w, np.zeros((n, k), np.int64), {})

    def take(self, mask: np.ndarray, other: Edits) -> Edits:
        """Rows where `mask` is true from `other`, the rest from self (a new object)."""
        m2 = mask[:, None]
        ch = {}
        for f in sorted(set(self.choices) | set(other.choices)):  # an order that is the same in every process
            a = self.choices.get(f, np.full(len(self), None, object))
            b = other.choices.get(f, np.full(len(self), None, object))
            ch[f] = np.where(mask, b, a)
        return Edits(np.where(mask, other.factor, self.factor), np.where(mask, other.parts, self.parts),
                     np.where(m2, other.weights, self.weights), np.where(m2, other.shifts, self.shifts), ch)

    def copy(self) -> Edits:
        return Edits(self.factor.copy(), self.parts.copy(), self.weights.copy(), self.shifts.copy(),
                     {k: v.copy() for k, v in self.choices.items()})


def random_edits(n: int, tm: ThreatModel, rng: np.random.Generator, options: dict[str, np.ndarray] | None = None,
                 base: Edits | None = None, step: float = 1.0, sparse: bool = False) -> Edits:
    """Random edits inside the budget: uniform over the budget box (step=1), or a move of relative size
    `step` around `base` (projected back into the budget).

    `sparse` (step=1 only): each control (amount, splitting, timing, choice) is used with probability 1/2
    (at least one per edit), so edits on the box's faces, such as a shift alone, are drawn as often as
    full ones. A uniform draw almost always splits and moves the amount too, and on the benchmark a
    search over the shift alone evades far more often than one over the whole box."""
    k = tm.max_splits
    r, w_ns = tm.amount_rel, tm.shift_ns
    if base is None or step >= 1:
        factor = rng.uniform(1 - r, 1 + r, n)
        parts = rng.integers(1, k + 1, n)
        shifts = rng.integers(-w_ns, w_ns + 1, (n, k)) if w_ns else np.zeros((n, k), np.int64)
        raw = rng.dirichlet(np.ones(k), n) if k > 1 else np.ones((n, 1))
    else:
        factor = np.clip(base.factor + rng.normal(0, step * max(r, 1e-12), n), 1 - r, 1 + r)
        parts = np.clip(base.parts + rng.integers(-1, 2, n), 1, k)
        jitter = rng.normal(0, step * max(w_ns, 1), (n, k)).astype(np.int64) if w_ns else 0
        shifts = np.clip(base.shifts + jitter, -w_ns, w_ns)
        raw = np.clip(base.weights + rng.normal(0, step * 0.3, (n, k)), 1e-3, None) if k > 1 else np.ones((n, 1))
    choices = {}
    for f, values in (options or {}).items():
        if f in tm.choice_fields and len(values):
            choices[f] = rng.choice(values, n)
    if sparse and (base is None or step >= 1):
        factor, parts, shifts, choices = _sparse(rng, n, tm, factor, parts, shifts, choices)
    mask = np.arange(k)[None, :] < parts[:, None]
    w = np.where(mask, raw, 0.0)
    w = w / w.sum(axis=1, keepdims=True)
    return Edits(factor, parts.astype(np.int64), w, np.asarray(shifts, np.int64), choices)


def _sparse(rng, n: int, tm: ThreatModel, factor, parts, shifts, choices):
    """The drawn edits with each enabled control switched off (no change) with probability 1/2, keeping
    at least one control on per edit."""
    enabled = np.array([tm.amount_rel > 0, tm.max_splits > 1, tm.shift_ns > 0, bool(choices)])
    if not enabled.any():
        return factor, parts, shifts, choices
    on = (rng.random((n, 4)) < 0.5) & enabled
    idx = np.flatnonzero(enabled)
    none = ~on.any(axis=1)
    on[np.flatnonzero(none), rng.choice(idx, int(none.sum()))] = True
    factor = np.where(on[:, 0], factor, 1.0)
    parts = np.where(on[:, 1], rng.integers(2, max(tm.max_splits, 2) + 1, n), 1)  # "on" always splits
    shifts = np.where(on[:, 2, None], shifts, 0)
    choices = {f: np.where(on[:, 3], v, None) for f, v in choices.items()}
    return factor, parts, shifts, choices


def choice_options(df: pd.DataFrame, tm: ThreatModel) -> dict[str, np.ndarray]:
    """Values the attacker may pick per controllable field present in `df` (the values seen in the data)."""
    return {f: np.asarray(sorted(df[f].dropna().astype(str).unique()), dtype=object)
            for f in tm.choice_fields if f in df.columns}


def apply_edits(df: pd.DataFrame, rows: np.ndarray, edits: Edits, tm: ThreatModel,
                bounds: tuple[int, int] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The canonical frame with `edits` applied to rows `rows` (positions in `df`), sorted by time.

    Split parts get ids `<id>~p<j>` (j >= 1; part 0 keeps the id) and copy every other column of the row.
    Timestamps are clipped into `bounds` = (lo_ns, hi_ns) (e.g. the scored period, after the model's stored
    history). Returns (frame, origin): origin[i] = position in `df` of the row output row i came from.
    """
    rows = np.asarray(rows, np.int64)
    if len(rows) != len(edits):
        raise ValueError(f"{len(edits)} edits for {len(rows)} rows")
    n = len(df)
    k_max = edits.weights.shape[1]
    parts = np.clip(edits.parts, 1, min(tm.max_splits, k_max))
    # Row j of the attacked set expands into parts[j] output rows.
    rep = np.ones(n, np.int64)
    rep[rows] = parts
    origin = np.repeat(np.arange(n), rep)
    out = df.iloc[origin].reset_index(drop=True).copy()
    which = np.full(n, -1, np.int64)
    which[rows] = np.arange(len(rows))
    j_of = which[origin]  # attacked-set index of each output row (-1 = untouched)
    part_no = np.zeros(len(origin), np.int64)
    start = np.r_[0, np.cumsum(rep)[:-1]]
    part_no = np.arange(len(origin)) - np.repeat(start, rep)
    hit = j_of >= 0
    jj, pp = j_of[hit], part_no[hit]
    total = df["amount"].to_numpy(np.float64)[rows] * np.clip(edits.factor, 1 - tm.amount_rel, 1 + tm.amount_rel)
    amount = out["amount"].to_numpy(np.float64).copy()
    split = _split_amounts(total, edits.weights, parts)
    split[parts == 1, 0] = total[parts == 1]  # one part: the exact (unrounded) scaled amount
    amount[hit] = split[jj, pp]
    out["amount"] = amount
    t = out["timestamp"].dt.as_unit("ns").astype("int64").to_numpy().copy()
    shift = np.clip(edits.shifts[jj, pp], -tm.shift_ns, tm.shift_ns)
    t_new = t[hit] + shift
    if bounds is not None:
        t_new = np.clip(t_new, bounds[0], bounds[1])
    t[hit] = t_new
    out["timestamp"] = pd.to_datetime(t, utc=True).as_unit("ns")
    ids = out["transaction_id"].astype("string").to_numpy(dtype=object).copy()
    extra = hit.copy()
    extra[hit] = pp > 0
    ids[extra] = [f"{i}~p{p}" for i, p in zip(ids[extra], part_no[extra], strict=True)]
    out["transaction_id"] = pd.array(ids, dtype="string")
    for f, vals in edits.choices.items():
        if f in out.columns and f in tm.choice_fields:
            v = vals[jj]
            keep = pd.isna(v)
            col = out[f].astype(object).to_numpy().copy()
            col[np.flatnonzero(hit)[~keep]] = v[~keep]
            out[f] = pd.array(col, dtype=df[f].dtype) if str(df[f].dtype) == "string" else col
    order = np.argsort(t, kind="stable")
    return out.iloc[order].reset_index(drop=True), origin[order]


def _split_amounts(total: np.ndarray, weights: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """[n, K] part amounts in cents: the first parts[i] sum exactly to round(total[i], 2), each >= MIN_PART
    when the total allows it."""
    n, k = weights.shape
    mask = np.arange(k)[None, :] < parts[:, None]
    w = np.where(mask, np.clip(weights, 0, None), 0.0)
    s = w.sum(axis=1, keepdims=True)
    w = np.where(s > 0, w / np.where(s > 0, s, 1), mask / parts[:, None])
    cents = np.rint(np.round(total, 2) * 100).astype(np.int64)
    floor_each = np.minimum(int(MIN_PART * 100), cents // np.maximum(parts, 1))
    spare = cents - floor_each * parts
    alloc = np.floor(w * spare[:, None]).astype(np.int64)
    alloc[np.arange(n), parts - 1] += spare - alloc.sum(axis=1)  # last part takes the rounding remainder
    return np.where(mask, (alloc + floor_each[:, None]) / 100.0, 0.0)


def check_canonical(df: pd.DataFrame, where: str = "attacked data") -> None:
    """Raise SchemaError (a ValueError) unless `df` is a canonical frame (`fraud.data.frame.validate`)."""
    validate(df, where)
