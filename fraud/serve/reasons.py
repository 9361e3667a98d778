"""Reason codes: the top model inputs that pushed a transaction's score up, named in human terms.

XGBoost gives per-feature contributions in log-odds (`pred_contribs`, exact TreeSHAP; or the much cheaper
Saabas approximation, `approx_contribs`). Several model inputs describe one thing a person would name once
(`hour_sin` + `hour_cos` = "time of day"; the 8 GNN source-embedding columns = "sender's network
neighbourhood"), so contributions are summed per phrase before ranking. Only contributions that raise the
fraud score become reasons: a reason answers "why is this score high?". When the phrase is a single numeric
input, a direction is added from the model's reference rows ("(high)"/"(low)" against the validation
period's median, "(yes)"/"(no)" for 0/1 inputs), so "amount compared with own history (high)" reads as it should.

    codes = ReasonCoder(model.feature_names_, model.reference_)
    table = codes.top(contrib[:, :-1], x, k=3)   # DataFrame reason_1..reason_3 (empty string: no reason)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.features.names import describe


def phrase(feature: str) -> str:
    """The human phrase of one model input (see `fraud.features.names.describe`)."""
    return describe(feature)


def reason_frame(labels: np.ndarray) -> pd.DataFrame:
    """reason_1..reason_k string columns from an object array of reasons [n, k]."""
    return pd.DataFrame({f"reason_{i + 1}": pd.array(labels[:, i], dtype="string") for i in range(labels.shape[1])})


class ReasonCoder:
    """Maps contributions [n, d] over model inputs to the top-k human reasons per row."""

    def __init__(self, feature_names: list[str], reference: pd.DataFrame | None = None):
        self.feature_names = list(feature_names)
        phrases = [phrase(f) for f in self.feature_names]
        self.phrases = list(dict.fromkeys(phrases))  # unique, in first-seen order
        col = {p: i for i, p in enumerate(self.phrases)}
        self.group = np.array([col[p] for p in phrases], dtype=np.int64)  # [d] -> phrase index
        # One-hot [d, g]: contributions @ G sums the inputs that share a phrase.
        self._g = np.zeros((len(self.feature_names), len(self.phrases)), np.float32)
        self._g[np.arange(len(self.feature_names)), self.group] = 1.0
        sizes = np.bincount(self.group, minlength=len(self.phrases))
        # Directions only for phrases backed by one input that is not a learned embedding dimension.
        self._single = np.full(len(self.phrases), -1, np.int64)
        for j, f in enumerate(self.feature_names):
            g = self.group[j]
            if sizes[g] == 1 and not f.startswith(("gnn_src", "gnn_dst", "ae_z")):
                self._single[g] = j
        self._median = np.full(len(self.feature_names), np.nan)
        self._binary = np.zeros(len(self.feature_names), bool)
        if reference is not None and len(reference):
            ref = reference.reindex(columns=self.feature_names).to_numpy(np.float64)
            with np.errstate(all="ignore"):
                self._median = np.nanmedian(ref, axis=0) if ref.size else self._median
            for j in range(ref.shape[1]):
                vals = np.unique(ref[:, j][np.isfinite(ref[:, j])])
                self._binary[j] = len(vals) <= 2 and set(vals.tolist()) <= {0.0, 1.0}

    def grouped(self, contrib: np.ndarray) -> np.ndarray:
        """Contributions summed per phrase: [n, d] -> [n, g] (log-odds)."""
        return np.asarray(contrib, np.float32) @ self._g

    def top(self, contrib: np.ndarray, x: np.ndarray | None = None, k: int = 3) -> pd.DataFrame:
        """reason_1..reason_k per row: phrases of the k largest positive grouped contributions (else '')."""
        return reason_frame(self.labels(contrib, x, k))

    def labels(self, contrib: np.ndarray, x: np.ndarray | None = None, k: int = 3) -> np.ndarray:
        """The reasons of `top` as an object array [n, k] ('' where a row has fewer positive reasons)."""
        out = np.full((len(contrib), k), "", dtype=object)
        if len(contrib) == 0 or k == 0:
            return out
        idx, val = self.top_indices(contrib, k)
        labels = self._labels(idx, x)
        labels[val <= 0] = ""
        out[:, : labels.shape[1]] = labels
        return out

    def top_indices(self, contrib: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Phrase indices [n, k'] and their grouped contributions [n, k'] (k' = min(k, g)), largest first."""
        g = self.grouped(contrib)
        k = min(k, g.shape[1])
        part = np.argpartition(-g, k - 1, axis=1)[:, :k] if g.shape[1] > k else np.tile(np.arange(g.shape[1]),
                                                                                      (len(g), 1))
        vals = np.take_along_axis(g, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)

    def explain(self, contrib: np.ndarray, x: np.ndarray | None = None, k: int = 3) -> list[list[dict]]:
        """Per row, up to k reasons as {'reason', 'contribution'} (log-odds), positive ones only (for JSON)."""
        idx, val = self.top_indices(contrib, k)
        labels = self._labels(idx, x)
        return [[{"reason": str(labels[r, i]), "contribution": round(float(val[r, i]), 4)}
                 for i in range(idx.shape[1]) if val[r, i] > 0] for r in range(len(idx))]

    def _labels(self, idx: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        names = np.array(self.phrases, dtype=object)
        labels = names[idx]
        if x is None:
            return labels
        feat = self._single[idx]  # [n, k] input column backing each phrase, or -1
        rows = np.arange(len(idx))[:, None]
        has = feat >= 0
        value = np.where(has, np.asarray(x)[rows, np.maximum(feat, 0)], np.nan)
        med = self._median[np.maximum(feat, 0)]
        binary = self._binary[np.maximum(feat, 0)]
        suffix = np.full(idx.shape, "", dtype=object)
        known = has & np.isfinite(value) & np.isfinite(med)
        suffix[known & binary & (value >= 0.5)] = " (yes)"
        suffix[known & binary & (value < 0.5)] = " (no)"
        suffix[known & ~binary & (value > med)] = " (high)"
        suffix[known & ~binary & (value < med)] = " (low)"
        return labels + suffix
