"""Attacks: stay inside the threat model, re-run the real pipeline, count queries; `fraud attack` CLI."""

import numpy as np
import pandas as pd
import pytest
from test_pipeline import small_cfg
from test_threat import check_within_threat

from fraud.robust.attacks import AttackConfig, blackbox_attack, pgd_attack, random_attack
from fraud.robust.threat import preset
from fraud.stack.evaluate import temporal_split
from fraud.stack.model import FraudModel
from tests.fixtures.fraud_frames import planted


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    df = planted(n=4000, days=20, seed=1)
    df["typology"] = pd.array(np.where(df["label"] == 1, "mule_ring", ""), dtype="string")
    split = temporal_split(df, 0.6, 0.2)
    model = FraudModel(small_cfg()).fit(split.train, split.val, progress=False)
    run = model.save(tmp_path_factory.mktemp("model") / "m")
    return model, split, run


def _clean(split):
    return split.test.sort_values("timestamp", kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("attack", [random_attack, pgd_attack, blackbox_attack])
def test_attacks_stay_inside_the_threat_model_and_rescore_through_the_pipeline(fitted, attack):
    model, split, _ = fitted
    tm = preset("full").scaled(2)
    res = attack(model, split.test, tm, AttackConfig(rounds=4, pgd_steps=5))
    clean = _clean(split)
    t = clean["timestamp"].dt.as_unit("ns").astype("int64")
    check_within_threat(clean, res.frame, res.origin, res.rows, tm, (model.history_.max_ns, int(t.max())))
    assert (clean["label"].to_numpy()[res.rows] == 1).all() and len(res.rows) == int(clean["label"].sum())
    # The reported scores are the model's real scores of the attacked raw rows (features recomputed).
    p = model.score(res.frame, history="stored")["probability"].to_numpy()
    expect = np.full(len(res.rows), -np.inf)
    pos = np.full(len(clean), -1)
    pos[res.rows] = np.arange(len(res.rows))
    hit = pos[res.origin] >= 0
    np.maximum.at(expect, pos[res.origin][hit], p[hit])
    np.testing.assert_allclose(res.after, expect)
    assert res.recall_before == pytest.approx(float((res.before > model.threshold_).mean()))


def test_blackbox_counts_every_query_and_stops_once_a_payment_passes(fitted):
    model, split, _ = fitted
    calls = {"n": 0}
    real = model.score

    def counting(df, *a, **k):
        calls["n"] += 1
        return real(df, *a, **k)

    model.score = counting
    try:
        res = blackbox_attack(model, split.test, preset("full"), AttackConfig(rounds=5, seed=2))
    finally:
        del model.score
    rounds_run = calls["n"] - 2  # the clean query and the final re-score of the result
    assert 0 <= rounds_run <= 5
    assert (res.queries >= 1).all() and (res.queries <= rounds_run + 1).all()
    assert res.summary()["queries_total"] == int(res.queries.sum())
    # Fraudsters already under the threshold never query again.
    passed = res.before <= model.threshold_
    assert (res.queries[passed] == 1).all()


def test_blackbox_is_reproducible_by_seed(fitted):
    model, split, _ = fitted
    a = blackbox_attack(model, split.test, preset("full"), AttackConfig(rounds=3, seed=5))
    b = blackbox_attack(model, split.test, preset("full"), AttackConfig(rounds=3, seed=5))
    np.testing.assert_array_equal(a.after, b.after)
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_fraud_attack_cli_reports_recall_before_after_and_queries(fitted, tmp_path):
    from typer.testing import CliRunner

    from fraud.cli import app
    from fraud.robust.threat import check_canonical

    _, split, run = fitted
    data = tmp_path / "test.parquet"
    split.test.to_parquet(data, index=False)
    out = tmp_path / "attacked.parquet"
    r = CliRunner().invoke(app, ["attack", "--model", str(run), "--data", str(data), "--budget", "1",
                                 "--rounds", "2", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "recall_before" in r.output and "recall_after" in r.output and "queries_total" in r.output
    check_canonical(pd.read_parquet(out))
    r = CliRunner().invoke(app, ["attack", "--model", str(run), "--data", str(data), "--threat", "nope", "-q"])
    assert r.exit_code == 2 and "unknown threat model" in r.output


def test_robustness_table_has_every_attack_and_budget(fitted):
    from fraud.robust.report import ATTACKS, robustness_table, verdict, verdict_sentence

    model, split, _ = fitted
    wide, long = robustness_table({"a": model, "b": model}, split.test, budgets=(0.5, 1.0),
                                  cfg=AttackConfig(rounds=1, pgd_steps=2))
    assert len(long) == 2 * 2 * len(ATTACKS)
    for row in wide:
        assert 0 <= row["pr_auc"] <= 1 and all(f"{a}@{b:g}" in row for a in ATTACKS for b in (0.5, 1.0))
    v = verdict(wide, 1.0)
    assert v["clean_pr_auc_cost_points"] == 0 and v["ratio"] == pytest.approx(1.0) and not v["target_met"]
    assert "NOT met" in verdict_sentence(v)


def test_fraud_attack_cli_uses_the_attack_config_rounds_by_default(fitted, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import fraud.robust.report
    from fraud.cli import app

    _, split, run = fitted
    data = tmp_path / "test.parquet"
    split.test.to_parquet(data, index=False)
    seen, real = [], fraud.robust.report.run_attack

    def spy(name, model, df, tm, cfg=None, progress=False):
        seen.append(cfg)
        return real("random", model, df, tm, cfg)  # the cheap attack: only the config passed is under test

    monkeypatch.setattr(fraud.robust.report, "run_attack", spy)
    for extra, rounds, sparse in (([], AttackConfig().rounds, True), (["--rounds", "3", "--uniform"], 3, False)):
        r = CliRunner().invoke(app, ["attack", "--model", str(run), "--data", str(data), *extra, "-q"])
        assert r.exit_code == 0, r.output
        assert seen[-1].rounds == rounds and seen[-1].sparse is sparse
