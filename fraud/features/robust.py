"""Robust features: anchored in history the attacker cannot move with amount, timing or splitting.

Off for the standard stack (`features.robust: false`, its features and speed are unchanged);
`fit_adversarial` switches them on (`adversarial.robust_features`). Why each survives the threat model
(±60 % amount, ±12 h per part, up to 5 parts at budget 2; who pays whom and all history stay fixed):

| feature | what it is | why the attacker cannot empty it |
|---|---|---|
| pair_age | seconds since this sender first paid this receiver (0 = first payment), capped at `robust_window` | a new payee stays young: every part lands within a day of the first |
| dst_age | seconds since the receiver was first seen in either role (0 = never), capped | a fresh mule account stays fresh |
| pair_sum_{w} | amount on this pair over `robust_window`, this payment included | splitting moves money into earlier parts, the last part still sees it all |
| src_young_cnt_{w}, src_young_sum_{w} | payments / amount the sender sent to *young* payees (pair younger than `young_pair`) over `robust_window`, this one included | splitting adds to the count; shifting by hours keeps them inside the window |
| src_young_ratio, pair_total_ratio | those sums in log space minus the sender's mean log amount (0 without history) | relative to the sender's own history, which is not the attacker's |
| src_since_in | seconds since the sender last received money (-1 none) | pass-through timing; moves with a shift but only within the budget, log scale |

`tail_seconds` covers `robust_window + young_pair` so chunked and whole-file scoring agree exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.data.durations import parse_duration

NS = 1_000_000_000


def robust_names(window: str) -> list[str]:
    return ["pair_age", "dst_age", f"pair_sum_{window}", f"src_young_cnt_{window}", f"src_young_sum_{window}",
            "src_young_ratio", "pair_total_ratio", "src_since_in"]


def _first_rank(view, q, zero, hi) -> np.ndarray:
    """Time rank of the key's first event before hi_rank, or -1."""
    start, end = view.bounds(q, zero), view.bounds(q, hi)
    out = np.full(len(q.key), -1, dtype=np.int64)
    has = end > start
    out[has] = view.rank[start[has]]
    return out


def robust_features(*, cfg, c, view_cls, m, ut, erank, et, ep, pk, cents, e_src,
                    q_src, q_dst, qt, hi, zero, lo, k_src, k_dst, k_pair, v_out, v_in, v_pair,
                    state_key, out) -> dict[str, np.ndarray]:
    """The robust columns (see the module table) from build_features' internals; `out` holds the base
    columns already computed (log_amount, src_amt_ratio); `c`: the coded events and totals."""

    w = cfg.robust_window
    cap = parse_duration(w) * NS
    young = parse_duration(cfg.young_pair) * NS
    lo_w = lo(w)
    res: dict[str, np.ndarray] = {}
    # pair state (older than the tail): such a pair is older than the tail, i.e. older than the cap
    in_state_q = np.zeros(len(qt), bool)
    in_state_e = np.zeros(len(et), bool)
    if len(state_key):
        idx = pd.Index(state_key)
        in_state_q = idx.get_indexer(c.pair(q_src, q_dst)) >= 0
        in_state_e = idx.get_indexer(pk) >= 0
    fr = _first_rank(v_pair, k_pair, zero, hi)
    age = np.where(fr >= 0, qt - ut[np.maximum(fr, 0)], 0)
    age = np.where(in_state_q, cap, np.minimum(age, cap))
    res["pair_age"] = np.log1p(age / NS)
    # receiver first seen in either role
    f_in, f_out = _first_rank(v_in, k_dst, zero, hi), _first_rank(v_out, k_dst, zero, hi)
    both = np.where((f_in >= 0) & (f_out >= 0), np.minimum(f_in, f_out), np.maximum(f_in, f_out))
    dage = np.where(both >= 0, np.minimum(qt - ut[np.maximum(both, 0)], cap), 0)
    if c.n_ent:
        dage = np.where(c.old[q_dst], cap, dage)
    res["dst_age"] = np.log1p(dage / NS)
    # pair amount over the window, this payment included
    v_pair_a = view_cls(ep, erank, m, {"a": cents})
    amount = cents[len(et) - len(qt):]
    pair_sum = v_pair_a.sum("a", k_pair, lo_w, hi) + amount
    res[f"pair_sum_{w}"] = np.log1p(pair_sum / 100)
    # payments to young payees: each event's pair age at its own time (state pairs are old)
    codes = int(ep.max()) + 1 if len(ep) else 1
    first_r = np.full(codes, np.iinfo(np.int64).max)
    np.minimum.at(first_r, ep, erank)
    ev_young = ~in_state_e & (et - ut[first_r[ep]] < young)
    yi = np.flatnonzero(ev_young)
    v_young = view_cls(e_src[yi], erank[yi], m, {"a": cents[yi]})
    cur = (age < young) & ~in_state_q
    ycnt = v_young.count(k_src, lo_w, hi) + cur
    ysum = v_young.sum("a", k_src, lo_w, hi) + np.where(cur, amount, 0)
    res[f"src_young_cnt_{w}"] = np.log1p(ycnt)
    res[f"src_young_sum_{w}"] = np.log1p(ysum / 100)
    ratio = out["src_amt_ratio"]  # log_amount - sender mean (0 without history)
    has = np.asarray(out["src_n_hist"]) > 0
    mean = out["log_amount"] - ratio
    res["src_young_ratio"] = np.where(has, np.log1p(ysum / 100) - mean, 0.0)
    res["pair_total_ratio"] = np.where(has, np.log1p(pair_sum / 100) - mean, 0.0)
    # time since the sender last received money (tail, else state)
    lr = v_in.last_rank(k_src, zero, hi)
    last = np.where(lr >= 0, ut[np.maximum(lr, 0)], -1)
    if c.n_ent:
        last = np.where(lr >= 0, last, c.state["in"]["last_ns"][q_src])
    res["src_since_in"] = np.where(last >= 0, np.log1p(np.maximum(qt - last, 0) / NS), -1.0)
    return res


def describe_robust(name: str) -> str | None:
    """A human phrase for a robust column (reason codes), or None for other columns."""
    plain = {"pair_age": "how long the sender has paid this receiver", "dst_age": "how long the receiver "
             "has existed", "src_young_ratio": "amount sent to new payees compared with own history",
             "pair_total_ratio": "amount to this receiver lately compared with own history",
             "src_since_in": "time since the sender last received money"}
    if name in plain:
        return plain[name]
    w = name.rsplit("_", 1)[-1]
    if name.startswith("pair_sum_"):
        return f"amount to this receiver in the last {w}"
    if name.startswith("src_young_cnt_"):
        return f"sender: payments to new payees in the last {w}"
    if name.startswith("src_young_sum_"):
        return f"sender: amount to new payees in the last {w}"
    return None
