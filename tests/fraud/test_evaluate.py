"""Metrics, temporal split, the ablation report and the train/evaluate commands."""

import json

import numpy as np
import pytest

from fraud.data.frame import DataError
from fraud.stack.evaluate import metrics, recall_at_fpr, temporal_split
from tests.fixtures.fraud_frames import planted


def test_metrics_on_a_hand_checked_example():
    y = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.05, 0.2])
    typ = np.array(["", "", "", "", "ring", "ring", "", "ato"])
    m = metrics(y, p, threshold=0.5, typology=typ)
    assert m["flagged"] == 3 and m["precision_at_threshold"] == pytest.approx(2 / 3)
    assert m["recall_at_threshold"] == pytest.approx(2 / 3)
    assert m["fpr_at_threshold"] == pytest.approx(1 / 5)
    assert m["roc_auc"] == pytest.approx(10.5 / 15)  # 4 + 4 + 2.5 of 15 pairs (ties count one half)
    assert m["per_typology"]["ring"]["recall_at_threshold"] == 1.0
    assert m["per_typology"]["ato"]["recall_at_threshold"] == 0.0
    # at 1% FPR the threshold is the largest legitimate score (0.9): nothing above it
    assert recall_at_fpr(y, p, 0.01) == 0.0
    assert recall_at_fpr(y, p, 0.2) == pytest.approx(2 / 3)


def test_temporal_split_is_ordered_and_refuses_a_too_small_file():
    df = planted(n=2000, days=10, seed=0).sample(frac=1, random_state=0)
    s = temporal_split(df, 0.6, 0.2)
    assert s.train["timestamp"].max() < s.val["timestamp"].min() <= s.val["timestamp"].max() < s.test["timestamp"].min()
    assert len(s.train) + len(s.val) + len(s.test) == len(df)
    with pytest.raises(DataError, match="one timestamp"):
        temporal_split(df.assign(timestamp=df["timestamp"].iloc[0]), 0.6, 0.2)


@pytest.mark.slow
def test_ablation_writes_every_variant_and_the_full_stack_uses_the_graph(tmp_path):
    from fraud.models.autoencoder import AEConfig
    from fraud.models.booster import BoosterConfig
    from fraud.models.gnn import GNNConfig
    from fraud.stack.ablation import VARIANTS, run_ablation
    from fraud.stack.config import FraudConfig

    cfg = FraudConfig(gnn=GNNConfig(hidden=16, embed=4, epochs=3), autoencoder=AEConfig(epochs=3),
                      booster=BoosterConfig(n_estimators=80))
    cfg.evaluate.graph_typologies = []
    summary = run_ablation(planted(n=8000, days=24, seed=1), cfg, tmp_path, progress=False)
    assert set(summary["variants"]) == set(VARIANTS) - {"xgb_raw_all_rows"}  # identical to xgb_raw by default
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["variants"]["full"]["pr_auc"] == pytest.approx(summary["variants"]["full"]["pr_auc"])
    report = (tmp_path / "report.md").read_text()
    assert "| full |" in report and "xgb_neighbour" in report and (tmp_path / "pr_curve.png").stat().st_size > 1000
    # the saved test scores reproduce the reported metrics (the README's PR-curve figure is drawn from them)
    import pandas as pd
    from sklearn.metrics import average_precision_score

    scores = pd.read_parquet(tmp_path / "test_scores.parquet")
    assert len(scores) == summary["variants"]["full"]["rows"]
    assert average_precision_score(scores["label"], scores["full"]) == pytest.approx(
        summary["variants"]["full"]["pr_auc"])
    # the planted fraud is only visible through who pays whom: graph-aware variants must see it
    assert summary["variants"]["gnn"]["pr_auc"] > 0.5
    assert summary["variants"]["full"]["pr_auc"] > summary["variants"]["isolation_forest"]["pr_auc"]


@pytest.mark.slow
def test_train_then_evaluate_commands_write_a_model_and_reports(tmp_path):
    from typer.testing import CliRunner

    from fraud.cli import app

    data = tmp_path / "tx.parquet"
    planted(n=5000, days=20, seed=2).to_parquet(data)
    small = ["--set", "gnn.epochs=1", "--set", "autoencoder.epochs=2", "--set", "booster.n_estimators=40",
             "--set", "graph.every=3h", "--seed", "3", "--quiet"]
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "m"), *small])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "manifest.json").is_file() and "test PR-AUC" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output  # --quiet: one result line, the rest in log.txt
    assert "pr_auc" in (tmp_path / "m" / "log.txt").read_text()
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--model", str(tmp_path / "m"),
                              "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert "after" in m["note"] and m["rows"] < 5000  # only rows after the training history are measured
    res = runner.invoke(app, ["train", "--data", str(tmp_path / "missing.parquet"), *small])
    assert res.exit_code == 2 and "missing.parquet" in res.output
