"""Bounded service state: checkpoints of the folded totals, so the store can forget old transactions.

    live, replayed = restore(model, store, lateness_s)     # the live history the store describes
    pruner = Pruner(PruneConfig(), store)
    pruner.maybe(live)                                      # after each absorbing pass: checkpoint + prune

Features read raw rows only inside the longest window (plus the lateness): older rows live on as exact integer
totals per entity and per pair (`fraud.serve.live_history`), folded in absorption order, so what is folded is
always a prefix of the store's `seq` order. A checkpoint writes those totals and that prefix's end (the
store's seq of the last folded row, and how many of the model's own history rows are folded) in one SQLite
transaction; a restart then loads the checkpoint and replays only the rows after it, which rebuilds exactly
the state an uninterrupted run holds (tested).

What the store keeps of a folded row is its idempotency record: transaction ids (with payload and result)
are remembered for `remember_ids` of event time behind the newest transaction (default 7 days, at least the
lateness), so a retry within that time gets its stored answer. An id older than that could not be absorbed
anyway (it is past the lateness: 422), so forgetting it changes no score. Labels are never pruned (the
label book keeps every label). The store then holds the last `remember_ids` of transactions plus at most
`checkpoint_every` rows absorbed since the last checkpoint, and the totals (one row per entity and role and
per pair).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd

from fraud.data.durations import NS, parse_duration
from fraud.features.history import History
from fraud.serve.live_history import LiveHistory
from fraud.serve.store import StateStore, canonical_rows

log = logging.getLogger("fraud.serve.pruning")
RESTORE_ROWS = 200_000  # rows replayed per update at start-up (bounds the memory of a restore)


@dataclass
class PruneConfig:
    """How long ids are remembered and how often the totals are checkpointed (`fraud serve --remember-ids
    --checkpoint-every`)."""

    remember_ids: str = "7d"
    # A checkpoint writes every entity's and pair's totals (~0.1-0.5 s for ~100k rows): the request that
    # triggers it waits, once per this many absorbed transactions. 0: never (the store keeps everything).
    checkpoint_every: int = 100_000

    def __post_init__(self):
        parse_duration(self.remember_ids)
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")

    @property
    def remember_ns(self) -> int:
        return parse_duration(self.remember_ids) * NS


def restore(model, store: StateStore, lateness_s: int = 0) -> tuple[LiveHistory, int, dict]:
    """(live history, rows replayed, where it started: the checkpoint's seq and base_folded): the model's
    history, then the store's checkpoint (if any), then the store's rows after it in absorption order."""
    ck = store.checkpoint()
    base = model.history_
    if ck is not None:
        entities, pairs, meta = ck
        base = History(base.tail_seconds, base.tail.iloc[meta["base_folded"]:].reset_index(drop=True), entities,
                       pairs, meta["cutoff_ns"], meta["max_ns"])
    live = LiveHistory(base, lateness_s=lateness_s)
    start = {"seq": ck[2]["seq"] if ck is not None else 0, "base_folded": ck[2]["base_folded"] if ck else 0}
    tx = store.transactions(after=start["seq"])
    for a in range(0, len(tx), RESTORE_ROWS):
        live.update(canonical_rows(tx.iloc[a:a + RESTORE_ROWS]))
    return live, len(tx), start


class Pruner:
    """Writes a checkpoint of `live` every `checkpoint_every` absorbed rows and deletes what it made
    unnecessary (module docstring)."""

    def __init__(self, cfg: PruneConfig, store: StateStore, live: LiveHistory, start: dict):
        self.cfg, self.store = cfg, store
        self.since = 0
        self.last: dict | None = None
        # live's events: its n_base base rows (the model's history rows not folded at `start`), then the store's
        # rows after start["seq"] in seq order; `ref` maps folded store positions to store seqs.
        self.n_base, self.base_folded = live.n_base, start["base_folded"]
        self.ref_seq, self.ref_pos = start["seq"], 0

    def absorbed(self, n: int, live: LiveHistory) -> None:
        """Count `n` rows absorbed into `live`; checkpoint when `checkpoint_every` have been since the last."""
        self.since += n
        if self.cfg.checkpoint_every and self.since >= self.cfg.checkpoint_every:
            self.checkpoint(live)

    def checkpoint(self, live: LiveHistory) -> dict:
        """Write `live`'s folded totals and prune the store; returns what it did."""
        t0 = time.perf_counter()
        folded = live.folded  # events folded since `live` was built: first its base rows, then store rows
        base_folded = self.base_folded + min(folded, self.n_base)
        from_store = max(folded - self.n_base, 0)
        seq = self.store.seq_after(self.ref_seq, from_store - self.ref_pos)
        entities, pairs = live.totals()
        keep_from = None if live.max_ns is None else live.max_ns - self.cfg.remember_ns
        pruned = self.store.write_checkpoint(entities, pairs, {
            "seq": seq, "base_folded": base_folded, "cutoff_ns": live.cutoff_ns, "max_ns": live.max_ns},
            prune_before_ns=keep_from)
        self.since, self.ref_seq, self.ref_pos = 0, seq, from_store
        self.last = {"seq": seq, "entities": len(entities), "pairs": len(pairs), "pruned": pruned,
                     "seconds": round(time.perf_counter() - t0, 3),
                     "at": pd.Timestamp.now(tz="UTC").isoformat()}
        log.info("checkpoint at seq %d (%d entity rows, %d pairs), %d transactions pruned, %.2f s", seq,
                 len(entities), len(pairs), pruned, self.last["seconds"])
        return self.last
