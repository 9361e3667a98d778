"""Known-fraud state of snapshot nodes: what the label book said about each entity before the snapshot.

The GNN's node features gain these columns (`gnn.label_nodes`), so message passing can carry known risk two
hops and along paths (a card two payments away from a merchant with confirmed fraud), which the flat
entity-risk features cannot. A snapshot ending at `end` uses only labels known strictly before `end`; every
row it serves is at or after `end`, so no row's own label (known at or after the row) reaches an embedding.

| column | meaning |
|---|---|
| log_known_fraud_out | log1p confirmed frauds among the entity's payments (as payer) |
| log_known_fraud_in | log1p confirmed frauds among payments to it |
| log_known_labels | log1p all its known labels (either role): how much is known about it at all |
| has_known_fraud | 1 if any payment it sent or received is a confirmed fraud |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.features.labels import LabelBook, label_counts

LABEL_NODE_FEATURES = ["log_known_fraud_out", "log_known_fraud_in", "log_known_labels", "has_known_fraud"]
LABEL_NODE_DIM = len(LABEL_NODE_FEATURES)


class NodeLabels:
    """The book's per-entity indexes, coded once for an event log's entities; called per snapshot."""

    def __init__(self, book: LabelBook, entities: pd.Index):
        self.out, self.inn = book.index("out"), book.index("in")
        names = entities.to_numpy()
        self.code_out, self.code_in = self.out.codes(names), self.inn.codes(names)
        self.first = book.first_fraud_of(names)

    def __call__(self, nodes: np.ndarray, end_ns: int) -> np.ndarray:
        """[len(nodes) + 1, LABEL_NODE_DIM] float32 for the snapshot's nodes (global codes) plus its unseen
        node (zeros), from labels known strictly before `end_ns`."""
        t = np.full(len(nodes), end_ns, np.int64)
        n_out, f_out, _ = label_counts(self.out, self.code_out[nodes], t)
        n_in, f_in, _ = label_counts(self.inn, self.code_in[nodes], t)
        x = np.zeros((len(nodes) + 1, LABEL_NODE_DIM), np.float32)
        x[:-1, 0], x[:-1, 1] = np.log1p(f_out), np.log1p(f_in)
        x[:-1, 2] = np.log1p(n_out + n_in)
        x[:-1, 3] = self.first[nodes] < end_ns
        return x
