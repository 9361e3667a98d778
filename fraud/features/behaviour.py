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

Feature groups (the raw fields each derives from; the threat model in fraud/robust/threat.py uses this table):

| group | features | raw fields |
|---|---|---|
| row | log_amount, hour_sin/cos, weekday | amount, timestamp |
| velocity | {src,dst}_cnt_{w}, {src,dst}_sum_{w}, {src,dst}_secs_prev, {src,dst}_n_hist | source/target, timestamp, amount of earlier rows |
| relative | {src,dst}_amt_z, {src,dst}_amt_ratio | amount, amounts of earlier rows |
| counterparties | {src,dst}_distinct, pair_n_prev, pair_is_new | source, target of earlier rows |
| neighbour (graph baseline) | src_in_cnt_{w}, src_in_sum_{w}, dst_out_cnt_{w}, dst_out_sum_{w}, src_in_distinct, dst_out_distinct, pair_rev_n_prev | the other role's earlier rows |
| entity risk (with a label book) | {src,dst}_known_fraud_{w}, _known_share_{w}, _known_fraud_n, _secs_known_fraud, _nbr_fraud_n, _nbr_fraud_share (fraud/features/risk.py) | labels known before the row |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fraud.data.durations import NS, parse_duration, to_ns
from fraud.features.history import HISTORY_COLUMNS, LQ, History, _qlog
from fraud.features.labels import LabelBook, LabelConfig
from fraud.features.risk import risk_features, risk_names
from fraud.features.robust import robust_features, robust_names
from fraud.features.views import (
    Coded,
    _Keys,
    _sorted_unique,
    _state_lookup,
    _View,
    code_frame,
    member,
)


@dataclass
class FeatureConfig:
    """Which windows the velocity features count over, and how much raw history a model keeps."""

    windows: list[str] = field(default_factory=lambda: ["1h", "24h", "7d"])
    neighbour_windows: list[str] = field(default_factory=lambda: ["1h", "24h"])
    # Raw rows kept for scoring must cover the longest window and the GNN graph window + snapshot cadence;
    # the pipeline raises this to what the GNN needs.
    extra_tail: str = "0s"
    # Robust features (fraud/features/robust.py); off for the standard stack, on in adversarial
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


def feature_names(cfg: FeatureConfig, neighbour: bool, labels: LabelConfig | None = None) -> list[str]:
    """The ordered column names `build_features` returns (neighbour-aggregate ones only if asked, entity
    risk ones only with `labels`)."""
    names = list(ROW_FEATURES)
    for r in ("src", "dst"):
        names += [f"{r}_cnt_{w}" for w in cfg.windows] + [f"{r}_sum_{w}" for w in cfg.windows]
        names += [f"{r}_secs_prev", f"{r}_n_hist", f"{r}_amt_z", f"{r}_amt_ratio", f"{r}_distinct"]
    names += ["pair_n_prev", "pair_is_new"]
    if neighbour:
        names += neighbour_feature_names(cfg)
    if cfg.robust:
        names += robust_names(cfg.robust_window)
    if labels is not None:
        names += risk_names(labels)
    return names


def neighbour_feature_names(cfg: FeatureConfig) -> list[str]:
    """Simple neighbour-aggregate graph features: each endpoint's activity in the *other* role."""
    names = []
    for w in cfg.neighbour_windows:
        names += [f"src_in_cnt_{w}", f"src_in_sum_{w}", f"dst_out_cnt_{w}", f"dst_out_sum_{w}"]
    return names + ["src_in_distinct", "dst_out_distinct", "pair_rev_n_prev"]



def build_features(history: History | None, df: pd.DataFrame, cfg: FeatureConfig,
                   neighbour: bool = True, book: LabelBook | None = None,
                   labels: LabelConfig | None = None) -> pd.DataFrame:
    """Features of each row of `df` from `history` plus strictly earlier rows of `df` -> float32 frame.

    `df` is a canonical transactions frame (any row order) whose rows are all at or after the history's
    latest row; with `labels`, `book` holds the labels (each used only if known before the row). Returns
    `feature_names(cfg, neighbour, labels)` columns, one row per row of `df`, same index.
    """
    h = history if history is not None else History(cfg.tail_seconds)
    q = df[HISTORY_COLUMNS].reset_index(drop=True)
    qt = to_ns(q["timestamp"])
    if h.max_ns is not None and len(q) and qt.min() < h.max_ns:
        raise ValueError("rows to featurise start before the end of the stored history "
                         f"({pd.Timestamp(int(qt.min()), tz='UTC')} < {pd.Timestamp(h.max_ns, tz='UTC')}); "
                         "score them without stored history (history='none') or pass later rows")
    tail = h.involving(q) if 4 * len(q) < len(h.tail) else h.tail
    x = coded_features(code_frame(tail, q, h.entities, h.pairs), cfg, neighbour, book, labels)
    return pd.DataFrame(x, columns=feature_names(cfg, neighbour, labels), index=df.index)


def coded_features(c: Coded, cfg: FeatureConfig, neighbour: bool = True, book: LabelBook | None = None,
                   labels: LabelConfig | None = None) -> np.ndarray:
    """The `build_features` columns as a float32 matrix [n_query, len(feature_names)] from coded events
    (`fraud.features.views.Coded`): the arithmetic both file scoring and the service run."""
    n_tail, n_ev = c.n_tail, len(c.t)
    et, eamt = c.t, c.amount
    qt = et[n_tail:]
    n_q = len(qt)
    ut = _sorted_unique(et)
    m = len(ut) + 1
    erank = np.searchsorted(ut, et)
    hi = np.searchsorted(ut, qt, side="left")  # events with rank < hi are strictly earlier than the row
    e_src, e_dst = c.src, c.dst
    q_src, q_dst = e_src[n_tail:], e_dst[n_tail:]
    elog = _qlog(eamt)
    vals = {"a": np.rint(eamt * 100).astype(np.int64), "la": elog, "la2": elog * elog}
    v_out = _View(e_src, erank, m, vals)
    v_in = _View(e_dst, erank, m, vals)
    la = np.log1p(eamt[n_tail:])
    out: dict[str, np.ndarray] = {"log_amount": la}
    hour = (qt // NS % 86400) / 3600.0
    out["hour_sin"], out["hour_cos"] = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
    out["weekday"] = ((qt // NS // 86400 + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday (3)
    zero = np.zeros(n_q, dtype=np.int64)

    lo_cache: dict[str, np.ndarray] = {}

    def lo(w: str) -> np.ndarray:
        if w not in lo_cache:
            lo_cache[w] = np.searchsorted(ut, qt - parse_duration(w) * NS, side="left")
        return lo_cache[w]

    # State older than the tail, as integer codes of the entities above (-1: no event has that name).
    n_ent = max(c.n_ent, 1)
    ps, pt = c.pair_src, c.pair_dst
    both = (ps >= 0) & (pt >= 0)
    state_key = c.pair(ps[both], pt[both])  # unique: the pair table has one row per (source, target)
    state_n = c.pair_n[both]
    # distinct counterparties in the state per entity code (pairs whose other end has no event count too)
    state_out_distinct = np.bincount(ps[ps >= 0], minlength=n_ent)
    state_in_distinct = np.bincount(pt[pt >= 0], minlength=n_ent)

    # Pairs as integer keys; the reversed pair of each row is coded in the same space.
    pk = c.pair(e_src, e_dst)
    rk = c.pair(q_dst, q_src)
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
        first &= ~member(pk, state_key)
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
        st = {k: v[qk.key] for k, v in c.state[role].items()}
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
    sp = _state_lookup(state_key, {"n": state_n}, c.pair(q_src, q_dst), {})["n"]
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
    if labels is not None:
        out.update(risk_features(book if book is not None else LabelBook(), labels, c, qt))
    if cfg.robust:
        out.update(robust_features(
            cfg=cfg, c=c, view_cls=_View, m=m, ut=ut, erank=erank, et=et, ep=ep, pk=pk,
            cents=vals["a"], e_src=e_src, q_src=q_src, q_dst=q_dst, qt=qt, hi=hi, zero=zero, lo=lo, k_src=k_src,
            k_dst=k_dst, k_pair=k_pair, v_out=v_out, v_in=v_in, v_pair=v_pair, state_key=state_key,
            out=out))
    names = feature_names(cfg, neighbour, labels)
    x = np.empty((n_q, len(names)), np.float32)
    for j, k in enumerate(names):
        x[:, j] = out[k]
    return x
