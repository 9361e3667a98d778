"""Defences: adversarial data augmentation for XGBoost, robust feature options, monotone constraints,
and adversarial training of the GNN edge head.

    model = fit_adversarial(train, val, FraudConfig(), AdversarialConfig())   # a FraudModel, same API

What `fit_adversarial` does, in order:
1. fits the stack as usual (GNN, autoencoder, XGBoost); with `gnn_adversarial` the GNN's fraud edges are
   trained on worst-case edge features inside the budget (PGD on log-amount and hour, `_adversarial_gnn`);
2. builds `candidates` randomly attacked copies of the training period's fraudulent rows inside the threat
   model (the budget of `budget`), plus the white-box PGD edit, and runs the real feature pipeline on each
   (derived features move consistently, other people's rows are untouched);
3. `rounds` times: scores every candidate with the current XGBoost, keeps per fraudulent payment the edit
   that scores lowest (the worst case the attacker would pick; for a split payment its highest-scoring
   part, the one that has to be caught), adds it to the training rows with label 1 (attacked fraud is
   still fraud) at sample weight `augment_weight`, and refits XGBoost. Validation gets randomly attacked
   fraud rows too (early stopping then watches attacked as well as clean fraud); the threshold is still set
   on clean legitimate rows; the last round's booster is kept. With `blend` a (0.5) the final booster's
   margin is a * round 0's (before any augmentation) + (1 - a) * the last round's: the clean ranking of
   the one, the robustness of the other, in one XGBoost model.
4. robust features: `drop_features` are blanked (missing) in every XGBoost training row, so no split can
   use them (the attacker moves them for free: time of day with a shift of hours); `monotone` makes the
   score non-decreasing in the sender's window counts, so adding parts (splitting) can only raise them;
   `robust_features` adds features anchored in history the attacker cannot move cheaply
   (fraud/features/robust.py: how long the sender has paid this payee, how old the receiver is, money
   sent to young payees and to this payee over 7 days), to the defended stack only.

The GNN and autoencoder stay fixed during augmentation, so each candidate's features are computed once.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import xgboost as xgb

from fraud.features.history import History
from fraud.models.booster import _frame, blend_boosters, choose_threshold, predict
from fraud.robust.attacks import pgd_attack
from fraud.robust.config import AdversarialConfig
from fraud.robust.threat import Edits, apply_edits, choice_options, preset, random_edits
from fraud.stack.model import FraudModel
from shared.config import to_dict
from shared.seeding import named_rng

log = logging.getLogger("fraud.robust.defence")


def monotone_vector(names: list[str], cfg: AdversarialConfig) -> tuple[int, ...] | None:
    """XGBoost monotone_constraints in feature order (+1 on sender window counts), or None."""
    if not cfg.monotone:
        return None
    return tuple(1 if n.startswith(("src_cnt_", "src_young_cnt_")) else 0 for n in names)


def defended_config(cfg, acfg: AdversarialConfig):
    """`cfg` with the robust feature options of `acfg` switched on (a copy; `cfg` is not changed)."""

    if not (acfg.robust_features or acfg.neighbour_windows):
        return cfg
    nw = list(dict.fromkeys([*cfg.features.neighbour_windows, *acfg.neighbour_windows]))
    feats = replace(cfg.features, robust=cfg.features.robust or acfg.robust_features, neighbour_windows=nw)
    return replace(cfg, features=feats)


def fit_booster_robust(x_tr, y_tr, x_va, y_va, names, bcfg, acfg: AdversarialConfig, seed: int, weight=None):
    """fraud.models.booster.fit_booster with the robust options: dropped features blanked, monotone constraints;
    `weight` [n_train] optional sample weights."""


    x_tr, x_va = x_tr.copy(), x_va.copy()
    drop = [names.index(n) for n in acfg.drop_features if n in names]
    x_tr[:, drop] = np.nan
    x_va[:, drop] = np.nan
    pos = max(int(y_tr.sum()), 1)
    spw = bcfg.scale_pos_weight or float(np.sqrt((len(y_tr) - pos) / pos))
    two = len(np.unique(y_va)) == 2
    kwargs = {}
    mono = monotone_vector(names, acfg)
    if mono is not None:
        kwargs["monotone_constraints"] = mono
    clf = xgb.XGBClassifier(
        n_estimators=bcfg.n_estimators, max_depth=bcfg.max_depth, learning_rate=bcfg.learning_rate,
        subsample=bcfg.subsample, colsample_bytree=bcfg.colsample_bytree, min_child_weight=bcfg.min_child_weight,
        scale_pos_weight=spw, tree_method="hist", eval_metric="aucpr", n_jobs=bcfg.n_jobs, random_state=seed,
        early_stopping_rounds=bcfg.early_stopping_rounds if two else None, **kwargs)
    clf.fit(_frame(x_tr, names), y_tr, sample_weight=weight, eval_set=[(_frame(x_va, names), y_va)], verbose=False)
    booster = clf.get_booster()
    if clf.best_iteration is not None and two:
        booster = booster[: clf.best_iteration + 1]
    booster.feature_names = list(names)
    return booster


def _attacked_rows(model, frame: pd.DataFrame, rows: np.ndarray, edits: Edits, tm, blank_before: int):
    """(feature rows of every part [m, d], attacked-row index of each part [m]) for one candidate edit,
    with the learned (GNN/autoencoder) columns blanked for rows from the first `blank_before` rows."""

    t = frame["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    out, origin = apply_edits(frame, rows, edits, tm, (int(t.min()), int(t.max())))
    x = model.matrix(out, history=History(model.history_.tail_seconds))
    pos = np.full(len(frame), -1, np.int64)
    pos[rows] = np.arange(len(rows))
    j = pos[origin]
    keep = j >= 0
    xs = x[keep]
    if blank_before:
        learned = [i for i, n in enumerate(model.feature_names_) if n.startswith(("gnn_", "ae_"))]
        early = origin[keep] < blank_before
        xs[np.ix_(early, learned)] = np.nan
    return xs, j[keep]


def _random_candidates(model, frame: pd.DataFrame, rows: np.ndarray, count: int, tm, rng: np.random.Generator,
                       opts, blank_before: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` randomly attacked copies of `rows` (uniform draws over the whole budget box), each through
    the pipeline: `_attacked_rows` outputs."""
    draws = [random_edits(len(rows), tm, rng, opts, sparse=False) for _ in range(count)]
    return [_attacked_rows(model, frame, rows, e, tm, blank_before) for e in draws]




def fit_adversarial(train: pd.DataFrame, val: pd.DataFrame, cfg, acfg: AdversarialConfig | None = None,
                    progress: bool = True):
    """A FraudModel trained with the defences of `acfg` (see the module docstring); same API as fit()."""
    acfg = acfg or AdversarialConfig()
    cfg = defended_config(cfg, acfg)
    tm = preset(acfg.threat).scaled(acfg.budget)
    model = FraudModel(cfg)
    art = model.fit_artefacts(train, val, progress=progress, gnn_trainer=gnn_trainer(acfg, tm))
    names = model.feature_names_
    train = train.sort_values("timestamp", kind="stable").reset_index(drop=True)
    val = val.sort_values("timestamp", kind="stable").reset_index(drop=True)
    x_tr, y_tr = art.train_matrix, art.train_labels
    blank = len(train) - len(y_tr) if len(y_tr) < len(train) else 0  # rows fit() left out of the booster
    cut = int(len(train) * cfg.parts.base_fraction) if (cfg.parts.autoencoder or cfg.parts.gnn) else 0
    blank_before = cut if cfg.parts.base_rows_in_booster and blank == 0 else 0
    train_b = train.iloc[blank:].reset_index(drop=True) if blank else train  # attack only the booster's rows
    rows = np.flatnonzero(train_b["label"].to_numpy() == 1)
    # Own streams for the training and the validation candidates: a change in one leaves the other's draws.
    cands = _random_candidates(model, train_b, rows, acfg.candidates, tm, named_rng(cfg.seed, "defence.train"),
                               choice_options(train_b, tm), blank_before)
    if acfg.pgd_candidate:
        pgd = pgd_attack(model, train_b.assign(label=train_b["label"]), tm)
        cands.append(_attacked_rows(model, train_b, rows, pgd.edits, tm, blank_before))
    vrows = np.flatnonzero(val["label"].to_numpy() == 1)
    x_va, y_va = art.val_matrix, val["label"].to_numpy(np.int8)
    x_va_aug = _random_candidates(model, val, vrows, acfg.val_candidates, tm, named_rng(cfg.seed, "defence.val"),
                                  choice_options(val, tm))
    x_va_fit = np.concatenate([x_va, *(xv for xv, _ in x_va_aug)])
    y_va_fit = np.r_[y_va, np.ones(len(x_va_fit) - len(x_va), np.int8)]
    booster0 = fit_booster_robust(x_tr, y_tr, x_va_fit, y_va_fit, names, cfg.booster, acfg, cfg.seed)
    trials = [{"round": 0, "booster": booster0, "added": np.zeros((0, x_tr.shape[1]), np.float32)}]
    trials += _augment_rounds(booster0, x_tr, y_tr, x_va_fit, y_va_fit, names, cfg, acfg, cands, len(rows))
    booster, added = trials[-1]["booster"], trials[-1]["added"]
    if acfg.blend:
        booster = blend_boosters([booster0, booster], [acfg.blend, 1 - acfg.blend])
    model.booster_ = booster
    model.threshold_ = choose_threshold(y_va, predict(booster, x_va), cfg.booster)
    model.fit_info_ = dict(model.fit_info_, threshold=model.threshold_,
                           best_trees=int(booster.num_boosted_rounds()),
                           adversarial={**to_dict(acfg), "augmented_rows": int(len(added)),
                                        "trials": [{"round": t["round"], "trees": int(t["booster"].num_boosted_rounds())}
                                                   for t in trials],
                                        "threat_scaled": to_dict(tm)})
    return model


def _worst_case(booster, cands, n: int):
    """Per attacked payment (n): lowest score over the candidate edits (a split payment scores as its
    highest part), the candidate index (-1 none) and that part's feature row."""

    worst_s = np.full(n, np.inf)
    worst = np.full(n, -1, np.int64)
    best_part = [None] * n
    for c, (xc, jc) in enumerate(cands):
        p = predict(booster, xc)
        s = np.full(n, -np.inf)
        np.maximum.at(s, jc, p)
        better = s < worst_s
        worst_s, worst = np.where(better, s, worst_s), np.where(better, c, worst)
        for i in np.flatnonzero(better):
            part = np.flatnonzero(jc == i)
            best_part[i] = xc[part[np.argmax(p[part])]]
    return worst_s, worst, best_part



def _augment_rounds(booster, x_tr, y_tr, x_va_fit, y_va_fit, names, cfg, acfg, cands, n) -> list[dict]:
    """`rounds` augmentation rounds at sample weight `augment_weight`, starting from the clean-trained
    `booster`; one trial (booster, added rows) per round."""
    weight_ = acfg.augment_weight
    added = np.zeros((0, x_tr.shape[1]), np.float32)
    picked: set[tuple[int, int]] = set()
    trials = []
    for r in range(acfg.rounds):
        worst_s, worst, best_part = _worst_case(booster, cands, n)
        fresh = [i for i in range(n) if worst[i] >= 0 and (i, int(worst[i])) not in picked]
        new = [best_part[i] for i in fresh]
        picked |= {(i, int(worst[i])) for i in range(n) if worst[i] >= 0}
        if new:
            added = np.concatenate([added, np.asarray(new, np.float32)])
        scored = worst_s[np.isfinite(worst_s)]  # empty without candidates (candidates=0, no PGD)
        log.info(f"adversarial round {r + 1}/{acfg.rounds} (weight {weight_:g}): {len(new)} worst-case fraud "
                 f"rows added ({len(added)} in all); mean worst-case score "
                 f"{scored.mean() if len(scored) else float('nan'):.3f}")
        weight = np.r_[np.ones(len(y_tr)), np.full(len(added), weight_)]
        booster = fit_booster_robust(np.concatenate([x_tr, added]), np.r_[y_tr, np.ones(len(added), np.int8)],
                                     x_va_fit, y_va_fit, names, cfg.booster, acfg, cfg.seed, weight)
        trials.append({"round": r + 1, "booster": booster, "added": added})
    return trials


# ---- adversarial training of the GNN edge head ------------------------------------------------------
def gnn_trainer(acfg: AdversarialConfig, tm):
    """The GNN trainer `FraudModel.fit` gets (its `gnn_trainer` hook): fraud edges also trained on their
    PGD-worst edge features, or None (the standard `fit_gnn`) when off or the budget moves no edge feature."""
    if not acfg.gnn_adversarial or (tm.amount_rel == 0 and tm.shift_ns == 0):
        return None

    def fit_gnn_adv(log_, rows, labels, cfg, gcfg, seed, progress=True, log_fn=lambda m: None):
        return _adversarial_gnn(log_, rows, labels, cfg, gcfg, seed, tm, acfg.gnn_pgd_steps, progress, log_fn)

    return fit_gnn_adv


def _perturb_attr(head, h_src, h_dst, attr, tm, steps: int):
    """Worst-case edge features [n, 3] (log1p amount, hour sin/cos) inside the budget, by sign-PGD on the
    head's logit (endpoint embeddings detached: the graph is not the attacker's)."""
    import torch

    r, w_h = tm.amount_rel, tm.shift_ns / 3.6e12
    la = attr[:, 0].double()
    amount = torch.expm1(la).clamp_min(0)
    hour0 = torch.atan2(attr[:, 1].double(), attr[:, 2].double()) * 24 / (2 * np.pi)
    d = torch.zeros_like(la, requires_grad=True)
    s = torch.zeros_like(la, requires_grad=True)

    def edge(d, s):
        hour = hour0 + s
        return torch.stack([torch.log1p(amount * (1 + d)), torch.sin(2 * np.pi * hour / 24),
                            torch.cos(2 * np.pi * hour / 24)], dim=1).float()

    hs, hd = h_src.detach(), h_dst.detach()
    for _ in range(steps):
        gd, gs = torch.autograd.grad(head(hs, hd, edge(d, s)).sum(), [d, s])
        with torch.no_grad():
            d -= 0.3 * r * torch.sign(gd)
            s -= 0.3 * w_h * torch.sign(gs)
            d.clamp_(-r, r)
            s.clamp_(-w_h, w_h)
    return edge(d.detach(), s.detach())


def _adversarial_gnn(log_, rows, labels, cfg, gcfg, seed, tm, steps, progress, log_fn):
    """`fraud.models.gnn_training.fit_gnn` where each fraud edge is trained twice: clean and at its PGD-worst edge
    features (the legitimate edges are unchanged)."""
    import torch

    from fraud.models.gnn_training import fit_gnn

    def edge_batch(head, hs, hd, attr, y):
        logit, yt = head(hs, hd, attr), torch.from_numpy(y.astype(np.float32))
        fraud = torch.from_numpy(y == 1)
        if fraud.any():
            adv = _perturb_attr(head, hs[fraud], hd[fraud], attr[fraud], tm, steps)
            logit = torch.cat([logit, head(hs[fraud], hd[fraud], adv)])
            yt = torch.cat([yt, torch.ones(int(fraud.sum()))])
        return logit, yt

    return fit_gnn(log_, rows, labels, cfg, gcfg, seed, progress, log_fn, edge_batch=edge_batch,
                   desc="gnn (adversarial)")
