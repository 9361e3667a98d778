"""Sorted event views with prefix sums: the index structures `build_features` answers window queries from."""

from __future__ import annotations

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


def _state_lookup(keys: np.ndarray, values: dict[str, np.ndarray], query: np.ndarray,
                  default: dict[str, int]) -> dict[str, np.ndarray]:
    """values[c][i] for the row i of `keys` equal to each query key (keys unique, -1 = absent), else default."""
    known = keys >= 0
    idx = pd.Index(keys[known]).get_indexer(query) if known.any() else np.full(len(query), -1, np.intp)
    hit = idx >= 0
    out = {}
    for c, v in values.items():
        col = np.full(len(query), default.get(c, 0), dtype=np.int64)
        col[hit] = v[known][idx[hit]]
        out[c] = col
    return out

