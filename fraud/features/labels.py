"""Delayed label feedback: which fraud labels were known when (`LabelBook`), per entity and point in time.

Fraud teams learn the truth about a payment late (chargebacks, confirmed cases). A label becomes known at
its `labelled_at` (a column, when the data has one) or at `timestamp + labels.delay`; a feature of a row at
time t may use a label only when it was known *strictly before* t. Training, validation, scoring and the
service all read the same book under that rule, so the model learns on what it sees in production, and no
row ever sees its own label (known at or after its own time, since labelled_at >= timestamp).

The book keeps every label (training, validation and confirmed feedback): the window features need the
recent ones, the all-time counts need all, and a label is ~40 bytes. Per role ('out': the entity as payer,
'in': as payee) it keeps a sorted index: events by (entity, known time) with running fraud counts, so a
query of any size costs a hash lookup and a binary search per row (`_Index`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
import pandas as pd

from fraud.data.durations import NS, parse_duration, to_ns
from fraud.data.frame import DataError

NEVER = np.iinfo(np.int64).max  # known time of "never": no query time is later
# Up to this many names are looked up in a dict instead of a pandas Index: building the Index of the names
# costs ~1 ms whatever their number, the most of a one-transaction request's label features, where a dict
# lookup costs ~0.1 us a name (a request to a busy merchant reads ~1,500 names: its counterparties).
SMALL_LOOKUP = 4096
BOOK_COLUMNS = {"transaction_id": "string", "source": "string", "target": "string", "ts_ns": "int64",
                "known_ns": "int64", "label": "int8"}


@dataclass
class LabelConfig:
    """When labels become known, and the windows (by the time a label became known) the risk features count."""

    # Delay from payment to known label when the data has no labelled_at column (or a row leaves it empty):
    # chargebacks take days to weeks. '0' = known at the payment's own time (experiments only).
    delay: str = "7d"
    # The longest is also the GNN's known-fraud node window (fraud/features/graph_labels.py).
    windows: list[str] = field(default_factory=lambda: ["7d", "14d"])

    def __post_init__(self):
        self.delay_seconds  # noqa: B018 - validates
        for w in self.windows:
            parse_duration(w)

    @property
    def delay_seconds(self) -> int:
        return 0 if str(self.delay).strip() == "0" else parse_duration(self.delay)


def known_times(df: pd.DataFrame, cfg: LabelConfig) -> np.ndarray:
    """Known time [n] int64 ns of each row's label: its labelled_at when set, else timestamp + delay."""
    t = to_ns(df["timestamp"])
    known = t + cfg.delay_seconds * NS
    if "labelled_at" in df.columns:
        la = df["labelled_at"]
        given = la.notna().to_numpy()
        if given.any():
            known = np.where(given, to_ns(la.fillna(df["timestamp"])), known)
    return known


class LabelBook:
    """Every known label: transaction_id, source, target, ts_ns (payment time), known_ns, label."""

    def __init__(self, rows: pd.DataFrame | None = None):
        if rows is None:
            rows = pd.DataFrame({c: pd.Series(dtype=d) for c, d in BOOK_COLUMNS.items()})
        self.rows = rows.astype(BOOK_COLUMNS).reset_index(drop=True)
        self._index: dict[str, _Index] = {}
        self._first: pd.Series | None = None
        self._first_map: dict | None = None

    @classmethod
    def from_frame(cls, df: pd.DataFrame, cfg: LabelConfig) -> LabelBook:
        """The labels of a labelled canonical frame, each known at `known_times`."""
        return cls(_book_rows(df, known_times(df, cfg)))

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows: pd.DataFrame) -> LabelBook:
        """Append book rows (already checked by the caller: new ids, 0/1 labels); returns self."""
        if len(rows):
            self.rows = pd.concat([self.rows, rows.astype(BOOK_COLUMNS)], ignore_index=True)
            self._index, self._first, self._first_map = {}, None, None
        return self

    def copy(self) -> LabelBook:
        return LabelBook(self.rows.copy())

    def check_known_before(self, start_ns: int, where: str) -> None:
        """DataError when no label is known before `start_ns` (labels.delay longer than the training span)."""
        if not len(self) or int(self.rows["known_ns"].min()) >= start_ns:
            raise DataError(f"no training label is known before the {where} starts "
                            f"({pd.Timestamp(start_ns, tz='UTC')}): labels become known labels.delay after the "
                            "payment (or at labelled_at), and that is later than the whole training period. "
                            "Use a longer file, a shorter --set labels.delay=..., or parts.labels=false")

    def index(self, role: str) -> _Index:
        """The sorted per-entity index of `role` ('out': by source, 'in': by target), built on first use."""
        if role not in self._index:
            col = "source" if role == "out" else "target"
            self._index[role] = _Index.of(self.rows[col], self.rows["known_ns"].to_numpy(),
                                          self.rows["label"].to_numpy())
        return self._index[role]

    def first_fraud(self) -> pd.Series:
        """Per entity (either role), when its first fraud label became known (int64 ns, indexed by name)."""
        if self._first is None:
            fr = self.rows[self.rows["label"] == 1]
            both = pd.DataFrame({"entity": pd.concat([fr["source"], fr["target"]], ignore_index=True),
                                 "known": np.concatenate([fr["known_ns"].to_numpy()] * 2)})
            self._first = both.groupby("entity", sort=True)["known"].min()
            self._first.index = self._first.index.astype("string")
        return self._first

    def first_fraud_of(self, names: np.ndarray | pd.Series) -> np.ndarray:
        """`first_fraud` of each name [n] int64 ns (NEVER for entities without a known fraud)."""
        ff = self.first_fraud()
        if not len(ff):
            return np.full(len(names), NEVER, np.int64)
        if len(names) <= SMALL_LOOKUP:
            if self._first_map is None:
                self._first_map = dict(zip(ff.index.tolist(), ff.to_numpy().tolist(), strict=True))
            get = self._first_map.get
            return np.fromiter((get(v, NEVER) for v in np.asarray(names, dtype=object)), np.int64, len(names))
        pos = ff.index.get_indexer(pd.Index(names, dtype="string"))
        return np.where(pos >= 0, ff.to_numpy()[np.maximum(pos, 0)], NEVER).astype(np.int64)


def _book_rows(df: pd.DataFrame, known: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"transaction_id": df["transaction_id"].astype("string").to_numpy(),
                         "source": df["source"].astype("string").to_numpy(),
                         "target": df["target"].astype("string").to_numpy(),
                         "ts_ns": to_ns(df["timestamp"]), "known_ns": np.asarray(known, np.int64),
                         "label": df["label"].to_numpy(np.int8)})


@dataclass
class _Index:
    """Labels of one role sorted by (entity, known time): entity names, CSR starts, known times, running
    fraud counts and the running latest fraud known time (-1 = none yet) within each entity."""

    names: pd.Index
    start: np.ndarray  # [E + 1]
    known: np.ndarray  # [n] sorted within each entity
    fraud_cum: np.ndarray  # [n] frauds among the entity's labels up to and including this one
    last_fraud: np.ndarray  # [n] latest fraud known time up to and including this one, -1 if none
    _lookup: dict | None = None  # name -> code, for small lookups (SMALL_LOOKUP)

    @classmethod
    def of(cls, entity: pd.Series, known: np.ndarray, label: np.ndarray) -> _Index:
        codes, names = pd.factorize(entity.astype("string"), sort=True)
        order = np.lexsort((known, codes))
        codes, known, label = codes[order], known[order].astype(np.int64), label[order].astype(np.int64)
        start = np.zeros(len(names) + 1, np.int64)
        np.cumsum(np.bincount(codes, minlength=len(names)), out=start[1:])
        fraud_cum, last = _running(start, known, label)
        return cls(pd.Index(names, dtype="string"), start, known, fraud_cum, last)

    def codes(self, names: np.ndarray) -> np.ndarray:
        """Entity code of each name, -1 for entities without labels."""
        if len(names) <= SMALL_LOOKUP and len(self.names):
            if self._lookup is None:
                self._lookup = dict(zip(self.names.tolist(), range(len(self.names)), strict=True))
            get = self._lookup.get
            return np.fromiter((get(v, -1) for v in np.asarray(names, dtype=object)), np.int64, len(names))
        return self.names.get_indexer(pd.Index(names, dtype="string")) if len(self.names) else \
            np.full(len(names), -1, np.int64)


@nb.njit(cache=True)
def _running(start, known, label):
    fraud_cum = np.empty(len(known), np.int64)
    last = np.empty(len(known), np.int64)
    for e in range(len(start) - 1):
        c, lf = 0, -1
        for i in range(start[e], start[e + 1]):
            c += label[i]
            if label[i]:
                lf = known[i]
            fraud_cum[i], last[i] = c, lf
    return fraud_cum, last


@nb.njit(cache=True)
def _before(start, known, codes, t):
    """Per query, the position in its entity's slice of the first label known at or after t (so the labels
    known strictly before t are start[c] .. pos - 1); -1 for codes without labels."""
    out = np.full(len(codes), -1, np.int64)
    for i in range(len(codes)):
        c = codes[i]
        if c >= 0:
            lo, hi = start[c], start[c + 1]
            while lo < hi:  # first position with known >= t
                mid = (lo + hi) // 2
                if known[mid] < t[i]:
                    lo = mid + 1
                else:
                    hi = mid
            out[i] = lo
    return out


def label_counts(ix: _Index, codes: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels known before t, frauds among them, latest fraud known time or -1) per query [n] int64."""
    pos = _before(ix.start, ix.known, codes, t)
    ok = codes >= 0
    first = np.where(ok, ix.start[np.maximum(codes, 0)], 0)
    n = np.where(ok, pos - first, 0)
    has = n > 0
    prev = np.maximum(pos - 1, 0)
    frauds = np.where(has, ix.fraud_cum[prev] if len(ix.known) else 0, 0)
    last = np.where(has, ix.last_fraud[prev] if len(ix.known) else -1, -1)
    return n.astype(np.int64), frauds.astype(np.int64), last.astype(np.int64)


@nb.njit(cache=True)
def count_below(start, vals, codes, t):
    """Per query, how many of its entity's sorted `vals` (CSR by `start`) are < t; 0 for codes < 0."""
    out = np.zeros(len(codes), np.int64)
    for i in range(len(codes)):
        c = codes[i]
        if c >= 0:
            lo, hi = start[c], start[c + 1]
            a = lo
            while lo < hi:
                mid = (lo + hi) // 2
                if vals[mid] < t[i]:
                    lo = mid + 1
                else:
                    hi = mid
            out[i] = lo - a
    return out


def csr_sorted(keys: np.ndarray, vals: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(start [n_keys + 1], vals sorted within each key) for `count_below`."""
    order = np.lexsort((vals, keys))
    start = np.zeros(n_keys + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=start[1:])
    return start, vals[order].astype(np.int64)
