"""Drift of a scored file against the model's reference: PSI per feature and unseen entities.

Population stability index of one feature, with bins fixed from the reference (`reference_features.parquet`,
up to 20k rows of the model's validation period: the latest data it saw, with every history window full and
the label feed running; early training rows know no labels yet and would make every later file look drifted):

    PSI = sum_b (p_new[b] - p_ref[b]) * ln(p_new[b] / p_ref[b])      (shares floored at 1e-4)

Bins are the reference deciles (`bins` quantiles; a feature with few distinct values gets one bin per
value), plus one bin for missing values. A reference's own missing values are left out of that feature's
reference shares (scoring never produces a missing value, so counting blanks would report drift). A scored file with missing values still lands
them in the missing bin, where the reference share is ~0, so they do show as drift. Rule of thumb: < 0.1
stable, 0.1-0.2 moderate, > 0.2 drifted (`threshold`). Counts are accumulated chunk by chunk, so drift of a
file larger than memory costs one pass and O(features x bins) memory.

Unseen entities: sources/targets absent from the model's stored history (train + validation), measured
both per row (share of rows whose sender is unseen) and per distinct entity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np
import pandas as pd

from fraud.serve.reasons import phrase

EPS = 1e-4


@dataclass
class DriftConfig:
    """PSI bins per feature and the PSI above which a feature is reported as drifted."""

    bins: int = 10
    threshold: float = 0.2
    min_rows: int = 200  # below this, PSI is mostly sampling noise: computed but no feature is flagged
    # Reported but never flagged. Calendar inputs depend on which days/hours a file covers (a 2-day file is
    # "drifted" in weekday by construction); expanding totals (history length, distinct counterparties,
    # earlier payments of the pair) grow with the age of the history by construction (PSI 3-7 on any file
    # scored after training). Neither says who transacts how; unseen entities are reported separately.
    # Entity risk from known labels has all-time parts that grow the same way (known frauds so far, time
    # since the latest, counterparties with a known fraud).
    ignore: tuple[str, ...] = ("weekday", "hour_sin", "hour_cos", "src_n_hist", "dst_n_hist", "src_distinct",
                               "dst_distinct", "src_in_distinct", "dst_out_distinct", "pair_n_prev",
                               *(f"{r}_{k}" for r in ("src", "dst") for k in (
                                   "known_fraud_n", "secs_known_fraud", "nbr_fraud_n", "nbr_fraud_share")))

    def __post_init__(self):
        if self.bins < 2:
            raise ValueError(f"drift bins must be >= 2, got {self.bins}")
        if not self.threshold > 0:
            raise ValueError(f"drift threshold must be > 0, got {self.threshold}")


def bin_edges(ref: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges of one reference column (right-closed bins; -inf/+inf implied at the ends)."""
    v = ref[np.isfinite(ref)]
    if len(v) == 0:
        return np.zeros(0)
    uniq = np.unique(v)
    if len(uniq) <= bins:
        return uniq[:-1]  # one bin per distinct value: (-inf, u0], (u0, u1], ...
    return np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(x: np.ndarray, edges: list[np.ndarray]) -> list[np.ndarray]:
    """Per column j of x [n, d], counts per bin [len(edges[j]) + 2]: value bin b holds the finite values v
    with edges[b-1] < v <= edges[b], then the missing (non-finite) bin. One compiled pass over the rows
    instead of a searchsorted per column: a 250k-row chunk's drift update went from 0.63 to 0.33 s."""
    width = max((len(e) for e in edges), default=0)
    packed = np.full((len(edges), max(width, 1)), np.inf)
    for j, e in enumerate(edges):
        packed[j, : len(e)] = e
    sizes = np.array([len(e) for e in edges], np.int64)
    counts = _bin_counts(np.ascontiguousarray(x), packed, sizes)
    return [counts[j, : sizes[j] + 2].copy() for j in range(len(edges))]


@nb.njit(cache=True, nogil=True)
def _bin_counts(x, edges, sizes):
    counts = np.zeros((x.shape[1], edges.shape[1] + 2), np.int64)
    for r in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = np.float64(x[r, j])
            if not np.isfinite(v):
                counts[j, sizes[j] + 1] += 1
                continue
            b = 0
            while b < sizes[j] and edges[j, b] < v:
                b += 1
            counts[j, b] += 1
    return counts


def psi(ref_counts: np.ndarray, new_counts: np.ndarray) -> float:
    """PSI between two count vectors over the same bins (0 when either is empty)."""
    if ref_counts.sum() == 0 or new_counts.sum() == 0:
        return 0.0
    p = np.maximum(ref_counts / ref_counts.sum(), EPS)
    q = np.maximum(new_counts / new_counts.sum(), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


class DriftMonitor:
    """Accumulates a file's feature histograms (bins from the reference) and unseen-entity counts."""

    def __init__(self, reference: pd.DataFrame, known_entities: pd.Index | None = None,
                 cfg: DriftConfig | None = None):
        self.cfg = cfg or DriftConfig()
        self.features = list(reference.columns)
        ref = reference.to_numpy(np.float64)
        self.reference_rows = len(ref)
        self.edges = [bin_edges(ref[:, j], self.cfg.bins) for j in range(ref.shape[1])]
        self.ref_counts = bin_counts(ref, self.edges)
        for c in self.ref_counts:  # blanked reference rows are not a share of the distribution (see above)
            c[-1] = 0
        self.new_counts = [np.zeros_like(c) for c in self.ref_counts]
        self.known = known_entities if known_entities is not None else pd.Index([], dtype="string")
        self.rows = 0
        self.unseen_rows = {"source": 0, "target": 0}
        self._distinct = {"source": set(), "target": set()}
        self._unseen = {"source": set(), "target": set()}

    def update(self, x: np.ndarray, df: pd.DataFrame) -> None:
        """Absorb the booster matrix rows x [n, d] (columns = reference columns) of canonical frame `df`."""
        x = np.asarray(x)
        for total, add in zip(self.new_counts, bin_counts(x, self.edges), strict=True):
            total += add
        self.rows += len(x)
        for role in ("source", "target"):
            names = df[role].astype("string").to_numpy()
            unseen = self.known.get_indexer(names) < 0
            self.unseen_rows[role] += int(unseen.sum())
            self._distinct[role].update(pd.unique(names).tolist())
            self._unseen[role].update(pd.unique(names[unseen]).tolist())

    def result(self) -> dict:
        """The drift.json content (see docs/fraud-scoring.md)."""
        values = {f: round(psi(r, n), 6) for f, r, n in zip(self.features, self.ref_counts, self.new_counts,
                                                           strict=True)}
        enough = self.rows >= self.cfg.min_rows
        drifted = sorted((f for f, v in values.items()
                          if enough and v > self.cfg.threshold and f not in self.cfg.ignore),
                         key=lambda f: -values[f])
        unseen = {}
        for role in ("source", "target"):
            d = len(self._distinct[role])
            unseen[role] = {"rows_share": round(self.unseen_rows[role] / self.rows, 6) if self.rows else 0.0,
                            "distinct": d, "distinct_unseen": len(self._unseen[role]),
                            "distinct_share": round(len(self._unseen[role]) / d, 6) if d else 0.0}
        return {"rows": self.rows, "reference_rows": self.reference_rows,
                "threshold": self.cfg.threshold, "bins": self.cfg.bins, "enough_rows": enough,
                "not_flagged": list(self.cfg.ignore),
                "psi": values, "drifted": drifted, "unseen_entities": unseen}

    def write(self, path: str | Path) -> dict:
        res = self.result()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2), encoding="utf-8")
        return res


def drift_warnings(result: dict) -> list[str]:
    """One warning line per drifted feature, largest PSI first (empty when nothing drifted)."""

    lines = [f"drift warning: {f} ({phrase(f)}) PSI {result['psi'][f]:.3f} > {result['threshold']:g}"
             for f in result["drifted"]]
    if not result.get("enough_rows", True):
        lines.append(f"drift: only {result['rows']} rows scored; PSI is not reliable below "
                     f"{DriftConfig.min_rows} rows, no feature flagged")
    return lines


def known_entities(history) -> pd.Index:
    """Entity names present in a model's stored history (`fraud.features.History`)."""
    parts = [history.entities["entity"].astype("string")] if len(history.entities) else []
    if len(history.tail):
        parts += [history.tail["source"].astype("string"), history.tail["target"].astype("string")]
    if not parts:
        return pd.Index([], dtype="string")
    return pd.Index(pd.unique(pd.concat(parts, ignore_index=True).to_numpy()))
