"""Drift of a subset of a file's rows: the rows the model scores as likely fraud, and the rows confirmed as fraud.

Fraud is ~1-2 % of payments, so a new typology mix at the same fraud rate moves no input's distribution
over all rows by more than that share: no test on all rows can see it without also flagging noise. Two
subsets can, each against the same subset of the reference period (the validation rows of the input tests):

- likely fraud, rows with probability >= `likely` (available at scoring time):
  - share: q / p as a rate ratio with a two-proportion test. Reported, never flagged: it follows the
    handful of cases of each period (docs/fraud-scoring.md "Drift");
  - profile: each input's distribution among those rows (KS, or chi-square for categorical inputs), e.g.
    card testing turns the likely-fraud rows' amounts from hundreds into a few units;
- confirmed fraud, rows whose fraud label the model's label book holds (`fraud feedback`; empty for a file
  scored before its labels came back): the same profile over every confirmed fraud, not only those the
  model scored high, and the model's recall on them at its threshold (`ConfirmedDrift`). A typology whose
  amounts and timing stay ordinary (a compromised merchant) shows in neither input drift nor the
  likely-fraud rows, because the model misses it; the recall on confirmed cases drops.

Fraud rows come in cases (a ring, a burst of one card), so p-values count the senders' Kish effective
number, not rows, and a profile's p-value is Bonferroni-corrected over the inputs.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.stats import norm

from fraud.serve.drift_stats import bin_counts, chi_square, ks, quantile_of


def kish(counts) -> float:
    """Kish's effective number (sum w)^2 / sum w^2 of per-entity row counts (0 for none)."""
    w = np.fromiter(counts, np.float64)
    return float(w.sum() ** 2 / (w ** 2).sum()) if len(w) and w.sum() else 0.0


def two_proportions(k0: int, n0: int, k1: int, n1: int, deff: float = 1.0) -> float:
    """Two-sided p-value of k0/n0 vs k1/n1 (pooled z-test), the variance inflated by the design effect
    `deff` (rows per independent case)."""
    if not (n0 and n1 and (k0 + k1)):
        return 1.0
    pool = (k0 + k1) / (n0 + n1)
    se = np.sqrt(max(pool * (1 - pool), 1e-12) * max(deff, 1.0) * (1 / n0 + 1 / n1))
    return float(2 * norm.sf(abs(k1 / n1 - k0 / n0) / se))


class SubsetDrift:
    """Accumulates the rows of one subset of a file: how many among the rows counted, their inputs'
    histograms, their senders.

    ref_x [n, d]: the reference rows; ref_in [n] bool: the reference's subset; edges: per input the test bins
    (`fraud.serve.drift_stats.bin_edges`); kinds: 'continuous' | 'categorical' | 'embedding' per input;
    ref_senders: the Kish effective number of senders among the reference's subset (None: its rows).
    """

    def __init__(self, features: list[str], ref_x: np.ndarray, ref_in: np.ndarray, edges: list[np.ndarray],
                 kinds: list[str], ref_senders: float | None = None):
        self.features, self.edges, self.kinds = features, edges, kinds
        ref_in = np.asarray(ref_in, bool)
        self.ref_rows, self.ref_high = len(ref_in), int(ref_in.sum())
        self.ref_counts = bin_counts(ref_x[ref_in], edges)
        self.ref_senders = ref_senders
        self.new_counts = [np.zeros_like(c) for c in self.ref_counts]
        self.rows = self.high = 0
        self._senders: Counter = Counter()

    def update(self, x: np.ndarray, member: np.ndarray, senders: np.ndarray, counted: int | None = None) -> None:
        """Absorb rows x [n, d] of which `member` [n] bool are in the subset, with their sender names [n];
        `counted`: how many of the rows count in the share's denominator (default all n)."""
        self.rows += len(member) if counted is None else int(counted)
        self.high += int(member.sum())
        if member.any():
            for total, add in zip(self.new_counts, bin_counts(x[member], self.edges), strict=True):
                total += add
            self._senders.update(senders[member].tolist())

    def absorb(self, other: SubsetDrift) -> None:
        """Add the counts of `other` (same reference and bins), e.g. another partition of the same file."""
        for total, add in zip(self.new_counts, other.new_counts, strict=True):
            total += add
        self.rows += other.rows
        self.high += other.high
        self._senders.update(other._senders)

    def effective(self) -> tuple[float, float]:
        """(reference, file) independent cases behind the subset: senders' effective number, at most rows."""
        return self._eff(self.ref_high, self.ref_senders), self._eff(self.high, kish(self._senders.values()))

    def share(self) -> dict:
        """The subset's share of the rows against the reference: rate ratio and a two-proportion p-value
        with the subset's rows counted by their effective senders."""
        p0 = self.ref_high / self.ref_rows if self.ref_rows else 0.0
        q = self.high / self.rows if self.rows else 0.0
        # +0.5 per count: a ratio with an empty side stays finite
        ratio = ((self.high + 0.5) / (self.rows + 1)) / ((self.ref_high + 0.5) / (self.ref_rows + 1)) \
            if self.rows else 1.0
        n0, n1 = self.effective()
        deff = (self.high + self.ref_high) / max(n0 + n1, 1e-9)
        return {"reference_share": round(p0, 6), "share": round(q, 6), "rows": self.high,
                "reference_rows": self.ref_high, "ratio": round(float(ratio), 4),
                "p_value": two_proportions(self.ref_high, self.ref_rows, self.high, self.rows, deff)}

    def profile(self, threshold: float, p_value: float, skip) -> dict[str, dict]:
        """Per input (not embeddings, not those `skip(name)` excludes): KS D or Cramer's V within the subset,
        reference vs file; flagged above `threshold` at Bonferroni-corrected p."""
        n0, n1 = self.effective()
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


class ConfirmedDrift(SubsetDrift):
    """The confirmed-fraud rows of a file (labels from the label book) against the reference's fraud rows:
    their profile, the fraud share of the labelled rows, and the model's recall on them at `threshold`.

    ref_label [n] 0/1: the reference rows' labels; ref_p [n]: their probabilities.
    """

    def __init__(self, features, ref_x, ref_label, ref_p, threshold: float, edges, kinds,
                 ref_senders: float | None = None):
        ref_label = np.asarray(ref_label)
        super().__init__(features, ref_x, ref_label == 1, edges, kinds, ref_senders)
        self.threshold = threshold
        self.ref_caught = int(((np.asarray(ref_p) >= threshold) & (ref_label == 1)).sum())
        self.caught = 0
        self.scored = 0  # every row seen, labelled or not

    def update_labelled(self, x: np.ndarray, p: np.ndarray, labels: np.ndarray, senders: np.ndarray) -> None:
        """Absorb rows x [n, d] with probabilities p [n] and labels [n] (1 fraud, 0 not, -1 not known yet)."""
        fraud = labels == 1
        self.scored += len(labels)
        self.caught += int((fraud & (p >= self.threshold)).sum())
        self.update(x, fraud, senders, counted=int((labels >= 0).sum()))

    def absorb(self, other: ConfirmedDrift) -> None:
        super().absorb(other)
        self.caught += other.caught
        self.scored += other.scored

    def recall(self) -> dict:
        """Share of the confirmed frauds the model flagged, file vs reference, with a two-proportion p-value
        over the effective cases (a missed case is usually missed on all its rows)."""
        n0, n1 = self.effective()
        deff = (self.high + self.ref_high) / max(n0 + n1, 1e-9)
        r0 = self.ref_caught / self.ref_high if self.ref_high else 0.0
        r1 = self.caught / self.high if self.high else 0.0
        return {"threshold": self.threshold, "reference_recall": round(r0, 6), "recall": round(r1, 6),
                "confirmed": self.high, "reference_confirmed": self.ref_high, "effect": round(abs(r1 - r0), 6),
                "p_value": two_proportions(self.ref_caught, self.ref_high, self.caught, self.high, deff)}
