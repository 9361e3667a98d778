"""The black-box attack's random search inside adversarial training (`adversarial.blackbox_queries`).

Before each augmentation round of `fraud.adversarial`, `BlackboxSearch.step(booster)` attacks the training
frauds with the booster being trained, the way `fraud.attacks.blackbox_attack` attacks a finished model:
every fraudster whose payment is still flagged (score above the booster's 1 % FPR threshold on clean
validation rows) proposes an edit with `fraud.threat.random_edits` (the first third of a step's queries
across the whole budget box, uniformly: it predates the evaluation attack's sparse draws, and was measured
that way; the rest around their best edit), the real feature pipeline recomputes every
feature of the edited training frame, and each keeps the edit if the booster's score went down. The search
carries each payment's best edit from one round to the next, so over `rounds` rounds it spends about
`rounds x blackbox_queries` queries per payment, as the evaluation attacker does (35-49 per payment against
the defended stack at 96 rounds). The edit it ends on becomes one more augmentation candidate; the round's
worst-case pick then adds it with label 1 when it is the lowest-scoring edit of that payment.

The booster being trained has seen the training frauds and flags nearly all of them in-sample (714 of 714
on the development seed), so a search against it finds only what that memorising booster misses. With
`folds` k >= 2 the frauds are cut into k folds and each fold is searched against the round's booster
refitted without that fold's rows, as a test-period attacker meets a booster that never saw their payment.

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
                 blank_before: int, x_va: np.ndarray, y_va: np.ndarray, seed: int, local_step: float = 0.35,
                 folds: int = 0):
        if queries < 1:
            raise ValueError(f"black-box search needs >= 1 query per round, got {queries}")
        if folds == 1 or folds < 0:
            raise ValueError(f"black-box search folds must be 0 (off) or >= 2, got {folds}")
        self.model, self.frame, self.rows, self.tm = model, frame, np.asarray(rows, np.int64), tm
        self.queries, self.blank_before, self.local_step = queries, blank_before, local_step
        self.x_va, self.y_va = x_va, y_va
        self.rng = np.random.default_rng(seed)
        self.folds = folds
        # fold of each payment (all 0 without folds)
        self.fold = self.rng.integers(0, folds, len(self.rows)) if folds else np.zeros(len(self.rows), np.int64)
        self.options = choice_options(frame, tm)
        self.best = Edits.identity(len(self.rows), tm)
        self.best_rows = self._rows(self.best)  # feature rows of the best edits (they do not depend on the booster)
        self.queries_used = np.zeros(len(self.rows), np.int64)
        self.log: list[dict] = []

    def _rows(self, edits: Edits) -> tuple[np.ndarray, np.ndarray]:
        from fraud.adversarial import _attacked_rows

        return _attacked_rows(self.model, self.frame, self.rows, edits, self.tm, self.blank_before)

    def _scores(self, boosters, xs: np.ndarray, j: np.ndarray) -> np.ndarray:
        """[n] largest score over each payment's parts (one flagged part stops the payment); `boosters`: one
        booster, or one per fold (a part is scored by its payment's fold's booster)."""
        from fraud.booster import predict

        boosters = boosters if isinstance(boosters, list) else [boosters]
        p = np.empty(len(xs))
        f = self.fold[j] if len(boosters) > 1 else np.zeros(len(j), np.int64)
        for k, b in enumerate(boosters):
            m = f == k
            if m.any():
                p[m] = predict(b, xs[m])
        s = np.full(len(self.rows), -np.inf)
        np.maximum.at(s, j, p)
        return s

    def step(self, booster, refit_without=None) -> tuple[np.ndarray, np.ndarray]:
        """Search `queries` rounds against `booster`; the best edits' (feature rows [m, d], payment index [m]).
        With folds, fold k is searched against `refit_without(fold == k)` (a booster that never saw it)."""
        from fraud.booster import choose_threshold, predict

        if self.folds:
            if refit_without is None:
                raise ValueError("a black-box search with folds needs refit_without")
            booster = [refit_without(self.fold == k) for k in range(self.folds)]
        bs = booster if isinstance(booster, list) else [booster]
        thr_k = np.array([choose_threshold(self.y_va, predict(b, self.x_va), self.model.cfg.booster) for b in bs])
        thr = thr_k[self.fold] if len(bs) > 1 else np.full(len(self.rows), thr_k[0])
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
                         "threshold": [float(t) for t in thr_k]})
        return self.best_rows
