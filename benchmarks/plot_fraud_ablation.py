"""The README's fraud figure: precision-recall on the test period for the ablation's headline variants.

    python -m benchmarks.bench_fraud_ablation --out runs/bench-fraud-ablation        # writes test_scores.parquet
    python -m benchmarks.plot_fraud_ablation runs/bench-fraud-ablation --out docs/img/fraud_ablation_pr.png

Reads `test_scores.parquet` (label and one score column per variant, written by `fraud.stack.ablation`) from the
ablation directory (or its `ablation/` subfolder, where the benchmark puts it) and draws the variants that
answer the README's question: what each part adds over XGBoost on raw features. The PR-AUC in each legend
entry is recomputed from the scores, so it matches the ablation's metrics.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# (column, legend name, line style): the ladder from raw features to the full stack, then a part alone.
HEADLINE = (
    ("xgb_raw", "XGBoost, raw features", "-"),
    ("xgb_neighbour", "+ neighbour aggregates", "-"),
    ("xgb_labels", "+ delayed-label entity risk (strongest simple baseline)", "-"),
    ("full", "full stack (+ paths, autoencoder, GNN)", "-"),
    ("full_gnn_logit", "full stack, GNN logit only", "--"),
    ("gnn", "GNN edge logit alone", ":"),
)


def find_scores(run: Path) -> Path:
    """The test_scores.parquet of an ablation run directory (the directory itself or its ablation/ folder)."""
    for p in (run / "test_scores.parquet", run / "ablation" / "test_scores.parquet"):
        if p.exists():
            return p
    raise SystemExit(f"no test_scores.parquet in {run} or {run / 'ablation'}; run "
                     f"`python -m benchmarks.bench_fraud_ablation --out {run}` first")


def plot(scores_path: Path, out: Path) -> dict[str, float]:
    """Draw the headline PR curves into `out` (PNG); return {variant: PR-AUC}."""
    import pandas as pd
    from sklearn.metrics import average_precision_score, precision_recall_curve

    from shared.reporting import new_figure, save_figure

    df = pd.read_parquet(scores_path)
    y = df["label"].to_numpy()
    fig, ax = new_figure(7.2, 4.6)
    colours = ("#7f7f7f", "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd")
    aucs = {}
    for (col, name, style), colour in zip(HEADLINE, colours, strict=True):
        if col not in df.columns:
            continue
        p = df[col].to_numpy()
        aucs[col] = float(average_precision_score(y, p))
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, style, color=colour, lw=1.6, label=f"{name}: PR-AUC {aucs[col]:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"fraud ablation, test period ({len(df):,} transactions, {int(y.sum()):,} frauds)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower left")
    save_figure(fig, out)
    return aucs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the ablation's output directory (bench_fraud_ablation --out)")
    ap.add_argument("--out", type=Path, default=Path("docs/img/fraud_ablation_pr.png"))
    args = ap.parse_args()
    aucs = plot(find_scores(args.run), args.out)
    print("\n".join(f"{k:16s} PR-AUC {v:.3f}" for k, v in aucs.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
