"""Sorted event views with prefix sums: the index structures `build_features` answers window queries from,
and `Coded`, the integer-coded events and state they read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class _Keys:
    """Query keys (entity or pair codes of the rows to featurise) and one sort order of them.

    Every rank array a query uses (`hi`, `lo(w)`, zeros) is a non-decreasing function of the row's time and
    `hi` is strictly increasing in it, so ordering the rows by (key, hi) sorts the needles (key, rank) of
    all of them at once: one argsort per key array instead of one per (key, rank, view).
    """

    def __init__(self, key: np.ndarray, hi: np.ndarray, m: int):
        self.key = key.astype(np.int64)
        base = self.key * np.int64(m)
        self.order = np.argsort(base + hi)
        self.base_sorted = base[self.order]


class _View:
    """Events keyed by an integer entity (or pair) code, sorted by (key, time rank), with prefix sums.

    A query (key, lo_rank, hi_rank) counts the key's events whose time rank lies in [lo_rank, hi_rank):
    ranks index the sorted unique event times, so `hi_rank = #unique times < t` excludes the current time.
    """

    def __init__(self, key: np.ndarray, rank: np.ndarray, m: int, values: dict[str, np.ndarray] | None = None):
        self.m = np.int64(m)
        comp = key.astype(np.int64) * self.m + rank.astype(np.int64)
        order = np.argsort(comp)  # ties (same key and time) sit inside one bound, their order is irrelevant
        self.comp = comp[order]
        self.rank = rank[order]
        self.cs = {k: np.concatenate([[0], np.cumsum(v[order], dtype=np.int64)]) for k, v in (values or {}).items()}
        self._cache: dict[tuple[int, int], tuple[_Keys, np.ndarray, np.ndarray]] = {}

    def bounds(self, q: _Keys, rank: np.ndarray) -> np.ndarray:
        """Position of (q.key, rank) in the sorted events; memoised per (keys, rank) objects of one call."""
        hit = self._cache.get((id(q), id(rank)))
        if hit is not None and hit[0] is q and hit[1] is rank:
            return hit[2]
        out = np.empty(len(q.key), dtype=np.int64)
        # sorted needles make the binary searches cache-friendly
        out[q.order] = np.searchsorted(self.comp, q.base_sorted + rank[q.order], side="left")
        self._cache[(id(q), id(rank))] = (q, rank, out)
        return out

    def count(self, q: _Keys, lo_rank, hi_rank) -> np.ndarray:
        return self.bounds(q, hi_rank) - self.bounds(q, lo_rank)

    def sum(self, name, q: _Keys, lo_rank, hi_rank) -> np.ndarray:
        cs = self.cs[name]
        return cs[self.bounds(q, hi_rank)] - cs[self.bounds(q, lo_rank)]

    def last_rank(self, q: _Keys, zero, hi_rank) -> np.ndarray:
        """Time rank of the key's latest event before hi_rank, or -1 (zero: the all-zero rank array)."""
        start, hi = self.bounds(q, zero), self.bounds(q, hi_rank)
        out = np.full(len(q.key), -1, dtype=np.int64)
        has = hi > start
        out[has] = self.rank[hi[has] - 1]
        return out


def _sorted_unique(t: np.ndarray) -> np.ndarray:
    """np.unique(t) for int64 times, faster on the (mostly) time-ordered events: a stable sort of sorted
    runs is linear, where np.unique hashes every value first."""
    s = np.sort(t, kind="stable")
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def member(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """np.isin(keys, values) for int64 keys by a hash table: np.isin sorts both arrays (pair keys span
    n_ent^2, too wide for its lookup table), ~8x slower on a chunk's 450k events."""
    return pd.Series(keys, copy=False).isin(values).to_numpy()


def _arrow_strings(col: pd.Series) -> list[pa.Array]:
    """The chunks of a text column as Arrow large_string arrays (zero-copy for pandas' Arrow strings)."""
    arr = pa.array(col.astype("string").array)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    return [c.cast(pa.large_string()) for c in chunks]


def _codes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 numpy codes of a (chunked) dictionary-encoded or index array; nulls (absent) -> -1."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = [(c.indices if isinstance(c, pa.DictionaryArray) else c).fill_null(-1).to_numpy(zero_copy_only=False)
             for c in chunks]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


class _Entities:
    """Integer codes for the entity names of the events (history tail + new rows), and of state tables.

    Names are compared exactly, as Arrow strings; a missing name is one entity of its own. Pair keys are
    `source_code * n + target_code`, so no per-pair strings are ever built.
    """

    def __init__(self, sources: list[pa.Array], targets: list[pa.Array]):
        enc = pc.dictionary_encode(pa.chunked_array(sources + targets, type=pa.large_string()),
                                   null_encoding="encode")
        codes = _codes(enc)
        self.n_ev = len(codes) // 2
        self.src, self.dst = codes[:self.n_ev], codes[self.n_ev:]
        self.names = enc.chunks[0].dictionary if enc.num_chunks else pa.array([], pa.large_string())
        self.n = len(self.names)

    def of(self, col: pd.Series) -> np.ndarray:
        """Codes of the names in `col` (-1 for names no event has)."""
        chunks = _arrow_strings(col)
        if not chunks or not self.n:
            return np.full(len(col), -1, np.int64)
        return _codes(pc.index_in(pa.chunked_array(chunks, type=pa.large_string()), value_set=self.names,
                                  skip_nulls=False))

    def pair(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        return s * np.int64(max(self.n, 1)) + d


@dataclass
class Coded:
    """A history's events, totals and the rows to featurise with entity names as integer codes [0, n_ent):
    everything the feature arithmetic reads (`fraud.features.behaviour.coded_features`).

    Built from frames by `code_frame` (file scoring) or from the service's live history without any frame
    (`fraud.serve.live_history.LiveHistory.coded`); the features depend on the values, never on which code
    an entity got, so both give the same numbers bit for bit.
    """

    t: np.ndarray        # [n_ev] int64 ns: the tail events, then the query rows
    amount: np.ndarray   # [n_ev] float64
    src: np.ndarray      # [n_ev] int64 codes
    dst: np.ndarray      # [n_ev] int64 codes
    n_tail: int          # the first n_tail events are history, the rest the query rows (in query order)
    names: np.ndarray    # [n_ent] object: each code's name (the label book is keyed by names)
    state: dict          # role ('out'/'in') -> {n, lsum, lsq, last_ns}: [n_ent] int64 totals older than the tail
    pair_src: np.ndarray  # [p] int64 codes of the totals' pairs (-1: a name no event has)
    pair_dst: np.ndarray  # [p]
    pair_n: np.ndarray    # [p] int64
    pair_names: dict      # 'source'/'target' -> [p] names of those pairs' ends

    @property
    def n_ent(self) -> int:
        return len(self.names)

    def pair(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        return s * np.int64(max(self.n_ent, 1)) + d

    @property
    def old(self) -> np.ndarray:
        """[n_ent] bool: entities with totals older than the tail (in either role)."""
        return (self.state["out"]["n"] > 0) | (self.state["in"]["n"] > 0)


STATE_FILL = {"n": 0, "lsum": 0, "lsq": 0, "last_ns": -1}


def code_frame(tail: pd.DataFrame, q: pd.DataFrame, entities: pd.DataFrame, pairs: pd.DataFrame) -> Coded:
    """`Coded` of a history (its tail rows, entity and pair totals) and the query rows `q` (canonical frames)."""
    n_tail = len(tail)
    qt = q["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    et = np.concatenate([tail["timestamp"].dt.as_unit("ns").astype("int64").to_numpy(), qt]) if n_tail else qt
    qa = q["amount"].to_numpy(dtype=np.float64)
    eamt = np.concatenate([tail["amount"].to_numpy(dtype=np.float64), qa]) if n_tail else qa
    ents = _Entities(_arrow_strings(tail["source"]) + _arrow_strings(q["source"]) if n_tail
                     else _arrow_strings(q["source"]),
                     _arrow_strings(tail["target"]) + _arrow_strings(q["target"]) if n_tail
                     else _arrow_strings(q["target"]))
    n_ent = ents.n
    state = {}
    for role in ("out", "in"):
        st = {c: np.full(n_ent, v, np.int64) for c, v in STATE_FILL.items()}
        if len(entities):
            e = entities[entities["role"] == role]
            code = ents.of(e["entity"])
            ok = code >= 0
            for c in st:
                st[c][code[ok]] = e[c].to_numpy().astype(np.int64)[ok]
        state[role] = st
    if len(pairs):
        ps, pt, pn = ents.of(pairs["source"]), ents.of(pairs["target"]), pairs["n"].to_numpy().astype(np.int64)
        pnames = {"source": pairs["source"].to_numpy(), "target": pairs["target"].to_numpy()}
    else:
        ps = pt = pn = np.zeros(0, np.int64)
        pnames = {"source": np.zeros(0, object), "target": np.zeros(0, object)}
    return Coded(et, eamt, ents.src, ents.dst, n_tail, np.array(ents.names.to_pylist(), dtype=object), state,
                 ps, pt, pn, pnames)


def _state_lookup(keys: np.ndarray, values: dict[str, np.ndarray], query: np.ndarray,
                  default: dict[str, int]) -> dict[str, np.ndarray]:
    """values[c][i] for the row i of `keys` equal to each query key (keys unique, -1 = absent), else default."""
    known = keys >= 0
    k = keys[known]
    order = np.argsort(k, kind="stable")
    ks = k[order]
    pos = np.minimum(np.searchsorted(ks, query), max(len(ks) - 1, 0))  # keys are unique: an exact match or none
    hit = (ks[pos] == query) if len(ks) else np.zeros(len(query), bool)
    idx = np.where(hit, order[pos] if len(ks) else 0, -1)
    out = {}
    for c, v in values.items():
        col = np.full(len(query), default.get(c, 0), dtype=np.int64)
        col[hit] = v[known][idx[hit]]
        out[c] = col
    return out

