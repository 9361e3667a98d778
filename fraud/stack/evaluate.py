"""Metrics a fraud team reads: PR-AUC, ROC-AUC, recall at 1% FPR, precision/recall at the chosen threshold,
per-typology recall, plus the temporal split and the evaluation of a saved model on any labelled file.

The ablation (which trains every variant on one split) lives in fraud/stack/ablation.py and uses these functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from fraud.data.durations import to_ns
from fraud.data.frame import DataError
from shared.reporting import markdown_table, new_figure, save_figure, write_json

log = logging.getLogger("fraud.stack.evaluate")


@dataclass
class EvalConfig:
    """What the report singles out: typologies meant to be visible only through the graph, and the
    typology held out of training (both as the generator names them)."""

    graph_typologies: list[str] = field(default_factory=lambda: ["mule_ring", "laundering_cycle"])
    holdout_typology: str = ""
    report_fpr: float = 0.01


@dataclass
class Split:
    """A temporal split: every train row is earlier than every validation row, which precede test rows."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    val_start: pd.Timestamp
    test_start: pd.Timestamp

    def summary(self) -> list[dict]:
        rows = []
        for name, df in (("train", self.train), ("validation", self.val), ("test", self.test)):
            r = {"split": name, "rows": len(df), "frauds": int(df["label"].sum()) if "label" in df else None,
                 "start": str(df["timestamp"].min()) if len(df) else "", "end": str(df["timestamp"].max()) if len(df) else ""}
            if "typology" in df.columns:
                counts = df.loc[df["typology"].fillna("") != "", "typology"].value_counts()
                r.update({f"n_{k}": int(v) for k, v in counts.items()})
            rows.append(r)
        return rows


def temporal_split(df: pd.DataFrame, train_frac: float, val_frac: float) -> Split:
    """Cut the time span (not the row count) at train_frac and train_frac + val_frac."""

    if len(df) == 0:
        raise DataError("the data has no rows")
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    t = to_ns(df["timestamp"])
    t0, t1 = int(t.min()), int(t.max())
    if t1 == t0:
        raise DataError("all rows share one timestamp; a temporal split needs a time span")
    c1 = t0 + int((t1 - t0) * train_frac)
    c2 = t0 + int((t1 - t0) * (train_frac + val_frac))
    tr, va, te = df[t < c1], df[(t >= c1) & (t < c2)], df[t >= c2]
    for name, part in (("validation", va), ("test", te)):
        if len(part) == 0:
            raise DataError(f"the {name} period is empty; the file is too small for the split "
                            f"(split.train={train_frac}, split.val={val_frac})")
    return Split(tr.reset_index(drop=True), va.reset_index(drop=True), te.reset_index(drop=True),
                 pd.Timestamp(c1, tz="UTC"), pd.Timestamp(c2, tz="UTC"))


def recall_at_fpr(y: np.ndarray, p: np.ndarray, fpr: float = 0.01) -> float:
    """Recall when flagging scores above the (1 - fpr) quantile of legitimate scores."""
    neg = np.sort(p[y == 0])
    if len(neg) == 0 or y.sum() == 0:
        return float("nan")
    k = int(np.floor(fpr * len(neg)))
    thr = neg[len(neg) - k - 1] if k < len(neg) else -np.inf
    return float((p[y == 1] > thr).mean())


def metrics(y: np.ndarray, p: np.ndarray, threshold: float, typology: np.ndarray | None = None) -> dict:
    """All headline metrics of scores `p` [n] against labels `y` [n] (flag = p > threshold)."""

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    flag = p > threshold
    tp = int((flag & (y == 1)).sum())
    out = {"rows": int(len(y)), "frauds": int(y.sum()),
           "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
           "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
           "recall_at_1pct_fpr": recall_at_fpr(y, p, 0.01),
           "threshold": float(threshold), "flagged": int(flag.sum()),
           "precision_at_threshold": tp / int(flag.sum()) if flag.sum() else float("nan"),
           "recall_at_threshold": tp / int(y.sum()) if y.sum() else float("nan"),
           "fpr_at_threshold": float((flag & (y == 0)).sum() / max((y == 0).sum(), 1))}
    if typology is not None:
        out["per_typology"] = per_typology(y, p, threshold, typology)
    return out


def per_typology(y: np.ndarray, p: np.ndarray, threshold: float, typology: np.ndarray) -> dict:
    """Per fraud typology: rows, recall at the threshold, recall at 1% FPR and PR-AUC against legitimate rows."""

    typ = pd.Series(typology).fillna("").astype(str).to_numpy()
    legit = y == 0
    out = {}
    for name in sorted(set(typ[y == 1]) - {""}):
        sel = (typ == name) & (y == 1)
        yy = np.r_[np.zeros(legit.sum()), np.ones(sel.sum())]
        pp = np.r_[p[legit], p[sel]]
        out[name] = {"rows": int(sel.sum()), "recall_at_threshold": float((p[sel] > threshold).mean()),
                     "recall_at_1pct_fpr": recall_at_fpr(yy.astype(int), pp, 0.01),
                     "pr_auc_vs_legit": float(average_precision_score(yy, pp)) if legit.any() else float("nan")}
    return out


def pr_curve_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str) -> Path:
    """PNG of precision-recall curves, one per variant: {name: (y [n], p [n])}."""


    import matplotlib

    fig, ax = new_figure(7, 5)
    # tab10 repeats after ten curves (the ablation draws twelve): tab20 keeps every curve its own colour.
    colours = matplotlib.colormaps["tab10" if len(curves) <= 10 else "tab20"].colors
    for i, (name, (y, p)) in enumerate(curves.items()):
        if 0 < y.sum() < len(y):
            prec, rec, _ = precision_recall_curve(y, p)
            ax.plot(rec, prec, label=name, lw=1.4, color=colours[i % len(colours)])
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)


def evaluate_model(model, df: pd.DataFrame, out_dir: str | Path, history: str = "auto",
                   progress: bool = True, feed_labels: bool = True) -> dict:
    """Score a labelled canonical frame with a saved model; write report.md, metrics.json, pr_curve.png.

    With `feed_labels`, the file's labels run as the delayed feed they are in production: each joins (a copy
    of) the model's label book when it becomes known, so later rows may use it (never a row's own label).

    When the file overlaps the model's training period (e.g. the training file itself), it is scored with its
    own earlier rows as history and metrics cover only rows after the model's history end (unseen rows);
    if there are none, all rows are used and the report says so.
    """

    if "label" not in df.columns:
        raise DataError("evaluation needs a 'label' column (map your fraud flag column to label)")
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if feed_labels:
        with model.label_feed(df):
            scores = model.score(df, history=history, progress=progress)
    else:
        scores = model.score(df, history=history, progress=progress)
    t = to_ns(df["timestamp"])
    unseen = t > (model.history_.max_ns or -1)
    note = "all rows are after the model's training history"
    if not unseen.all():
        if unseen.any():
            note = (f"file overlaps the training period: metrics on the {int(unseen.sum())} rows after "
                    f"{pd.Timestamp(model.history_.max_ns, tz='UTC')} (earlier rows served as history only)")
        else:
            unseen[:] = True
            note = "file lies inside the training period: metrics on all rows (they may be in-sample)"
    y = df["label"].to_numpy()[unseen]
    p = scores["probability"].to_numpy()[unseen]
    typ = df["typology"].to_numpy()[unseen] if "typology" in df.columns else None
    m = metrics(y, p, model.threshold_, typ)
    m["note"] = note
    if feed_labels:
        m["label_feed"] = f"the file's labels joined the label book {model.cfg.labels.delay} after each payment"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(m, out_dir / "metrics.json")
    pr_curve_figure({"model": (y, p)}, out_dir / "pr_curve.png", "precision-recall")
    head = {k: v for k, v in m.items() if not isinstance(v, dict)}
    lines = ["# Fraud model evaluation", "", note, "", markdown_table([head])]
    if m.get("per_typology"):
        lines += ["## Per typology", "", markdown_table([{"typology": k, **v} for k, v in m["per_typology"].items()])]
    lines += ["![PR curve](pr_curve.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return m
