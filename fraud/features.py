"""Point-in-time (leak-free) behaviour features per transaction, from strictly earlier history only.

Every feature of a row at time t uses only transactions with timestamp < t (strictly earlier in event time,
so rows sharing a timestamp never see each other, whatever order or chunk they arrive in). History is
split in two so that scoring a file whole or in chunks gives the same numbers:

- `History.tail`: the raw rows of the last `FeatureConfig.tail_seconds` (the longest window, plus the GNN's
  graph window); window counts/sums and snapshot graphs are computed from it;
- `History.entities` / `History.pairs`: per-entity and per-pair totals over all rows older than the tail
  (count, amount sum and sum of squares, last time, distinct counterparties), for expanding features.

`build_features(history, df)` computes features for `df` given everything before it;
`history.update(df)` then absorbs `df` (rows must arrive in non-decreasing event time).

Feature groups (the raw fields each derives from; issue 5's threat model uses this table):

| group | features | raw fields |
|---|---|---|
| row | log_amount, hour_sin/cos, weekday | amount, timestamp |
| velocity | {src,dst}_cnt_{w}, {src,dst}_sum_{w}, {src,dst}_secs_prev, {src,dst}_n_hist | source/target, timestamp, amount of earlier rows |
| relative | {src,dst}_amt_z, {src,dst}_amt_ratio | amount, amounts of earlier rows |
| counterparties | {src,dst}_distinct, pair_n_prev, pair_is_new | source, target of earlier rows |
| neighbour (graph baseline) | src_in_cnt_{w}, src_in_sum_{w}, dst_out_cnt_{w}, dst_out_sum_{w}, src_in_distinct, dst_out_distinct, pair_rev_n_prev | the other role's earlier rows |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NS = 1_000_000_000
_WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as '1h', '24h', '7d', '30m'."""
    text = str(text).strip()
    if len(text) < 2 or text[-1] not in _WINDOW_UNITS or not text[:-1].isdigit():
        raise ValueError(f"duration {text!r} is not a number followed by s, m, h or d (e.g. '1h', '7d')")
    return int(text[:-1]) * _WINDOW_UNITS[text[-1]]


@dataclass
class FeatureConfig:
    """Which windows the velocity features count over, and how much raw history a model keeps."""

    windows: list[str] = field(default_factory=lambda: ["1h", "24h", "7d"])
    neighbour_windows: list[str] = field(default_factory=lambda: ["1h", "24h"])
    # Raw rows kept for scoring must cover the longest window and the GNN graph window + snapshot cadence;
    # the pipeline raises this to what the GNN needs.
    extra_tail: str = "0s"
    # Issue 5's robust features (fraud/robust_features.py); off for the standard stack, on in adversarial
    # training: history-anchored counts and ages over `robust_window`, "young payee" = pair younger than
    # `young_pair`.
    robust: bool = False
    robust_window: str = "7d"
    young_pair: str = "2d"

    def __post_init__(self):
        for w in [*self.windows, *self.neighbour_windows, self.extra_tail, self.robust_window, self.young_pair]:
            parse_duration(w)
        if not self.windows:
            raise ValueError("features.windows must list at least one window, e.g. ['1h', '24h', '7d']")

    @property
    def tail_seconds(self) -> int:
        longest = max(parse_duration(w) for w in [*self.windows, *self.neighbour_windows])
        if self.robust:  # a young-payee flag of an event at the window's start looks back young_pair more
            longest = max(longest, parse_duration(self.robust_window) + parse_duration(self.young_pair))
        return max(longest, parse_duration(self.extra_tail))


ROW_FEATURES = ["log_amount", "hour_sin", "hour_cos", "weekday"]
HISTORY_COLUMNS = ["timestamp", "source", "target", "amount"]
# Sums are kept in integers (log-amounts in 1/65536 steps, amounts in cents) so that adding history in any
# grouping gives bit-identical results: chunked scoring then matches whole-file scoring exactly.
LQ = 1 << 16


def _qlog(amount: np.ndarray) -> np.ndarray:
    return np.rint(np.log1p(amount) * LQ).astype(np.int64)


def feature_names(cfg: FeatureConfig, neighbour: bool) -> list[str]:
    """The ordered column names `build_features` returns (neighbour-aggregate ones only if asked)."""
    names = list(ROW_FEATURES)
    for r in ("src", "dst"):
        names += [f"{r}_cnt_{w}" for w in cfg.windows] + [f"{r}_sum_{w}" for w in cfg.windows]
        names += [f"{r}_secs_prev", f"{r}_n_hist", f"{r}_amt_z", f"{r}_amt_ratio", f"{r}_distinct"]
    names += ["pair_n_prev", "pair_is_new"]
    if neighbour:
        names += neighbour_feature_names(cfg)
    if cfg.robust:
        from fraud.robust_features import robust_names

        names += robust_names(cfg.robust_window)
    return names


def neighbour_feature_names(cfg: FeatureConfig) -> list[str]:
    """Simple neighbour-aggregate graph features: each endpoint's activity in the *other* role."""
    names = []
    for w in cfg.neighbour_windows:
        names += [f"src_in_cnt_{w}", f"src_in_sum_{w}", f"dst_out_cnt_{w}", f"dst_out_sum_{w}"]
    return names + ["src_in_distinct", "dst_out_distinct", "pair_rev_n_prev"]


def seconds(ts: pd.Series) -> np.ndarray:
    """int64 nanoseconds since the epoch of a UTC timestamp column (any pandas resolution)."""
    return ts.dt.as_unit("ns").astype("int64").to_numpy()


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

    def update(self, df: pd.DataFrame) -> History:
        """Absorb `df` (all rows at or after the latest row already absorbed); returns self."""
        if len(df) == 0:
            return self
        new = df[HISTORY_COLUMNS].copy()
        t = seconds(new["timestamp"])
        if self.max_ns is not None and t.min() < self.max_ns:
            raise ValueError("history update out of order: rows must arrive in non-decreasing timestamp order "
                             f"(got {pd.Timestamp(int(t.min()), tz='UTC')} after {pd.Timestamp(self.max_ns, tz='UTC')})")
        tail = pd.concat([self.tail, new], ignore_index=True) if len(self.tail) else new.reset_index(drop=True)
        names = self.names.extended(new) if self.names is not None else None
        self.max_ns = int(t.max())
        cutoff = self.max_ns - self.tail_seconds * NS
        tns = seconds(tail["timestamp"])
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
    t = seconds(rows["timestamp"])
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


def build_features(history: History | None, df: pd.DataFrame, cfg: FeatureConfig,
                   neighbour: bool = True) -> pd.DataFrame:
    """Features of each row of `df` from `history` plus strictly earlier rows of `df` -> float32 frame.

    `df` is a canonical transactions frame (any row order) whose rows are all at or after the history's
    latest row. Returns `feature_names(cfg, neighbour)` columns, one row per row of `df`, same index.
    """
    h = history if history is not None else History(cfg.tail_seconds)
    q = df[HISTORY_COLUMNS].reset_index(drop=True)
    qt = seconds(q["timestamp"])
    if h.max_ns is not None and len(q) and qt.min() < h.max_ns:
        raise ValueError("rows to featurise start before the end of the stored history "
                         f"({pd.Timestamp(int(qt.min()), tz='UTC')} < {pd.Timestamp(h.max_ns, tz='UTC')}); "
                         "score them without stored history (history='none') or pass later rows")
    tail = h.involving(q) if 4 * len(q) < len(h.tail) else h.tail
    n_tail = len(tail)
    et = np.concatenate([seconds(tail["timestamp"]), qt]) if n_tail else qt
    eamt = (np.concatenate([tail["amount"].to_numpy(dtype=np.float64), q["amount"].to_numpy(dtype=np.float64)])
            if n_tail else q["amount"].to_numpy(dtype=np.float64))
    ut = _sorted_unique(et)
    m = len(ut) + 1
    erank = np.searchsorted(ut, et)
    hi = np.searchsorted(ut, qt, side="left")  # events with rank < hi are strictly earlier than the row
    ents = _Entities(_arrow_strings(tail["source"]) + _arrow_strings(q["source"]) if n_tail
                     else _arrow_strings(q["source"]),
                     _arrow_strings(tail["target"]) + _arrow_strings(q["target"]) if n_tail
                     else _arrow_strings(q["target"]))
    n_ev = ents.n_ev
    e_src, e_dst = ents.src, ents.dst
    q_src, q_dst = e_src[n_tail:], e_dst[n_tail:]
    elog = _qlog(eamt)
    vals = {"a": np.rint(eamt * 100).astype(np.int64), "la": elog, "la2": elog * elog}
    v_out = _View(e_src, erank, m, vals)
    v_in = _View(e_dst, erank, m, vals)
    la = np.log1p(q["amount"].to_numpy(dtype=np.float64))
    out: dict[str, np.ndarray] = {"log_amount": la}
    hour = (qt // NS % 86400) / 3600.0
    out["hour_sin"], out["hour_cos"] = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
    out["weekday"] = ((qt // NS // 86400 + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday (3)
    zero = np.zeros(len(q), dtype=np.int64)

    lo_cache: dict[str, np.ndarray] = {}

    def lo(w: str) -> np.ndarray:
        if w not in lo_cache:
            lo_cache[w] = np.searchsorted(ut, qt - parse_duration(w) * NS, side="left")
        return lo_cache[w]

    # State older than the tail, as integer codes of the entities above (-1: no event has that name).
    n_ent = max(ents.n, 1)
    ps = ents.of(h.pairs["source"]) if len(h.pairs) else np.zeros(0, np.int64)
    pt = ents.of(h.pairs["target"]) if len(h.pairs) else np.zeros(0, np.int64)
    both = (ps >= 0) & (pt >= 0)
    state_key = ents.pair(ps[both], pt[both])  # unique: the pair table has one row per (source, target)
    state_n = h.pairs["n"].to_numpy().astype(np.int64)[both] if len(h.pairs) else np.zeros(0, np.int64)
    # distinct counterparties in the state per entity code (pairs whose other end has no event count too)
    state_out_distinct = np.bincount(ps[ps >= 0], minlength=n_ent)
    state_in_distinct = np.bincount(pt[pt >= 0], minlength=n_ent)

    # Pairs as integer keys; the reversed pair of each row is coded in the same space.
    pk = ents.pair(e_src, e_dst)
    rk = ents.pair(q_dst, q_src)
    pcodes, _ = pd.factorize(np.concatenate([pk, rk]))
    pcodes = pcodes.astype(np.int64)
    ep, q_rev_code = pcodes[:n_ev], pcodes[n_ev:]
    q_pair_code = ep[n_tail:]
    # Distinct counterparties: events that are the first of their pair in the tail and unseen in the state.
    first = np.zeros(n_ev, dtype=bool)
    order = np.lexsort((erank, ep))
    if n_ev:
        first[order[np.r_[True, ep[order][1:] != ep[order][:-1]]]] = True
    if len(state_key):
        first &= pd.Index(state_key).get_indexer(pk) < 0
    fe = np.flatnonzero(first)
    v_new_out = _View(e_src[fe], erank[fe], m)
    v_new_in = _View(e_dst[fe], erank[fe], m)
    v_pair = _View(ep, erank, m)
    k_src, k_dst = _Keys(q_src, hi, m), _Keys(q_dst, hi, m)

    for r, qk, view, vnew, role, sdist in (("src", k_src, v_out, v_new_out, "out", state_out_distinct),
                                           ("dst", k_dst, v_in, v_new_in, "in", state_in_distinct)):
        for w in cfg.windows:
            out[f"{r}_cnt_{w}"] = view.count(qk, lo(w), hi)
        for w in cfg.windows:
            out[f"{r}_sum_{w}"] = np.log1p(view.sum("a", qk, lo(w), hi) / 100)
        cols = ["n", "lsum", "lsq", "last_ns"]
        if len(h.entities):
            e = h.entities[h.entities["role"] == role]
            st = _state_lookup(ents.of(e["entity"]), {c: e[c].to_numpy().astype(np.int64) for c in cols},
                               qk.key, {"last_ns": -1})
        else:
            st = {"n": zero, "lsum": zero, "lsq": zero, "last_ns": np.full(len(q), -1, np.int64)}
        n = view.count(qk, zero, hi) + st["n"]
        s1 = (view.sum("la", qk, zero, hi) + st["lsum"]) / LQ
        s2 = (view.sum("la2", qk, zero, hi) + st["lsq"]) / (LQ * LQ)
        lr = view.last_rank(qk, zero, hi)
        last = np.where(lr >= 0, ut[np.maximum(lr, 0)], st["last_ns"]).astype(np.int64)
        out[f"{r}_secs_prev"] = np.where(last >= 0, np.log1p(np.maximum(qt - last, 0) / NS), -1.0)
        out[f"{r}_n_hist"] = np.log1p(n)
        mean = np.divide(s1, n, out=np.zeros_like(s1), where=n > 0)
        var = np.divide(s2, n, out=np.zeros_like(s2), where=n > 0) - mean**2
        std = np.sqrt(np.maximum(var, 0.0))
        out[f"{r}_amt_z"] = np.where(n > 0, (la - mean) / (std + 0.25), 0.0)
        out[f"{r}_amt_ratio"] = np.where(n > 0, la - mean, 0.0)
        out[f"{r}_distinct"] = np.log1p(vnew.count(qk, zero, hi) + sdist[qk.key])

    k_pair, k_rev = _Keys(q_pair_code, hi, m), _Keys(q_rev_code, hi, m)
    sp = _state_lookup(state_key, {"n": state_n}, ents.pair(q_src, q_dst), {})["n"]
    pn = v_pair.count(k_pair, zero, hi) + sp
    out["pair_n_prev"] = np.log1p(pn)
    out["pair_is_new"] = (pn == 0).astype(np.float64)
    if neighbour:
        for w in cfg.neighbour_windows:
            out[f"src_in_cnt_{w}"] = v_in.count(k_src, lo(w), hi)
            out[f"src_in_sum_{w}"] = np.log1p(v_in.sum("a", k_src, lo(w), hi) / 100)
            out[f"dst_out_cnt_{w}"] = v_out.count(k_dst, lo(w), hi)
            out[f"dst_out_sum_{w}"] = np.log1p(v_out.sum("a", k_dst, lo(w), hi) / 100)
        out["src_in_distinct"] = np.log1p(v_new_in.count(k_src, zero, hi) + state_in_distinct[q_src])
        out["dst_out_distinct"] = np.log1p(v_new_out.count(k_dst, zero, hi) + state_out_distinct[q_dst])
        sr = _state_lookup(state_key, {"n": state_n}, rk, {})["n"]
        out["pair_rev_n_prev"] = np.log1p(v_pair.count(k_rev, zero, hi) + sr)
    for k, v in out.items():
        if "_cnt_" in k:
            out[k] = np.log1p(v)
    if cfg.robust:
        from fraud.robust_features import robust_features

        out.update(robust_features(
            cfg=cfg, h=h, ents=ents, view_cls=_View, m=m, ut=ut, erank=erank, et=et, ep=ep, pk=pk,
            cents=vals["a"], e_src=e_src, q_src=q_src, q_dst=q_dst, qt=qt, hi=hi, zero=zero, lo=lo, k_src=k_src,
            k_dst=k_dst, k_pair=k_pair, v_out=v_out, v_in=v_in, v_pair=v_pair, state_key=state_key,
            out=out))
    names = feature_names(cfg, neighbour)
    frame = pd.DataFrame({k: np.asarray(out[k], dtype=np.float32) for k in names})
    frame.index = df.index
    return frame


_ROLE = {"src": "sender", "dst": "receiver"}
_PLAIN = {
    "log_amount": "amount", "hour_sin": "time of day", "hour_cos": "time of day", "weekday": "day of week",
    "pair_n_prev": "earlier payments between this sender and receiver",
    "pair_is_new": "first payment between this sender and receiver",
    "pair_rev_n_prev": "earlier payments in the opposite direction",
    "src_in_distinct": "how many different payers the sender has", "dst_out_distinct": "how many different "
    "payees the receiver has",
    "path_return_hops": "money from the receiver reached the sender before (closes a cycle)",
    "ae_log_error": "unusual overall pattern (autoencoder)", "gnn_edge_logit": "network neighbourhood (GNN)",
}


def describe(name: str) -> str:
    """A human phrase for a model input column, for reason codes (e.g. 'sender: payments in the last 1h')."""
    if name in _PLAIN:
        return _PLAIN[name]
    from fraud.robust_features import describe_robust

    if (robust := describe_robust(name)) is not None:
        return robust
    parts = name.split("_")
    if name.startswith(("gnn_src", "gnn_dst")):
        return f"{_ROLE[name[4:7]]}'s network neighbourhood (GNN)"
    if name.startswith("ae_z"):
        return "unusual overall pattern (autoencoder)"
    if parts[0] in _ROLE:
        who = _ROLE[parts[0]]
        rest = parts[1:]
        if rest[:1] in (["in"], ["out"]):  # neighbour aggregates: the entity in its other role
            verb = "received" if rest[0] == "in" else "sent on"
            kind = "number of payments" if rest[1] == "cnt" else "amount"
            return f"{who}: {kind} {verb} in the last {rest[2]}"
        paid = "paid" if parts[0] == "src" else "received"
        table = {"cnt": f"payments {paid} in the last {{w}}", "sum": f"amount {paid} in the last {{w}}",
                 "secs": "time since the previous payment", "n": "length of payment history",
                 "amt": "amount compared with own history", "distinct": "number of different counterparties"}
        text = table.get(rest[0], " ".join(rest))
        return f"{who}: " + text.format(w=rest[1] if len(rest) > 1 else "")
    return name.replace("_", " ")
