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
   on clean legitimate rows. `select: val` keeps every round's booster (for each of `select_weights`) and
   picks one on the validation period only: most attacked validation frauds caught (fresh random edits +
   PGD, worst case per payment) among the boosters within `select_max_drop` of the best clean validation
   PR-AUC; `select: last` keeps the last round's. `blackbox_queries` (off) also runs the black-box
   attack's random search against the round's booster before each round and offers its edits as one more
   candidate (fraud/blackbox_augment.py; measured: no gain, docs/fraud-robustness.md). With `blend` a
   (0.5) the final booster's margin is a * round 0's (before any augmentation) + (1 - a) * the chosen
   round's: the clean ranking of the one, the robustness of the other, in one XGBoost model. With
   `ensemble` k > 1 the augmented part is the average of k such runs on independent candidate draws.
4. robust features: `drop_features` are blanked (missing) in every XGBoost training row, so no split can
   use them (the attacker moves them for free: time of day with a shift of hours); `monotone` makes the
   score non-decreasing in the sender's window counts, so adding parts (splitting) can only raise them;
   `robust_features` adds features anchored in history the attacker cannot move cheaply
   (fraud/robust_features.py: how long the sender has paid this payee, how old the receiver is, money
   sent to young payees and to this payee over 7 days), to the defended stack only.

The GNN and autoencoder stay fixed during augmentation, so each candidate's features are computed once.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fraud.threat import Edits, apply_edits, choice_options, preset, random_edits

log = logging.getLogger("fraud.adversarial")


@dataclass
class AdversarialConfig:
    """Which defences `fraud train --adversarial` turns on, and the attacks they train against."""

    enabled: bool = False         # `fraud train --adversarial` sets it; saved with the model's config
    threat: str = "full"          # threat model preset (fraud/threat.py PRESETS)
    budget: float = 2.0           # budget multiplier trained against: the largest budget you want to resist
    candidates: int = 10          # random attacked copies of the training frauds (pipeline passes)
    rounds: int = 5               # augmentation rounds against the current booster
    pgd_candidate: bool = True    # also offer the white-box PGD edit as a candidate
    val_candidates: int = 1       # attacked copies of the validation frauds for early stopping
    drop_features: list[str] = field(default_factory=list)  # e.g. ["hour_sin", "hour_cos", "weekday"]
    monotone: bool = True         # score non-decreasing in src_cnt_* (sender velocity)
    gnn_adversarial: bool = True  # PGD-perturbed edge features for fraud edges while training the GNN
    gnn_pgd_steps: int = 5
    # XGBoost sample weight of each added worst-case row (clean rows weigh 1). Alone, full weight costs ~4
    # points of clean PR-AUC (the attacked copies outnumber the clean frauds) and 0.25 ~1.5 on seed 0 but 6.4
    # on the development seed; with `blend` 0.5 full weight keeps the robustness for ~1.3 there
    # (docs/fraud-robustness.md "Blending the pre-augmentation booster back in").
    augment_weight: float = 1.0
    # Robust feature options (fraud/robust_features.py): history-anchored pair/receiver ages, young-payee
    # sums, pair totals; `neighbour_windows` are added to features.neighbour_windows of the defended stack
    # (a 7d inflow window a ±12 h shift cannot empty). The standard stack's features stay unchanged.
    robust_features: bool = True
    neighbour_windows: list[str] = field(default_factory=list)

    # How the round (and weight) is chosen: "last" = after `rounds` rounds at `augment_weight`; "val" = the
    # trial (round 0..rounds, for each of `select_weights`, or augment_weight if empty) that catches the most
    # attacked validation frauds among those within `select_max_drop` clean validation PR-AUC of the
    # reference. "val" kept the robustness of "last" at ~3.6 points less clean cost on the development seed
    # but picked no augmentation at all on seed 0 (1.16x instead of 1.48x), so "last" stays the default
    # (docs/fraud-robustness.md).
    select: str = "last"
    select_weights: list[float] = field(default_factory=list)
    select_candidates: int = 4
    select_max_drop: float = 0.01
    # What the drop is measured from: "best" = the best trial; "standard" = a booster on the same rows with
    # the robust feature columns blanked (a stand-in for the standard stack, which the cost is
    # measured against; its GNN/autoencoder columns are the defended stack's own).
    select_reference: str = "standard"
    # Black-box search in the loop (fraud/blackbox_augment.py): before each augmentation round, this many
    # query rounds of the evaluation attack's random search against the booster being trained (each
    # payment's best edit carried across rounds), the edit found offered as one more candidate. 0 = off:
    # 8-16 queries gained nothing beyond the attack's noise on the development seed and cost 0.5-5.9 more
    # points of clean PR-AUC (docs/fraud-robustness.md "Black-box search in the augmentation loop").
    blackbox_queries: int = 0
    # 0: the search attacks the booster being trained, which has seen (and memorised) those very frauds;
    # k >= 2: the training frauds are cut into k folds and each fold is searched against the round's
    # booster refitted without that fold's rows (k extra booster fits per round), as a test-period attacker
    # meets a booster that never saw their payment.
    blackbox_folds: int = 0
    # Edit invariance: this many randomly edited copies of legitimate training payments per training fraud
    # (edited inside the same budget, through the real pipeline, in one extra pass), added with label 0 at
    # `augment_weight`. Without them every edited row the booster sees is fraud, so the edit itself (a split,
    # a shifted hour) becomes evidence; legitimate customers split and move payments too. 0 = off: on the
    # development seed it did not lower the clean cost (docs/fraud-robustness.md "Edit invariance").
    legit_edits: float = 0.0
    # Weight of the booster before augmentation (robust features, clean rows only: trial round 0) in the final
    # margin, blended with the chosen augmented booster's (fraud.booster.blend_boosters, one model with both
    # tree sets): the round-0 booster keeps the clean ranking, the augmented one the robustness. 0 = the
    # augmented booster alone (the default until 2026-12-02 14:15, at weight 0.25).
    blend: float = 0.5
    # Augmented boosters averaged (margins, one model): member k >= 1 repeats the rounds on its own random
    # candidate draws with its own XGBoost seed (the PGD candidate is shared). A query attacker needs a
    # low-score pocket in the average, not in one booster's idiosyncrasies. Each member costs one more
    # augmentation run and adds its trees; `select: last` only. 1 = off: 2 and 3 members caught 4 attacked
    # payments fewer on the development seed (docs/fraud-robustness.md "An ensemble of augmented boosters").
    ensemble: int = 1
    # Candidate edits drawn sparse (fraud.threat.random_edits): each control used with probability 1/2, so
    # a shift alone or a split alone is a candidate as often as a full edit. On the benchmark a search over
    # the shift alone evades more often than one over the whole box. False = off: on the development seed
    # it caught one attacked payment fewer at 2.45 points of clean cost (docs/fraud-robustness.md "A
    # stronger search: sparse edits").
    sparse_candidates: bool = False

    def __post_init__(self):
        preset(self.threat)
        if self.select_reference not in ("best", "standard"):
            raise ValueError(f"adversarial.select_reference must be 'best' or 'standard', got {self.select_reference!r}")
        if self.select not in ("last", "val"):
            raise ValueError(f"adversarial.select must be 'last' or 'val', got {self.select!r}")
        if any(not 0 < w <= 1 for w in self.select_weights):
            raise ValueError(f"adversarial.select_weights must be in (0, 1], got {self.select_weights}")
        if self.budget < 0 or self.candidates < 0 or self.rounds < 1:
            raise ValueError("adversarial.budget and candidates must be >= 0 and rounds >= 1")
        if self.blackbox_queries < 0:
            raise ValueError(f"adversarial.blackbox_queries must be >= 0 (0 = off), got {self.blackbox_queries}")
        if self.blackbox_folds < 0 or self.blackbox_folds == 1:
            raise ValueError(f"adversarial.blackbox_folds must be 0 (off) or >= 2, got {self.blackbox_folds}")
        if not 0 <= self.blend < 1:
            raise ValueError(f"adversarial.blend must be in [0, 1) (0 = off), got {self.blend}")
        if self.ensemble < 1:
            raise ValueError(f"adversarial.ensemble must be >= 1 (1 = one augmented booster), got {self.ensemble}")
        if self.ensemble > 1 and (self.select != "last" or self.blackbox_queries):
            raise ValueError("adversarial.ensemble > 1 needs select: last and blackbox_queries: 0")
        if self.legit_edits < 0:
            raise ValueError(f"adversarial.legit_edits must be >= 0 (0 = off), got {self.legit_edits}")
        if not 0 < self.augment_weight <= 1:
            raise ValueError(f"adversarial.augment_weight must be in (0, 1], got {self.augment_weight}")


def monotone_vector(names: list[str], cfg: AdversarialConfig) -> tuple[int, ...] | None:
    """XGBoost monotone_constraints in feature order (+1 on sender window counts), or None."""
    if not cfg.monotone:
        return None
    return tuple(1 if n.startswith(("src_cnt_", "src_young_cnt_")) else 0 for n in names)


def defended_config(cfg, acfg: AdversarialConfig):
    """`cfg` with the robust feature options of `acfg` switched on (a copy; `cfg` is not changed)."""
    from dataclasses import replace

    if not (acfg.robust_features or acfg.neighbour_windows):
        return cfg
    nw = list(dict.fromkeys([*cfg.features.neighbour_windows, *acfg.neighbour_windows]))
    feats = replace(cfg.features, robust=cfg.features.robust or acfg.robust_features, neighbour_windows=nw)
    return replace(cfg, features=feats)


def fit_booster_robust(x_tr, y_tr, x_va, y_va, names, bcfg, acfg: AdversarialConfig, seed: int, weight=None):
    """fraud.booster.fit_booster with the robust options: dropped features blanked, monotone constraints;
    `weight` [n_train] optional sample weights."""
    import xgboost as xgb

    from fraud.booster import _frame

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
    from fraud.features import History

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
                       opts, acfg: AdversarialConfig, blank_before: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` randomly attacked copies of `rows` (sparse draws if `sparse_candidates`), each through the
    pipeline: `_attacked_rows` outputs."""
    draws = [random_edits(len(rows), tm, rng, opts, sparse=acfg.sparse_candidates) for _ in range(count)]
    return [_attacked_rows(model, frame, rows, e, tm, blank_before) for e in draws]


def _edited_legit(model, train_b: pd.DataFrame, fraud_rows: np.ndarray, acfg: AdversarialConfig, tm, opts,
                  blank_before: int, rng: np.random.Generator) -> np.ndarray:
    """Feature rows of randomly edited legitimate training payments (`legit_edits` per training fraud,
    drawn without replacement; every part of a split payment), from one pipeline pass."""
    legit = np.setdiff1d(np.arange(len(train_b)), fraud_rows)
    legit = legit[legit >= blank_before]  # rows whose learned columns the booster saw
    n = min(len(legit), int(round(acfg.legit_edits * len(fraud_rows))))
    rows = np.sort(rng.choice(legit, n, replace=False))
    xs, _ = _attacked_rows(model, train_b, rows, random_edits(n, tm, rng, opts), tm, 0)
    log.info(f"edit invariance: {n} legitimate payments edited at random ({len(xs)} rows, label 0)")
    return xs


def fit_adversarial(train: pd.DataFrame, val: pd.DataFrame, cfg, acfg: AdversarialConfig | None = None,
                    progress: bool = True):
    """A FraudModel trained with the defences of `acfg` (see the module docstring); same API as fit()."""
    from fraud.attacks import pgd_attack
    from fraud.booster import choose_threshold, predict
    from fraud.pipeline import FraudModel

    acfg = acfg or AdversarialConfig()
    cfg = defended_config(cfg, acfg)
    tm = preset(acfg.threat).scaled(acfg.budget)
    with _gnn_training(acfg, tm):
        model = FraudModel(cfg).fit(train, val, progress=progress)
    names = model.feature_names_
    train = train.sort_values("timestamp", kind="stable").reset_index(drop=True)
    val = val.sort_values("timestamp", kind="stable").reset_index(drop=True)
    x_tr, y_tr = model.train_matrix_, model.train_labels_
    blank = len(train) - len(y_tr) if len(y_tr) < len(train) else 0  # rows fit() left out of the booster
    cut = int(len(train) * cfg.parts.base_fraction) if (cfg.parts.autoencoder or cfg.parts.gnn) else 0
    if cfg.parts.base_rows_in_booster and blank == 0:
        blank_before = cut
    else:
        blank_before = 0
    if blank:  # the booster saw only the later rows: attack only those
        train_b = train.iloc[blank:].reset_index(drop=True)
    else:
        train_b = train
    rows = np.flatnonzero(train_b["label"].to_numpy() == 1)
    rng = np.random.default_rng(cfg.seed + 1)
    opts = choice_options(train_b, tm)
    cands = _random_candidates(model, train_b, rows, acfg.candidates, tm, rng, opts, acfg, blank_before)
    pgd_cand = []
    if acfg.pgd_candidate:
        pgd = pgd_attack(model, train_b.assign(label=train_b["label"]), tm)
        pgd_cand.append(_attacked_rows(model, train_b, rows, pgd.edits, tm, blank_before))
    cands += pgd_cand
    w_tr = np.ones(len(y_tr))
    w_clean = None  # sample weights of the clean fits (booster0, the selection's reference): none unless edited
    if acfg.legit_edits:  # appended after the booster's own rows, so row i of x_tr is still training row i
        x_leg = _edited_legit(model, train_b, rows, acfg, tm, opts, blank_before, rng)
        x_tr, y_tr = np.concatenate([x_tr, x_leg]), np.r_[y_tr, np.zeros(len(x_leg), y_tr.dtype)]
        w_tr = w_clean = np.r_[w_tr, np.full(len(x_leg), acfg.augment_weight)]
    vrows = np.flatnonzero(val["label"].to_numpy() == 1)
    x_va, y_va = model.val_matrix_, val["label"].to_numpy(np.int8)
    x_va_aug = _random_candidates(model, val, vrows, acfg.val_candidates, tm, rng, choice_options(val, tm), acfg)
    x_va_fit = np.concatenate([x_va, *(xv for xv, _ in x_va_aug)])
    y_va_fit = np.r_[y_va, np.ones(len(x_va_fit) - len(x_va), np.int8)]
    sel = _Selector(model, val, vrows, x_va, y_va, tm, acfg, rng) if acfg.select == "val" else None
    booster0 = fit_booster_robust(x_tr, y_tr, x_va_fit, y_va_fit, names, cfg.booster, acfg, cfg.seed, w_clean)
    trials = [{"weight": 0.0, "round": 0, "booster": booster0, "added": np.zeros((0, x_tr.shape[1]), np.float32)}]
    searches = []
    for w in acfg.select_weights if sel is not None and acfg.select_weights else [acfg.augment_weight]:
        search = None
        if acfg.blackbox_queries:
            from fraud.blackbox_augment import BlackboxSearch

            search = BlackboxSearch(model, train_b, rows, tm, acfg.blackbox_queries, blank_before, x_va, y_va,
                                    cfg.seed + 2, folds=acfg.blackbox_folds)
            searches.append(search)
        trials += _augment_rounds(booster0, x_tr, y_tr, w_tr, x_va_fit, y_va_fit, names, cfg, acfg, cands, len(rows),
                                  w, search)
    if sel is not None:
        for t in trials:
            t.update(sel.evaluate(t["booster"]))
        if acfg.select_reference == "standard" and cfg.features.robust:
            from dataclasses import replace

            from fraud.robust_features import robust_names

            blank = replace(acfg, drop_features=[*acfg.drop_features, *robust_names(cfg.features.robust_window)])
            sel.reference = sel.evaluate(fit_booster_robust(x_tr, y_tr, x_va, y_va, names, cfg.booster, blank,
                                                            cfg.seed, w_clean))["val_pr_auc"]
    pick = sel.pick(trials) if sel is not None else trials[-1]
    booster, added = pick["booster"], pick["added"]
    members = []
    for k in range(1, acfg.ensemble):  # select is "last" here (checked in AdversarialConfig)
        rng_k = np.random.default_rng([cfg.seed + 1, k])
        cands_k = _random_candidates(model, train_b, rows, acfg.candidates, tm, rng_k, opts, acfg,
                                     blank_before) + pgd_cand
        members.append(_augment_rounds(booster0, x_tr, y_tr, w_tr, x_va_fit, y_va_fit, names, cfg, acfg, cands_k,
                                       len(rows), acfg.augment_weight, seed=cfg.seed + k)[-1]["booster"])
    from fraud.booster import blend_boosters

    if members:
        booster = blend_boosters([booster, *members], [1 / acfg.ensemble] * acfg.ensemble)
    if acfg.blend and pick["booster"] is not booster0:  # `select: val` may pick round 0 itself
        booster = blend_boosters([booster0, booster], [acfg.blend, 1 - acfg.blend])
    if sel is not None:
        log.info(f"adversarial selection on attacked validation frauds: weight {pick['weight']:g}, "
                 f"round {pick['round']} (attacked val recall {pick['val_attacked_recall']:.3f}, "
                 f"clean val PR-AUC {pick['val_pr_auc']:.3f})")
    model.booster_ = booster
    model.threshold_ = choose_threshold(y_va, predict(booster, x_va), cfg.booster)
    from shared.config import to_dict

    model.fit_info_ = dict(model.fit_info_, threshold=model.threshold_,
                           best_trees=int(booster.num_boosted_rounds()),
                           adversarial={**to_dict(acfg), "augmented_rows": int(len(added)),
                                        "edited_legit_rows": int(len(y_tr) - len(model.train_labels_)),
                                        "chosen": {k: pick[k] for k in ("weight", "round")},
                                        "ensemble_trees": [int(b.num_boosted_rounds()) for b in members],
                                        "select_reference_val_pr_auc": sel.reference if sel else None,
                                        "blackbox_search": [{"queries_per_fraud": float(b.queries_used.mean()),
                                                             "rounds": b.log} for b in searches],
                                        "trials": [{**{k: v for k, v in t.items() if k not in ("booster", "added")},
                                                    "trees": int(t["booster"].num_boosted_rounds())}
                                                   for t in trials],
                                        "threat_scaled": to_dict(tm)})
    return model


def _worst_case(booster, cands, n: int):
    """Per attacked payment (n): lowest score over the candidate edits (a split payment scores as its
    highest part), the candidate index (-1 none) and that part's feature row."""
    from fraud.booster import predict

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


def _augment_rounds(booster, x_tr, y_tr, w_tr, x_va_fit, y_va_fit, names, cfg, acfg, cands, n, weight_,
                    search=None, seed: int | None = None) -> list[dict]:
    """`rounds` augmentation rounds at sample weight `weight_`, starting from the clean-trained `booster`;
    one trial (booster, added rows) per round; `w_tr` holds the training rows' own sample weights. `search`
    (a BlackboxSearch) adds, before each round, the edits its search finds against the current booster as
    one more candidate. `seed`: XGBoost's (default cfg.seed)."""
    seed = cfg.seed if seed is None else seed
    added = np.zeros((0, x_tr.shape[1]), np.float32)
    owner = np.zeros(0, np.int64)  # attacked payment each added row came from
    picked: set[tuple[int, int]] = set()
    trials = []

    def refit_without(payments: np.ndarray):
        """The round's booster refitted without these payments' clean and added rows ([n] bool)."""
        keep = np.ones(len(y_tr) + len(added), bool)
        keep[search.rows[payments]] = False  # x_tr row i is the booster's training row i (fit_adversarial)
        keep[len(y_tr):] = ~payments[owner]
        w = np.r_[w_tr, np.full(len(added), weight_)][keep]
        return fit_booster_robust(np.concatenate([x_tr, added])[keep], np.r_[y_tr, np.ones(len(added), np.int8)][keep],
                                  x_va_fit, y_va_fit, names, cfg.booster, acfg, seed, w)

    for r in range(acfg.rounds):
        if search is not None:
            cands = [*cands, search.step(booster, refit_without)]
        worst_s, worst, best_part = _worst_case(booster, cands, n)
        fresh = [i for i in range(n) if worst[i] >= 0 and (i, int(worst[i])) not in picked]
        new = [best_part[i] for i in fresh]
        picked |= {(i, int(worst[i])) for i in range(n) if worst[i] >= 0}
        if new:
            added = np.concatenate([added, np.asarray(new, np.float32)])
            owner = np.r_[owner, np.asarray(fresh, np.int64)]
        scored = worst_s[np.isfinite(worst_s)]  # empty without candidates (candidates=0, no PGD)
        log.info(f"adversarial round {r + 1}/{acfg.rounds} (weight {weight_:g}): {len(new)} worst-case fraud "
                 f"rows added ({len(added)} in all); mean worst-case score "
                 f"{scored.mean() if len(scored) else float('nan'):.3f}")
        weight = np.r_[w_tr, np.full(len(added), weight_)]
        booster = fit_booster_robust(np.concatenate([x_tr, added]), np.r_[y_tr, np.ones(len(added), np.int8)],
                                     x_va_fit, y_va_fit, names, cfg.booster, acfg, seed, weight)
        trials.append({"weight": weight_, "round": r + 1, "booster": booster, "added": added})
    return trials


class _Selector:
    """Chooses the augmentation round (and weight) on the validation period, never on test data: attacked
    validation frauds (`select_candidates` fresh random edits + the PGD edit, worst case per payment) caught
    at the threshold the booster would get (1 % FPR on clean legitimate validation rows), among the trials
    whose clean validation PR-AUC is within `select_max_drop` of the best trial's."""

    def __init__(self, model, val, vrows, x_va, y_va, tm, acfg, rng):
        from fraud.attacks import pgd_attack

        self.x_va, self.y_va, self.n, self.acfg, self.bcfg = x_va, y_va, len(vrows), acfg, model.cfg.booster
        self.reference: float | None = None  # clean validation PR-AUC the drop is measured from (None: best)
        self.cands = _random_candidates(model, val, vrows, acfg.select_candidates, tm, rng, choice_options(val, tm),
                                        acfg)
        if acfg.pgd_candidate:
            self.cands.append(_attacked_rows(model, val, vrows, pgd_attack(model, val, tm).edits, tm, 0))

    def evaluate(self, booster) -> dict:
        from sklearn.metrics import average_precision_score

        from fraud.booster import choose_threshold, predict

        p = predict(booster, self.x_va)
        thr = choose_threshold(self.y_va, p, self.bcfg)
        worst_s, _, _ = _worst_case(booster, self.cands, self.n)
        return {"val_pr_auc": float(average_precision_score(self.y_va, p)),
                "val_attacked_recall": float(np.mean(worst_s > thr))}

    def pick(self, trials: list[dict]) -> dict:
        best_clean = max(t["val_pr_auc"] for t in trials)
        ref = best_clean if self.reference is None else self.reference
        ok = [t for t in trials if t["val_pr_auc"] >= ref - self.acfg.select_max_drop]
        if not ok:  # nothing as good as the reference on clean data: the cleanest trial
            return max(trials, key=lambda t: t["val_pr_auc"])
        return max(ok, key=lambda t: (round(t["val_attacked_recall"], 6), t["val_pr_auc"]))


# ---- adversarial training of the GNN edge head ------------------------------------------------------
@contextmanager
def _gnn_training(acfg: AdversarialConfig, tm):
    """While fitting: fraud.gnn.fit_gnn trains fraud edges on PGD-worst edge features (if enabled)."""
    import fraud.gnn as gnn

    if not acfg.gnn_adversarial or (tm.amount_rel == 0 and tm.shift_ns == 0):
        yield
        return
    original = gnn.fit_gnn

    def fit_gnn_adv(log_, rows, labels, cfg, gcfg, seed, progress=True, log_fn=lambda m: None):
        return _adversarial_gnn(log_, rows, labels, cfg, gcfg, seed, tm, acfg.gnn_pgd_steps, progress, log_fn)

    gnn.fit_gnn = fit_gnn_adv
    try:
        yield
    finally:
        gnn.fit_gnn = original


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
    """fraud.gnn.fit_gnn's loop where each fraud edge is trained twice: clean and at its PGD-worst
    edge features (the legitimate edges are unchanged)."""
    import torch
    from torch import nn
    from tqdm.auto import tqdm

    from fraud.features import NS, parse_duration
    from fraud.gnn import EdgeGNN, _tensors, snapshot_ids

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = EdgeGNN(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    every = parse_duration(cfg.train_every) * NS
    k = snapshot_ids(rows.t, every)
    groups = [np.flatnonzero(k == g) for g in np.unique(k)]
    snaps = [log_.snapshot(int(k[g[0]]) * every - gcfg.window_ns, int(k[g[0]]) * every) for g in groups]
    n_pos = max(int(labels.sum()), 1)
    keep_neg = min(1.0, cfg.neg_per_pos * n_pos / max(len(labels) - n_pos, 1))
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in tqdm(range(cfg.epochs), desc="gnn (adversarial)", disable=not progress, leave=False):
        model.train()
        total, seen = 0.0, 0
        for gi in rng.permutation(len(groups)):
            idx = groups[gi]
            y = labels[idx]
            keep = (y == 1) | (rng.random(len(idx)) < keep_neg)
            idx, y = idx[keep], y[keep]
            if len(idx) == 0:
                continue
            snap = snaps[gi]
            h = model.encode(*_tensors(snap))
            hs, hd = h[torch.from_numpy(snap.local(rows.src[idx]))], h[torch.from_numpy(snap.local(rows.dst[idx]))]
            attr = torch.from_numpy(rows.attr[idx])
            logit = model.head(hs, hd, attr)
            yt = torch.from_numpy(y.astype(np.float32))
            fraud = torch.from_numpy(y == 1)
            if fraud.any():
                adv = _perturb_attr(model.head, hs[fraud], hd[fraud], attr[fraud], tm, steps)
                logit = torch.cat([logit, model.head(hs[fraud], hd[fraud], adv)])
                yt = torch.cat([yt, torch.ones(int(fraud.sum()))])
            loss = loss_fn(logit, yt)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"GNN loss became {loss.item()} in epoch {epoch}; lower gnn.lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yt)
            seen += len(yt)
        log_fn(f"gnn (adversarial) epoch {epoch + 1}/{cfg.epochs}: loss {total / max(seen, 1):.4f}")
    model.eval()
    return model
