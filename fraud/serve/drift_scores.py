"""Drift of what the model says: the share of rows scored as likely fraud and what those rows look like.

Fraud is ~1-2 % of payments, so a new typology mix at the same fraud rate moves no input's distribution
over all rows by more than that share: no test on all rows can see it without also flagging noise. The
model's outputs can: against the reference period (the same validation rows as the input tests),

- likely-fraud share: rows with probability >= `likely`, as a rate ratio q / p with a two-proportion test.
  Reported, never flagged: it follows the handful of cases of each period (on same-distribution later
  files of the demo world it ranged from x0.33 to x1.39 of the validation period's, as wide as another
  typology mix moves it; docs/fraud-scoring.md "Drift");
- likely-fraud profile: each input's distribution among those rows (KS, or chi-square for categorical
  inputs), e.g. card testing turns the likely-fraud rows' amounts from hundreds into a few units.

Likely-fraud rows come in cases (a ring, a burst of one card), so their p-values count the senders'
Kish effective number, not rows, and the profile's p-value is Bonferroni-corrected over the inputs.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from fraud.serve.drift_stats import bin_counts, chi_square, ks, quantile_of


def kish(counts) -> float:
    """Kish's effective number (sum w)^2 / sum w^2 of per-entity row counts (0 for none)."""
    w = np.fromiter(counts, np.float64)
    return float(w.sum() ** 2 / (w ** 2).sum()) if len(w) and w.sum() else 0.0


class ScoreDrift:
    """Accumulates the likely-fraud rows of a file: their count, their inputs' histograms, their senders.

    ref_x [n, d] / ref_p [n]: the reference rows and their probabilities; edges: per input the test bins
    (`fraud.serve.drift_stats.bin_edges`); kinds: 'continuous' | 'categorical' | 'embedding' per input;
    ref_senders: the Kish effective number of senders among the reference's likely-fraud rows (None: rows).
    """

    def __init__(self, features: list[str], ref_x: np.ndarray, ref_p: np.ndarray, edges: list[np.ndarray],
                 kinds: list[str], likely: float, ref_senders: float | None = None):
        self.features, self.edges, self.kinds, self.likely = features, edges, kinds, likely
        high = ref_p >= likely
        self.ref_rows, self.ref_high = len(ref_p), int(high.sum())
        self.ref_counts = bin_counts(ref_x[high], edges)
        self.ref_senders = ref_senders
        self.new_counts = [np.zeros_like(c) for c in self.ref_counts]
        self.rows = self.high = 0
        self._senders: Counter = Counter()

    def update(self, x: np.ndarray, p: np.ndarray, senders: np.ndarray) -> None:
        """Absorb rows x [n, d] with probabilities p [n] and sender names [n]."""
        high = p >= self.likely
        self.rows += len(p)
        self.high += int(high.sum())
        if high.any():
            for total, add in zip(self.new_counts, bin_counts(x[high], self.edges), strict=True):
                total += add
            self._senders.update(senders[high].tolist())

    def absorb(self, other: ScoreDrift) -> None:
        """Add the counts of `other` (same reference and bins), e.g. another partition of the same file."""
        for total, add in zip(self.new_counts, other.new_counts, strict=True):
            total += add
        self.rows += other.rows
        self.high += other.high
        self._senders.update(other._senders)

    def share(self) -> dict:
        """The likely-fraud share against the reference: rate ratio and a two-proportion p-value."""
        p0 = self.ref_high / self.ref_rows if self.ref_rows else 0.0
        q = self.high / self.rows if self.rows else 0.0
        # +0.5 per count: a ratio with an empty side stays finite
        ratio = ((self.high + 0.5) / (self.rows + 1)) / ((self.ref_high + 0.5) / (self.ref_rows + 1)) \
            if self.rows else 1.0
        # two-proportion z-test with the likely-fraud rows counted by their effective senders
        n0 = self._eff(self.ref_high, self.ref_senders)
        n1 = self._eff(self.high, kish(self._senders.values()))
        pv = 1.0
        if self.rows and self.ref_rows and (self.high + self.ref_high):
            deff = (self.high + self.ref_high) / max(n0 + n1, 1e-9)  # rows per independent case
            pool = (self.high + self.ref_high) / (self.rows + self.ref_rows)
            se = np.sqrt(max(pool * (1 - pool), 1e-12) * deff * (1 / self.rows + 1 / self.ref_rows))
            from scipy.stats import norm

            pv = float(2 * norm.sf(abs(q - p0) / se))
        return {"likely": self.likely, "reference_share": round(p0, 6), "share": round(q, 6),
                "rows": self.high, "reference_rows": self.ref_high, "ratio": round(float(ratio), 4),
                "p_value": pv}

    def profile(self, threshold: float, p_value: float, skip) -> dict[str, dict]:
        """Per input (not embeddings, not those `skip(name)` excludes): KS D or Cramer's V among the
        likely-fraud rows, reference vs file; flagged above `threshold` at Bonferroni-corrected p."""
        n0 = self._eff(self.ref_high, self.ref_senders)
        n1 = self._eff(self.high, kish(self._senders.values()))
        tested = [j for j, f in enumerate(self.features) if self.kinds[j] != "embedding" and not skip(f)]
        out = {}
        for j in tested:
            ref, new = self.ref_counts[j], self.new_counts[j]
            if self.kinds[j] == "categorical":
                effect, pv = chi_square(ref, new, n0, n1)
            else:
                effect, pv = ks(ref, new, n0, n1)
            out[self.features[j]] = {
                "effect": round(effect, 6), "p_value": pv, "test": "chi-square" if self.kinds[j] == "categorical"
                else "ks", "reference_median": quantile_of(ref, self.edges[j], 0.5),
                "median": quantile_of(new, self.edges[j], 0.5),
                "flagged": bool(effect > threshold and pv < p_value / max(len(tested), 1))}
        return out

    @staticmethod
    def _eff(rows: int, senders: float | None) -> float:
        return float(min(rows, senders)) if senders else float(rows)
