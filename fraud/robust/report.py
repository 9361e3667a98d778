"""The robustness table: clean quality and recall under each attack at each budget, per model.

    rows = robustness_table({"standard": m0, "adversarial": m1}, test_df, budgets=(1.0, 2.0))
    print(markdown_table(rows))

Per model: clean PR-AUC, recall at 1% FPR and recall at the model's threshold on `test_df`, then for each
attack (random edit, white-box PGD, black-box search) and budget the recall at the model's threshold after
the attack (a payment counts as caught if any of its parts is flagged) and the queries the attack used.
Every model meets the same attacks with the same seed; each attack is run against that model itself.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from fraud.data.durations import to_ns
from fraud.robust.attacks import AttackConfig, Target, blackbox_attack, fraud_rows, pgd_attack, random_attack
from fraud.robust.defence import fit_adversarial
from fraud.robust.threat import ThreatModel, check_canonical, preset
from fraud.stack.evaluate import metrics, temporal_split
from fraud.stack.model import FraudModel
from shared.config import to_dict
from shared.reporting import markdown_table, text_table, write_json

ATTACKS = ("random", "pgd", "blackbox")
LABELS = {"random": "random edit", "pgd": "white-box PGD", "blackbox": "black-box search"}


def run_attack(name: str, model, df: pd.DataFrame, tm, cfg=None, progress: bool = False):

    if name == "random":
        return random_attack(model, df, tm, cfg)
    if name == "pgd":
        return pgd_attack(model, df, tm, cfg)
    if name == "blackbox":
        return blackbox_attack(model, df, tm, cfg, progress=progress)
    raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")


def clean_metrics(model, df: pd.DataFrame) -> dict:
    """PR-AUC, recall at 1% FPR and at the model's threshold on clean `df` (scored as the attacks score it)."""

    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    tgt = Target(model, df, fraud_rows(df), ThreatModel())
    p = model.score(tgt.df, history=tgt.history)["probability"].to_numpy()
    m = metrics(tgt.df["label"].to_numpy(), p, model.threshold_)
    return {"pr_auc": m["pr_auc"], "recall_at_1pct_fpr": m["recall_at_1pct_fpr"],
            "recall_at_threshold": m["recall_at_threshold"], "fpr_at_threshold": m["fpr_at_threshold"]}


def robustness_table(models: dict, df: pd.DataFrame, budgets=(1.0, 2.0), threat: str = "full",
                     attacks=ATTACKS, cfg=None, progress: bool = False) -> tuple[list[dict], list[dict]]:
    """(wide rows: one per model, long rows: one per model x attack x budget); see the module docstring."""

    wide, long = [], []
    for name, model in models.items():
        row = {"model": name, **clean_metrics(model, df)}
        for b in budgets:
            tm = preset(threat).scaled(b)
            for a in attacks:
                t0 = time.perf_counter()
                res = run_attack(a, model, df, tm, cfg, progress)
                check_canonical(res.frame)
                s = res.summary()
                row[f"{a}@{b:g}"] = s["recall_after"]
                long.append({"model": name, "attack": LABELS[a], "budget": b, "recall_before": s["recall_before"],
                             "recall_after": s["recall_after"], "queries_per_fraud": s["queries_per_fraud"],
                             "queries_total": s["queries_total"], "seconds": round(time.perf_counter() - t0, 1)})
        wide.append(row)
    return wide, long


def verdict(wide: list[dict], budget: float, attack: str = "blackbox") -> dict:
    """The issue's target read off the table: attacked recall ratio at `budget` and the clean PR-AUC cost."""
    std, adv = wide[0], wide[-1]
    key = f"{attack}@{budget:g}"
    ratio = adv[key] / std[key] if std[key] > 0 else float("inf")
    cost = 100 * (std["pr_auc"] - adv["pr_auc"])
    return {"attack": LABELS[attack], "budget": budget, "standard_recall": std[key], "adversarial_recall": adv[key],
            "ratio": float(ratio), "clean_pr_auc_cost_points": float(cost),
            "target_met": bool(ratio >= 2 and cost < 2), "worst_case_attack_recall": {
                m["model"]: float(np.min([m[f"{a}@{budget:g}"] for a in ATTACKS if f"{a}@{budget:g}" in m]))
                for m in wide}}


def robustness_report(df: pd.DataFrame, cfg, acfg, out_dir, budgets=(1.0, 2.0), threat: str = "full",
                      attack_cfg=None, progress: bool = False, models: dict | None = None) -> dict:
    """Train the standard and the adversarially trained stack on one temporal split of `df` (unless `models`
    are given), attack both on the test period, write report.md + robustness.json; returns the summary."""


    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split = temporal_split(df, cfg.split.train, cfg.split.val)
    timings = {}
    if models is None:
        t0 = time.perf_counter()
        std = FraudModel(cfg).fit(split.train, split.val, progress=progress)
        timings["fit_standard_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        adv = fit_adversarial(split.train, split.val, cfg, acfg, progress=progress)
        timings["fit_adversarial_s"] = round(time.perf_counter() - t0, 1)
        models = {"standard": std, "adversarial": adv}
    t0 = time.perf_counter()
    wide, long = robustness_table(models, split.test, budgets, threat, cfg=attack_cfg, progress=progress)
    timings["attacks_s"] = round(time.perf_counter() - t0, 1)
    v = verdict(wide, max(budgets))
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "split": split.summary(),
               "threat": threat, "budgets": list(budgets), "threat_at_budget": {
                   f"{b:g}": to_dict(_scaled(threat, b)) for b in budgets},
               "adversarial_config": to_dict(acfg) if acfg is not None else None,
               "table": wide, "attacks": long, "verdict": v, "timings": timings}
    write_json(summary, out_dir / "robustness.json")
    lines = ["# Fraud robustness", "", f"{summary['date']}; threat model `{threat}`; test period "
             f"{split.summary()[2]['rows']} rows, {split.summary()[2]['frauds']} frauds.", "",
             "Recall at each model's own threshold (1% FPR on validation) after each attack; a split payment "
             "counts as caught if any part is flagged.", "", markdown_table(wide), "", markdown_table(long), "",
             verdict_sentence(v), ""]
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return summary


def _scaled(threat: str, b: float):

    return preset(threat).scaled(b)


def verdict_sentence(v: dict) -> str:
    """The target, said plainly with the numbers."""
    met = "met" if v["target_met"] else "NOT met"
    return (f"At budget {v['budget']:g} under the {v['attack']} attack the adversarially trained stack keeps "
            f"{v['adversarial_recall']:.3f} recall against {v['standard_recall']:.3f} for the standard stack "
            f"({v['ratio']:.2f}x) at a clean PR-AUC cost of {v['clean_pr_auc_cost_points']:.2f} points; the target "
            f"(>= 2x at < 2 points) is {met}.")


def robustness_cli(df: pd.DataFrame, model_dir, cfg, out_dir, progress: bool = False) -> dict:
    """`fraud evaluate --robustness`: the report for a saved model on `df`'s rows after its history, or
    (no model) the standard vs adversarially trained comparison on a temporal split of `df`."""


    out_dir = Path(out_dir)
    if model_dir is None:
        s = robustness_report(df, cfg, cfg.adversarial, out_dir, attack_cfg=AttackConfig(seed=cfg.seed),
                              progress=progress)
        print(text_table(s["table"]))
        print(verdict_sentence(s["verdict"]))
        return s
    model = FraudModel.load(model_dir)
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    later = to_ns(df["timestamp"]) > (model.history_.max_ns or -1)
    test = df[later] if later.any() else df
    wide, long = robustness_table({Path(model_dir).name: model}, test, cfg=AttackConfig(seed=cfg.seed),
                                  progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json({"table": wide, "attacks": long}, out_dir / "robustness.json")
    (out_dir / "report.md").write_text("\n".join(["# Robustness", "", markdown_table(wide), "",
                                                  markdown_table(long), ""]), encoding="utf-8")
    print(text_table(wide))
    return {"table": wide, "attacks": long}
