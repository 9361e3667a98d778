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

import numpy as np
import pandas as pd

from fraud.data.durations import NS
from fraud.features.labels import LabelBook, label_counts

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
        counts = []
        for ix, codes in ((self.out, self.code_out[nodes]), (self.inn, self.code_in[nodes])):
            n1, f1, _ = label_counts(ix, codes, np.full(len(nodes), end_ns, np.int64))
            n0, f0, _ = label_counts(ix, codes, np.full(len(nodes), end_ns - self.window_ns, np.int64))
            counts.append((n1 - n0, f1 - f0))
        (n_out, f_out), (n_in, f_in) = counts
        x = np.zeros((len(nodes) + 1, LABEL_NODE_DIM), np.float32)
        x[:-1, 0], x[:-1, 1] = np.log1p(f_out), np.log1p(f_in)
        n = n_out + n_in
        x[:-1, 2] = np.log1p(n)
        x[:-1, 3] = np.divide(f_out + f_in, n, out=np.zeros(len(nodes)), where=n > 0)
        return x
