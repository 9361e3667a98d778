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

    def __post_init__(self):
        for w in [*self.windows, *self.neighbour_windows, self.extra_tail]:
            parse_duration(w)
        if not self.windows:
            raise ValueError("features.windows must list at least one window, e.g. ['1h', '24h', '7d']")

    @property
    def tail_seconds(self) -> int:
        longest = max(parse_duration(w) for w in [*self.windows, *self.neighbour_windows])
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


@dataclass
class History:
    """Everything a model remembers about the past to compute features and graphs for later rows.

    tail: raw rows (timestamp, source, target, amount) with timestamp >= cutoff, in event order.
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
        self.max_ns = int(t.max())
        cutoff = self.max_ns - self.tail_seconds * NS
        tns = seconds(tail["timestamp"])
        old = tail[tns < cutoff]
        if len(old):
            self.entities = _merge_entities(self.entities, _entity_totals(old))
            self.pairs = _merge_pairs(self.pairs, old)
        self.tail = tail[tns >= cutoff].reset_index(drop=True)
        self.cutoff_ns = cutoff
        return self

    def copy(self) -> History:
        return History(self.tail_seconds, self.tail.copy(), self.entities.copy(), self.pairs.copy(),
                       self.cutoff_ns, self.max_ns)


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
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def bounds(self, qkey: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Position of (qkey, rank) in the sorted events; memoised per (qkey, rank) arrays of one call."""
        hit = self._cache.get((id(qkey), id(rank)))
        if hit is not None and hit[0] is qkey and hit[1] is rank:
            return hit[2]
        q = qkey.astype(np.int64) * self.m + rank.astype(np.int64)
        order = np.argsort(q)  # sorted needles make the binary searches cache-friendly
        out = np.empty(len(q), dtype=np.int64)
        out[order] = np.searchsorted(self.comp, q[order], side="left")
        self._cache[(id(qkey), id(rank))] = (qkey, rank, out)
        return out

    def count(self, qkey, lo_rank, hi_rank) -> np.ndarray:
        return self.bounds(qkey, hi_rank) - self.bounds(qkey, lo_rank)

    def sum(self, name, qkey, lo_rank, hi_rank) -> np.ndarray:
        cs = self.cs[name]
        return cs[self.bounds(qkey, hi_rank)] - cs[self.bounds(qkey, lo_rank)]

    def last_rank(self, qkey, zero, hi_rank) -> np.ndarray:
        """Time rank of the key's latest event before hi_rank, or -1 (zero: the all-zero rank array)."""
        start, hi = self.bounds(qkey, zero), self.bounds(qkey, hi_rank)
        out = np.full(len(qkey), -1, dtype=np.int64)
        has = hi > start
        out[has] = self.rank[hi[has] - 1]
        return out


def _lookup(table: pd.DataFrame, keys: pd.Series, cols: list[str]) -> pd.DataFrame:
    """Rows of `table` (indexed by entity) for `keys`, integers kept exact; absent keys give 0 (last_ns -1)."""
    idx = table.index.get_indexer(keys.to_numpy())
    got = {}
    for c in cols:
        arr = table[c].to_numpy().astype(np.int64)
        got[c] = np.where(idx >= 0, arr[np.maximum(idx, 0)] if len(arr) else 0, -1 if c == "last_ns" else 0)
    return pd.DataFrame(got)


def _pair_strings(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.astype("string").str.cat(b.astype("string"), sep="\x1f")


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
    ev = pd.concat([h.tail, q], ignore_index=True) if len(h.tail) else q
    et = seconds(ev["timestamp"])
    ut = np.unique(et)
    m = len(ut) + 1
    erank = np.searchsorted(ut, et)
    hi = np.searchsorted(ut, qt, side="left")  # events with rank < hi are strictly earlier than the row
    ecodes, uniq = pd.factorize(pd.concat([ev["source"], ev["target"]], ignore_index=True).astype("string"))
    n_ev = len(ev)
    e_src, e_dst = ecodes[:n_ev], ecodes[n_ev:]
    q_src, q_dst = e_src[len(h.tail):], e_dst[len(h.tail):]
    eamt = ev["amount"].to_numpy(dtype=np.float64)
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

    ent = h.entities.set_index("entity") if len(h.entities) else None
    pair_key = _pair_strings(h.pairs["source"], h.pairs["target"]) if len(h.pairs) else pd.Series([], dtype="string")
    pair_state = pd.Series(h.pairs["n"].to_numpy(), index=pair_key.to_numpy()) if len(h.pairs) else pd.Series(
        [], dtype="int64")

    # Distinct counterparties: events that are the first of their pair in the tail and unseen in the state.
    ev_pair = _pair_strings(ev["source"], ev["target"])
    pcodes, puniq = pd.factorize(pd.concat([ev_pair, _pair_strings(q["target"], q["source"])], ignore_index=True))
    ep, q_rev = pcodes[:n_ev], pcodes[n_ev:]
    q_pair = ep[len(h.tail):]
    first = np.zeros(n_ev, dtype=bool)
    order = np.lexsort((erank, ep))
    first[order[np.r_[True, ep[order][1:] != ep[order][:-1]]]] = True
    if len(pair_state):
        first &= ~ev_pair.isin(pair_state.index).to_numpy()
    fe = np.flatnonzero(first)
    v_new_out = _View(e_src[fe], erank[fe], m)
    v_new_in = _View(e_dst[fe], erank[fe], m)
    v_pair = _View(ep, erank, m)

    for r, qk, view, vnew, role, col in (("src", q_src, v_out, v_new_out, "out", "source"),
                                         ("dst", q_dst, v_in, v_new_in, "in", "target")):
        for w in cfg.windows:
            out[f"{r}_cnt_{w}"] = view.count(qk, lo(w), hi)
        for w in cfg.windows:
            out[f"{r}_sum_{w}"] = np.log1p(view.sum("a", qk, lo(w), hi) / 100)
        st = (_lookup(ent[ent["role"] == role], q[col].astype("string"), ["n", "lsum", "lsq", "last_ns"])
              if ent is not None else pd.DataFrame({"n": 0, "lsum": 0.0, "lsq": 0.0, "last_ns": -1}, index=q.index))
        n = view.count(qk, zero, hi) + st["n"].to_numpy().astype(np.int64)
        s1 = (view.sum("la", qk, zero, hi) + st["lsum"].to_numpy().astype(np.int64)) / LQ
        s2 = (view.sum("la2", qk, zero, hi) + st["lsq"].to_numpy().astype(np.int64)) / (LQ * LQ)
        lr = view.last_rank(qk, zero, hi)
        last = np.where(lr >= 0, ut[np.maximum(lr, 0)], st["last_ns"].to_numpy()).astype(np.int64)
        out[f"{r}_secs_prev"] = np.where(last >= 0, np.log1p(np.maximum(qt - last, 0) / NS), -1.0)
        out[f"{r}_n_hist"] = np.log1p(n)
        mean = np.divide(s1, n, out=np.zeros_like(s1), where=n > 0)
        var = np.divide(s2, n, out=np.zeros_like(s2), where=n > 0) - mean**2
        std = np.sqrt(np.maximum(var, 0.0))
        out[f"{r}_amt_z"] = np.where(n > 0, (la - mean) / (std + 0.25), 0.0)
        out[f"{r}_amt_ratio"] = np.where(n > 0, la - mean, 0.0)
        state_distinct = (h.pairs.groupby(col).size().reindex(q[col].astype("string").to_numpy()).fillna(0)
                          .to_numpy() if len(h.pairs) else 0)
        out[f"{r}_distinct"] = np.log1p(vnew.count(qk, zero, hi) + state_distinct)

    pkey = _pair_strings(q["source"], q["target"])
    rkey = _pair_strings(q["target"], q["source"])
    sp = pair_state.reindex(pkey.to_numpy()).fillna(0).to_numpy() if len(pair_state) else 0
    pn = v_pair.count(q_pair, zero, hi) + sp
    out["pair_n_prev"] = np.log1p(pn)
    out["pair_is_new"] = (pn == 0).astype(np.float64)
    if neighbour:
        for w in cfg.neighbour_windows:
            out[f"src_in_cnt_{w}"] = v_in.count(q_src, lo(w), hi)
            out[f"src_in_sum_{w}"] = np.log1p(v_in.sum("a", q_src, lo(w), hi) / 100)
            out[f"dst_out_cnt_{w}"] = v_out.count(q_dst, lo(w), hi)
            out[f"dst_out_sum_{w}"] = np.log1p(v_out.sum("a", q_dst, lo(w), hi) / 100)
        sd_in = (h.pairs.groupby("target").size().reindex(q["source"].astype("string").to_numpy()).fillna(0)
                 .to_numpy() if len(h.pairs) else 0)
        sd_out = (h.pairs.groupby("source").size().reindex(q["target"].astype("string").to_numpy()).fillna(0)
                  .to_numpy() if len(h.pairs) else 0)
        out["src_in_distinct"] = np.log1p(v_new_in.count(q_src, zero, hi) + sd_in)
        out["dst_out_distinct"] = np.log1p(v_new_out.count(q_dst, zero, hi) + sd_out)
        sr = pair_state.reindex(rkey.to_numpy()).fillna(0).to_numpy() if len(pair_state) else 0
        out["pair_rev_n_prev"] = np.log1p(v_pair.count(q_rev, zero, hi) + sr)
    for k, v in out.items():
        if "_cnt_" in k:
            out[k] = np.log1p(v)
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
