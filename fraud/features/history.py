"""What a model remembers about the past: the raw tail of recent rows plus exact integer totals per entity
and pair for everything older (see `History`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fraud.data.durations import NS, to_ns

HISTORY_COLUMNS = ["timestamp", "source", "target", "amount"]
# Sums are kept in integers (log-amounts in 1/65536 steps, amounts in cents) so that adding history in any
# grouping gives bit-identical results: chunked scoring then matches whole-file scoring exactly.
LQ = 1 << 16


def _qlog(amount: np.ndarray) -> np.ndarray:
    return np.rint(np.log1p(amount) * LQ).astype(np.int64)



FOLD_SLACK = 0.1  # History.update folds overdue tail rows into the totals once they span 10 % of the tail


@dataclass
class History:
    """Everything a model remembers about the past to compute features and graphs for later rows.

    tail: raw rows (timestamp, source, target, amount) with timestamp >= cutoff_ns, in event order; cutoff_ns
        lags max_ns - tail_seconds by up to FOLD_SLACK of the span (see `update`).
    entities: per entity and role ('out' = as source, 'in' = as target): n, lsum, lsq (sums of log1p amount
        and its square), last_ns, over rows older than the cutoff. pairs: (source, target, n) over rows older than the cutoff.
    """

    tail_seconds: int
    tail: pd.DataFrame = field(default_factory=lambda: _empty_tail())
    entities: pd.DataFrame = field(default_factory=lambda: _empty_entities())
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"source": pd.Series(dtype="string"), "target": pd.Series(dtype="string"), "n": pd.Series(dtype="int64")}))
    cutoff_ns: int | None = None
    max_ns: int | None = None
    # Codes of the tail's entity names, built by the first small request (`involving`) and then kept in step
    # with the tail by `update`; None until then (batch scoring never needs them).
    names: _TailNames | None = field(default=None, repr=False, compare=False)

    def involving(self, q: pd.DataFrame) -> pd.DataFrame:
        """The tail events whose source or target is an entity of the rows `q`.

        Every feature of a row is keyed by its sender, its receiver or their pair (neighbour aggregates too:
        money into the sender, out of the receiver), and time windows are bounded by times, not positions, so
        the other events cannot change a value: a one-transaction request then reads a few events instead of
        the whole 7-day tail (exactness tested in tests/fraud/test_features.py). The tail's names are kept as
        codes, so a request no longer hashes the whole tail's names (~12 ms of each request under cProfile).
        """
        if self.names is None:
            self.names = _TailNames.of(self.tail)
        return self.tail[self.names.involving(q)]

    def tail_since(self, start_ns: int) -> pd.DataFrame:
        """The tail rows at or after `start_ns` (what the graph snapshots of later rows can read)."""
        return self.tail[to_ns(self.tail["timestamp"]) >= start_ns] if len(self.tail) else self.tail

    def update(self, df: pd.DataFrame) -> History:
        """Absorb `df` (all rows at or after the latest row already absorbed); returns self."""
        if len(df) == 0:
            return self
        new = df[HISTORY_COLUMNS].copy()
        t = to_ns(new["timestamp"])
        if self.max_ns is not None and t.min() < self.max_ns:
            raise ValueError("history update out of order: rows must arrive in non-decreasing timestamp order "
                             f"(got {pd.Timestamp(int(t.min()), tz='UTC')} after {pd.Timestamp(self.max_ns, tz='UTC')})")
        tail = pd.concat([self.tail, new], ignore_index=True) if len(self.tail) else new.reset_index(drop=True)
        names = self.names.extended(new) if self.names is not None else None
        self.max_ns = int(t.max())
        cutoff = self.max_ns - self.tail_seconds * NS
        tns = to_ns(tail["timestamp"])
        # Folding old rows into the totals regroups the whole entity and pair tables, which would dominate a
        # one-transaction request; so fold only once the tail holds FOLD_SLACK of its span in overdue rows.
        # Exact either way: every row is counted once, in the tail or in the totals, and windows are bounded
        # by time (the tail always covers at least tail_seconds).
        if self.cutoff_ns is None or tns.min() < cutoff - int(FOLD_SLACK * self.tail_seconds) * NS:
            old = tail[tns < cutoff]
            if len(old):
                self.entities = _merge_entities(self.entities, _entity_totals(old))
                self.pairs = _merge_pairs(self.pairs, old)
            tail = tail[tns >= cutoff].reset_index(drop=True)
            # Recoded from the remaining tail, so a long-running service does not keep every name it has seen.
            names = _TailNames.of(tail) if names is not None else None
            self.cutoff_ns = cutoff
        self.tail, self.names = tail, names
        return self

    def folded(self, rows: pd.DataFrame) -> History:
        """A new history with `rows` added to the entity and pair totals instead of the tail.

        Exact for every row at least `tail_seconds` after all of `rows` (no window reaches them): how a time
        slice of a hot entity starts from the slices before it without replaying them (`fraud.scale`)."""
        if not len(rows):
            return self
        t_max = int(to_ns(rows["timestamp"]).max())
        return History(self.tail_seconds, self.tail, _merge_entities(self.entities, _entity_totals(rows)),
                       _merge_pairs(self.pairs, rows), self.cutoff_ns,
                       t_max if self.max_ns is None else max(self.max_ns, t_max))

    def entity_names(self) -> pd.Index:
        """Every sender/receiver name this history has seen (tail and older totals), for unseen-entity counts."""
        parts = [self.entities["entity"].astype("string")] if len(self.entities) else []
        if len(self.tail):
            parts += [self.tail["source"].astype("string"), self.tail["target"].astype("string")]
        if not parts:
            return pd.Index([], dtype="string")
        return pd.Index(pd.unique(pd.concat(parts, ignore_index=True).to_numpy()))

    def copy(self) -> History:
        return History(self.tail_seconds, self.tail.copy(), self.entities.copy(), self.pairs.copy(),
                       self.cutoff_ns, self.max_ns, self.names.copy() if self.names is not None else None)


@dataclass
class _TailNames:
    """Integer codes of a history tail's source and target names (one code space), updated with the tail."""

    code: dict
    src: np.ndarray
    dst: np.ndarray

    @classmethod
    def of(cls, tail: pd.DataFrame) -> _TailNames:
        both = pd.concat([tail["source"], tail["target"]], ignore_index=True).astype("string")
        codes, uniques = pd.factorize(both)
        n = len(tail)
        return cls(dict(zip(uniques.tolist(), range(len(uniques)), strict=True)), codes[:n].astype(np.int64),
                   codes[n:].astype(np.int64))

    def _codes(self, col: pd.Series, add: bool) -> np.ndarray:
        names = col.astype("string").tolist()
        if add:
            return np.fromiter((self.code.setdefault(v, len(self.code)) for v in names), np.int64, len(names))
        return np.fromiter((self.code.get(v, -1) for v in names), np.int64, len(names))

    def extended(self, rows: pd.DataFrame) -> _TailNames:
        """These codes with `rows` appended to the tail (new names get new codes)."""
        return _TailNames(self.code, np.concatenate([self.src, self._codes(rows["source"], True)]),
                          np.concatenate([self.dst, self._codes(rows["target"], True)]))

    def copy(self) -> _TailNames:
        return _TailNames(dict(self.code), self.src.copy(), self.dst.copy())

    def involving(self, q: pd.DataFrame) -> np.ndarray:
        """Mask of the tail rows whose source or target is a source or target of `q`."""
        wanted = np.zeros(len(self.code) + 1, bool)  # the last slot: names the tail has never seen (-1)
        wanted[self._codes(q["source"], False)] = True
        wanted[self._codes(q["target"], False)] = True
        wanted[-1] = False
        return wanted[self.src] | wanted[self.dst]


def _empty_tail() -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "source": pd.Series(dtype="string"),
                         "target": pd.Series(dtype="string"), "amount": pd.Series(dtype="float64")})


def _empty_entities() -> pd.DataFrame:
    cols = {"entity": "string", "role": "string", "n": "int64", "lsum": "int64", "lsq": "int64",
            "last_ns": "int64"}
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in cols.items()})


def _entity_totals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (entity, role) totals of `rows`; distinct is filled later from the pair table."""
    t = to_ns(rows["timestamp"])
    la = _qlog(rows["amount"].to_numpy(dtype="float64"))
    parts = []
    for role, col in (("out", "source"), ("in", "target")):
        g = pd.DataFrame({"entity": rows[col].astype("string").to_numpy(), "a": la, "a2": la * la, "t": t})
        agg = g.groupby("entity", sort=True).agg(n=("a", "size"), lsum=("a", "sum"), lsq=("a2", "sum"),
                                                 last_ns=("t", "max")).reset_index()
        agg["role"] = role
        parts.append(agg)
    return pd.concat(parts, ignore_index=True)


def _merge_entities(old: pd.DataFrame, add: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([old, add], ignore_index=True) if len(old) else add
    merged = both.groupby(["entity", "role"], sort=True).agg(
        n=("n", "sum"), lsum=("lsum", "sum"), lsq=("lsq", "sum"), last_ns=("last_ns", "max")).reset_index()
    merged["entity"] = merged["entity"].astype("string")
    return merged


def _merge_pairs(pairs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    add = rows.groupby(["source", "target"], sort=True).size().rename("n").reset_index()
    add["source"] = add["source"].astype("string")
    add["target"] = add["target"].astype("string")
    both = pd.concat([pairs, add], ignore_index=True) if len(pairs) else add
    return both.groupby(["source", "target"], sort=True)["n"].sum().reset_index()


def restore_dtypes(h: History) -> None:
    """Column dtypes a Parquet round trip loses (string entities, UTC timestamps), restored in place."""
    for frame, cols in ((h.tail, ["source", "target"]), (h.entities, ["entity", "role"]),
                        (h.pairs, ["source", "target"])):
        for c in cols:
            if c in frame.columns:
                frame[c] = frame[c].astype("string")
    if len(h.tail):
        h.tail["timestamp"] = pd.to_datetime(h.tail["timestamp"], utc=True)
