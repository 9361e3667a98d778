"""XGBoost on engineered features + embeddings + anomaly score, with imbalance handling and a chosen threshold.

Early stopping watches PR-AUC on the validation period (later than training, so it measures what matters:
the future). The decision threshold is chosen on validation too, either for a target false-positive rate or
for a cost ratio (a missed fraud costs `cost_ratio` false alarms). The model is saved as UBJ (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xgboost as xgb

from fraud.models.treeshap import explainer


@dataclass
class BoosterConfig:
    """XGBoost hyper-parameters and the threshold rule."""

    n_estimators: int = 600
    max_depth: int = 6
    learning_rate: float = 0.06
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    early_stopping_rounds: int = 50
    # None: sqrt(negatives / positives), a common middle ground between no weighting and full balancing.
    scale_pos_weight: float | None = None
    n_jobs: int = 2
    threshold: Literal["fpr", "cost"] = "fpr"
    target_fpr: float = 0.01
    cost_ratio: float = 50.0

    def __post_init__(self):
        if not 0 < self.target_fpr < 1:
            raise ValueError(f"booster.target_fpr must be in (0, 1), got {self.target_fpr}")
        if self.n_estimators < 1 or self.max_depth < 1:
            raise ValueError("booster.n_estimators and booster.max_depth must be >= 1")


def booster_params(y_tr: np.ndarray, cfg: BoosterConfig, seed: int, early_stopping: bool = True) -> dict:
    """The XGBClassifier parameters of `cfg` for training labels `y_tr` (one place for the one-process and
    the Dask booster, `fraud.scale.booster`)."""
    pos = max(int(y_tr.sum()), 1)
    spw = cfg.scale_pos_weight or float(np.sqrt((len(y_tr) - pos) / pos))
    return dict(
        n_estimators=cfg.n_estimators, max_depth=cfg.max_depth, learning_rate=cfg.learning_rate,
        subsample=cfg.subsample, colsample_bytree=cfg.colsample_bytree, min_child_weight=cfg.min_child_weight,
        scale_pos_weight=spw, tree_method="hist", eval_metric="aucpr", n_jobs=cfg.n_jobs, random_state=seed,
        early_stopping_rounds=cfg.early_stopping_rounds if early_stopping else None)


def fit_booster(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, names: list[str],
                cfg: BoosterConfig, seed: int):
    """A trained `xgboost.Booster` on rows [n, d]; early-stopped on validation PR-AUC."""

    both = len(np.unique(y_va)) == 2
    clf = xgb.XGBClassifier(**booster_params(y_tr, cfg, seed, early_stopping=both))
    clf.fit(_frame(x_tr, names), y_tr, eval_set=[(_frame(x_va, names), y_va)], verbose=False)
    booster = clf.get_booster()
    if clf.best_iteration is not None and both:
        booster = booster[: clf.best_iteration + 1]
    booster.feature_names = list(names)
    return booster


def _frame(x: np.ndarray, names: list[str]):

    return pd.DataFrame(x, columns=names)


def blend_boosters(boosters: list, weights: list[float]):
    """One binary-logistic booster whose margin is sum_i weights[i] * margin(boosters[i]) (weights >= 0,
    summing to 1): the trees of all with their leaf values scaled, and the blended base margin. A single
    booster (not several models) so scoring, saving (UBJ), reason codes and monotone constraints work
    unchanged."""


    if len(boosters) != len(weights) or not boosters:
        raise ValueError(f"blend needs one weight per booster, got {len(boosters)} boosters, {len(weights)} weights")
    if any(not 0 <= w <= 1 for w in weights) or abs(sum(weights) - 1) > 1e-9:
        raise ValueError(f"blend weights must be in [0, 1] and sum to 1, got {list(weights)}")
    js = [json.loads(b.save_raw("json")) for b in boosters]
    for j in js:
        if j["learner"]["objective"]["name"] != "binary:logistic" or \
                j["learner"]["gradient_booster"]["name"] != "gbtree":
            raise NotImplementedError("blending covers binary:logistic gbtree models only")

    def base_margin(j) -> float:
        p = float(j["learner"]["learner_model_param"]["base_score"].strip("[]"))
        return float(np.log(p / (1 - p)))

    trees = []
    for j, w in zip(js, weights, strict=True):
        for t in j["learner"]["gradient_booster"]["model"]["trees"]:
            leaf = np.asarray(t["left_children"]) == -1
            t["split_conditions"] = [v * w if is_leaf else v for v, is_leaf in zip(t["split_conditions"], leaf,
                                                                                   strict=True)]
            t["base_weights"] = [v * w for v in t["base_weights"]]
            t["id"] = len(trees)
            trees.append(t)
    margin = sum(w * base_margin(j) for j, w in zip(js, weights, strict=True))
    out = js[0]
    out["learner"]["learner_model_param"]["base_score"] = f"[{1 / (1 + np.exp(-margin)):.9E}]"
    model = out["learner"]["gradient_booster"]["model"]
    model.update(trees=trees, tree_info=[0] * len(trees), iteration_indptr=list(range(len(trees) + 1)))
    model["gbtree_model_param"]["num_trees"] = str(len(trees))
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(out).encode()))
    booster.feature_names = boosters[0].feature_names
    return booster


def predict(booster, x: np.ndarray) -> np.ndarray:
    """Fraud probability [n] for rows [n, d] (in-place predict: no DMatrix copy)."""
    p = booster.inplace_predict(x, validate_features=False)
    return np.asarray(p, dtype=np.float64)


def contributions(booster, x: np.ndarray, names: list[str], exact: bool = True, threads: int = 2) -> np.ndarray:
    """Per-feature contributions in log-odds [n, d + 1] (last column: bias), for reason codes: exact TreeSHAP
    (XGBoost's `pred_contribs`) or the Saabas approximation (`approx_contribs`), computed by
    `fraud.models.treeshap` (11x / 2x faster, same values) where it covers the model, else by XGBoost."""


    ex = explainer(booster) if len(x) else None
    if ex is None:
        return booster.predict(xgb.DMatrix(x, feature_names=names), pred_contribs=True, approx_contribs=not exact)
    return np.column_stack([ex(x, exact, threads), np.full(len(x), ex.bias, np.float32)])


def choose_threshold(y: np.ndarray, p: np.ndarray, cfg: BoosterConfig) -> float:
    """Score threshold from validation labels/scores: FPR <= target_fpr, or minimal cost."""
    neg = np.sort(p[y == 0])
    if cfg.threshold == "fpr" or len(neg) == 0 or y.sum() == 0:
        if len(neg) == 0:
            return 0.5
        # Smallest threshold that flags at most target_fpr of legitimate rows (flag = score > threshold).
        k = int(np.floor(cfg.target_fpr * len(neg)))
        return float(neg[len(neg) - k - 1]) if k < len(neg) else 0.0
    cand = np.unique(p)
    order = np.argsort(p)
    ys, ps = y[order], p[order]
    # cost(thr) = cost_ratio * missed frauds (score <= thr) + false alarms (legit with score > thr)
    fn = np.cumsum(ys)  # frauds with score <= ps[i]
    fp = (len(ys) - np.arange(1, len(ys) + 1)) - (ys.sum() - fn)
    cost = cfg.cost_ratio * fn + fp
    last = np.r_[ps[1:] != ps[:-1], True]
    i = int(np.argmin(np.where(last, cost, np.inf)))
    return float(ps[i]) if len(cand) else 0.5
