"""Point-in-time entity risk from known labels: what a fraud team already knows about a payment's sender,
its receiver and the counterparties each has dealt with.

Per role (src: the sender, from labels of its payments; dst: the receiver, from labels of payments to it):

| feature | meaning |
|---|---|
| {r}_known_fraud_{w} | log1p frauds among the entity's labels that became known in [t - w, t) |
| {r}_known_share_{w} | those frauds / all its labels known in [t - w, t) (0 when none) |
| {r}_known_fraud_n | log1p frauds among all its labels known before t |
| {r}_secs_known_fraud | log1p seconds since its latest fraud label became known (-1: none) |
| {r}_nbr_fraud_n | log1p of its distinct counterparties (before t) with a fraud label known before t |
| {r}_nbr_fraud_share | that / its distinct counterparties before t (0 when none) |

A counterparty "has known fraud" when any label of a payment it sent or received was fraud and known before
t. Counts are integers, so the values do not depend on chunking or order (only the book and the history).
Windows count by the time a label became known: with a 7-day delay, a 14-day window covers payments made
21 to 7 days before t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.data.durations import NS, parse_duration
from fraud.features.labels import NEVER, LabelBook, LabelConfig, count_below, csr_sorted, label_counts
from fraud.features.views import member

ROLES = (("src", "out", "source", "target"), ("dst", "in", "target", "source"))
OLDER = np.iinfo(np.int64).min  # first-contact time of pairs in the history totals: before any query


def risk_names(cfg: LabelConfig) -> list[str]:
    names = []
    for r in ("src", "dst"):
        for w in cfg.windows:
            names += [f"{r}_known_fraud_{w}", f"{r}_known_share_{w}"]
        names += [f"{r}_known_fraud_n", f"{r}_secs_known_fraud", f"{r}_nbr_fraud_n", f"{r}_nbr_fraud_share"]
    return names


def risk_features(book: LabelBook, cfg: LabelConfig, c, qt: np.ndarray) -> dict[str, np.ndarray]:
    """The `risk_names` features [n] float64 of the query rows of `c` (a `fraud.features.views.Coded`: the
    events of the history tail and the query rows, the history's pair totals older than the tail), times
    `qt` ns."""
    out: dict[str, np.ndarray] = {}
    n_q = len(qt)
    ff_code = book.first_fraud_of(c.names) if c.n_ent else np.zeros(0, np.int64)
    e_src, e_dst, et = c.src, c.dst, c.t
    for r, role, _key, other_col in ROLES:
        ix = book.index(role)
        key_ev, other_ev = (e_src, e_dst) if role == "out" else (e_dst, e_src)
        q_key = key_ev[len(key_ev) - n_q:]
        codes = ix.codes(c.names[q_key])
        n_all, f_all, last = label_counts(ix, codes, qt)
        for w in cfg.windows:
            n_old, f_old, _ = label_counts(ix, codes, qt - parse_duration(w) * NS)
            n_w, f_w = n_all - n_old, f_all - f_old
            out[f"{r}_known_fraud_{w}"] = np.log1p(f_w)
            out[f"{r}_known_share_{w}"] = np.divide(f_w, n_w, out=np.zeros(n_q), where=n_w > 0)
        out[f"{r}_known_fraud_n"] = np.log1p(f_all)
        out[f"{r}_secs_known_fraud"] = np.where(last >= 0, np.log1p(np.maximum(qt - last, 0) / NS), -1.0)
        key_st, other_st = (c.pair_src, c.pair_dst) if role == "out" else (c.pair_dst, c.pair_src)
        n_cp, n_bad = _counterparties(c.n_ent, q_key, qt, key_ev, other_ev, et, ff_code, key_st, other_st,
                                      c.pair_names[other_col] if len(key_st) else None, book)
        out[f"{r}_nbr_fraud_n"] = np.log1p(n_bad)
        out[f"{r}_nbr_fraud_share"] = np.divide(n_bad, n_cp, out=np.zeros(n_q), where=n_cp > 0)
    return out


def _counterparties(n_ent: int, q_key: np.ndarray, qt: np.ndarray, key_ev: np.ndarray, other_ev: np.ndarray,
                    et: np.ndarray, ff_code: np.ndarray, key_st: np.ndarray, other_st: np.ndarray,
                    other_names: np.ndarray | None, book: LabelBook) -> tuple[np.ndarray, np.ndarray]:
    """(distinct counterparties before t, those with a fraud known before t) per query row.

    A pair (key, other) is a counterparty from its first payment on; it "has known fraud" from
    max(first payment, other's first known fraud) on: both are times, so each is one sorted count per key.
    Pairs in the history totals are older than every query row (first payment: OLDER).
    """
    wanted = np.zeros(max(n_ent, 1), bool)
    wanted[q_key] = True
    ev = wanted[key_ev]
    pair = key_ev[ev] * np.int64(max(n_ent, 1)) + other_ev[ev]
    codes, uniq = pd.factorize(pair)
    first = np.full(len(uniq), NEVER, np.int64)
    np.minimum.at(first, codes, et[ev])
    keys, others = uniq // max(n_ent, 1), uniq % max(n_ent, 1)
    ff = ff_code[others] if len(others) else np.zeros(0, np.int64)
    if other_names is not None:
        st = np.flatnonzero((key_st >= 0) & wanted[np.maximum(key_st, 0)])
        st_pair = np.where(other_st[st] >= 0, key_st[st] * np.int64(max(n_ent, 1)) + other_st[st], -1)
        # A pair in both (older totals and recent events) counts once, from the older first payment.
        first = np.where(member(uniq, st_pair), OLDER, first)
        st = st[~member(st_pair, uniq)]
        keys = np.concatenate([keys, key_st[st]])
        first = np.concatenate([first, np.full(len(st), OLDER, np.int64)])
        ff = np.concatenate([ff, book.first_fraud_of(np.asarray(other_names)[st])])
    start, firsts = csr_sorted(keys, first, max(n_ent, 1))
    n_cp = count_below(start, firsts, q_key, qt)
    bad = ff < NEVER
    start_b, acts = csr_sorted(keys[bad], np.maximum(first[bad], ff[bad]), max(n_ent, 1))
    return n_cp, count_below(start_b, acts, q_key, qt)
