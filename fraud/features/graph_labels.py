"""Known-fraud state of snapshot nodes: what the label book said about each entity before the snapshot.

The GNN's node features gain these columns (`gnn.label_nodes`), so message passing can carry known risk two
hops and along paths (a card two payments away from a merchant with confirmed fraud), which the flat
entity-risk features cannot. A snapshot ending at `end` uses only labels known strictly before `end`; every
row it serves is at or after `end`, so no row's own label (known at or after the row) reaches an embedding.

Counted over labels that became known in the last `window` before the boundary (the longest
labels.windows): all-time counts would grow with the age of the data, so a GNN trained on early snapshots
would meet ever larger inputs later; windowed counts keep the input distribution stable.

| column | meaning |
|---|---|
| log_known_fraud_out | log1p confirmed frauds among the entity's payments (as payer) |
| log_known_fraud_in | log1p confirmed frauds among payments to it |
| log_known_labels | log1p all its labels known in the window (either role): how much is known about it |
| known_fraud_share | confirmed frauds / labels known in the window (0 when none) |
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pandas as pd

from fraud.data.durations import NS
from fraud.features.labels import LabelBook

LABEL_NODE_FEATURES = ["log_known_fraud_out", "log_known_fraud_in", "log_known_labels", "known_fraud_share"]
LABEL_NODE_DIM = len(LABEL_NODE_FEATURES)


class NodeLabels:
    """The book's per-entity indexes, coded once for an event log's entities; called per snapshot."""

    def __init__(self, book: LabelBook, entities: pd.Index, window_s: int):
        self.out, self.inn = book.index("out"), book.index("in")
        names = entities.to_numpy()
        self.code_out, self.code_in = self.out.codes(names), self.inn.codes(names)
        self.window_ns = window_s * NS

    def __call__(self, nodes: np.ndarray, end_ns: int) -> np.ndarray:
        """[len(nodes) + 1, LABEL_NODE_DIM] float32 for the snapshot's nodes (global codes) plus its unseen
        node (zeros), from labels known in [end_ns - window, end_ns)."""
        out, inn = self.out, self.inn
        # One compiled pass without the GIL (the snapshot threads run it in parallel): the integer counts
        # `label_counts` gives at both ends of the window, then numpy's log1p and division (the same bits).
        n_out, f_out, n_in, f_in = _window_counts(
            out.start, out.known, out.fraud_cum, self.code_out, inn.start, inn.known, inn.fraud_cum, self.code_in,
            nodes.astype(np.int64), end_ns - self.window_ns, end_ns)
        x = np.zeros((len(nodes) + 1, LABEL_NODE_DIM), np.float32)
        x[:-1, 0], x[:-1, 1] = np.log1p(f_out), np.log1p(f_in)
        n = n_out + n_in
        x[:-1, 2] = np.log1p(n)
        x[:-1, 3] = np.divide(f_out + f_in, n, out=np.zeros(len(nodes)), where=n > 0)
        return x


@nb.njit(cache=True, nogil=True, inline="always")
def _first_at_or_after(known, lo, hi, t):
    while lo < hi:
        mid = (lo + hi) // 2
        if known[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, nogil=True)
def _window_counts(start_o, known_o, cum_o, code_o, start_i, known_i, cum_i, code_i, nodes, t0, t1):
    """Per node, labels and frauds known in [t0, t1) as payer (o) and as payee (i) [len(nodes)] int64."""
    n = len(nodes)
    n_o, f_o = np.zeros(n, np.int64), np.zeros(n, np.int64)
    n_i, f_i = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for k in range(n):
        for role in range(2):
            start, known, cum = (start_o, known_o, cum_o) if role == 0 else (start_i, known_i, cum_i)
            c = code_o[nodes[k]] if role == 0 else code_i[nodes[k]]
            if c < 0:
                continue
            a, b = start[c], start[c + 1]
            p0 = _first_at_or_after(known, a, b, t0)
            p1 = _first_at_or_after(known, a, b, t1)
            fr = (cum[p1 - 1] if p1 > a else 0) - (cum[p0 - 1] if p0 > a else 0)
            if role == 0:
                n_o[k], f_o[k] = p1 - p0, fr
            else:
                n_i[k], f_i[k] = p1 - p0, fr
    return n_o, f_o, n_i, f_i
