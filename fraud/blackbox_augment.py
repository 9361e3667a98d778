"""The black-box attack's random search inside adversarial training (`adversarial.blackbox_queries`).

Before each augmentation round of `fraud.adversarial`, `BlackboxSearch.step(booster)` attacks the training
frauds with the booster being trained, the way `fraud.attacks.blackbox_attack` attacks a finished model:
every fraudster whose payment is still flagged (score above the booster's 1 % FPR threshold on clean
validation rows) proposes an edit with `fraud.threat.random_edits` (the first third of a step's queries
across the whole budget box, the rest around their best edit), the real feature pipeline recomputes every
feature of the edited training frame, and each keeps the edit if the booster's score went down. The search
carries each payment's best edit from one round to the next, so over `rounds` rounds it spends about
`rounds x blackbox_queries` queries per payment, as the evaluation attacker does (35-49 per payment against
the defended stack at 96 rounds). The edit it ends on becomes one more augmentation candidate; the round's
worst-case pick then adds it with label 1 when it is the lowest-scoring edit of that payment.

Cost: one pass of the feature pipeline over the training period per query (`blackbox_queries + 1` passes
per round; the GNN and autoencoder stay fixed while the booster is refitted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.threat import Edits, ThreatModel, choice_options, random_edits


class BlackboxSearch:
    """Random search against the booster under training on the fraudulent rows `rows` of `frame`.

    frame: canonical training frame (sorted by time); rows [n] positions of its frauds; x_va [m, d] / y_va [m]:
    clean validation rows and labels (each step's threshold); blank_before: rows whose GNN/autoencoder
    columns the booster never sees (as in `fit_adversarial`).
    """

    def __init__(self, model, frame: pd.DataFrame, rows: np.ndarray, tm: ThreatModel, queries: int,
                 blank_before: int, x_va: np.ndarray, y_va: np.ndarray, seed: int, local_step: float = 0.35):
        if queries < 1:
            raise ValueError(f"black-box search needs >= 1 query per round, got {queries}")
        self.model, self.frame, self.rows, self.tm = model, frame, np.asarray(rows, np.int64), tm
        self.queries, self.blank_before, self.local_step = queries, blank_before, local_step
        self.x_va, self.y_va = x_va, y_va
        self.rng = np.random.default_rng(seed)
        self.options = choice_options(frame, tm)
        self.best = Edits.identity(len(self.rows), tm)
        self.best_rows = self._rows(self.best)  # feature rows of the best edits (they do not depend on the booster)
        self.queries_used = np.zeros(len(self.rows), np.int64)
        self.log: list[dict] = []

    def _rows(self, edits: Edits) -> tuple[np.ndarray, np.ndarray]:
        from fraud.adversarial import _attacked_rows

        return _attacked_rows(self.model, self.frame, self.rows, edits, self.tm, self.blank_before)

    def _scores(self, booster, xs: np.ndarray, j: np.ndarray) -> np.ndarray:
        """[n] largest score over each payment's parts (one flagged part stops the payment)."""
        from fraud.booster import predict

        s = np.full(len(self.rows), -np.inf)
        np.maximum.at(s, j, predict(booster, xs))
        return s

    def step(self, booster) -> tuple[np.ndarray, np.ndarray]:
        """Search `queries` rounds against `booster`; the best edits' (feature rows [m, d], payment index [m])."""
        from fraud.booster import choose_threshold, predict

        thr = choose_threshold(self.y_va, predict(booster, self.x_va), self.model.cfg.booster)
        best_s = self._scores(booster, *self.best_rows)
        active = best_s > thr
        start = int(active.sum())
        n = len(self.rows)
        for q in range(self.queries):
            if not active.any():
                break
            step = 1.0 if q < max(1, self.queries // 3) else self.local_step
            cand = self.best.take(active, random_edits(n, self.tm, self.rng, self.options, base=self.best, step=step))
            xs, j = self._rows(cand)
            s = self._scores(booster, xs, j)
            self.queries_used[active] += 1
            better = active & (s < best_s)
            self.best, best_s = self.best.take(better, cand), np.where(better, s, best_s)
            active = best_s > thr
        # The edits interact (one fraudster's rows feed another's features): the result is recomputed as a whole.
        self.best_rows = self._rows(self.best)
        after = self._scores(booster, *self.best_rows)
        self.log.append({"flagged_before": start, "flagged_after": int((after > thr).sum()), "frauds": n,
                         "threshold": float(thr)})
        return self.best_rows
