"""Drift: a later file of the same generator config raises no warning; real shifts (amounts x3, fewer
transfers, new senders, another typology mix) warn and name the input in words with the size of the shift."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from data_scripts.drift_shifts import later_rows, rename_entities, scale_amounts, thin_category
from data_scripts.make_transactions import generate
from fraud.models.booster import predict
from fraud.serve.drift import DriftConfig, DriftMonitor, drift_warnings, feature_kind
from fraud.serve.drift_stats import bin_counts
from fraud.serve.scoring import ScoreOptions, score_file
from fraud.stack.model import FraudModel
from tests.fixtures.drift_world import drift_world
from tests.fixtures.scoring_model import single_threaded, tiny_model, tiny_split

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)
CANON = ["transaction_id", "timestamp", "source", "target", "amount"]


def _drift(frame: pd.DataFrame, labels: bool = False) -> dict:
    """drift.json content of one later file of the drift world, as `fraud score` computes it (labels: with
    every row's label confirmed, as after `fraud feedback`)."""
    model, _, _ = drift_world()
    canon = frame[CANON]
    x = model.matrix(canon, history="stored")
    mon = DriftMonitor.for_model(model)
    mon.update(x, canon, predict(model.booster_, x), labels=frame["label"].to_numpy(np.int8) if labels else None)
    return mon.result()


def test_a_later_file_of_the_same_world_raises_no_warning():
    _, _, later = drift_world()
    res = _drift(later)
    assert res["rows"] == len(later) > 3000 and res["enough_rows"]
    assert drift_warnings(res) == []
    # what used to cry wolf is still measured: receivers' windows, label feed, learned blocks
    assert res["features"]["dst_known_share_14d"]["not_flagged"] == "label feed"
    assert res["features"]["dst_cnt_7d"]["keyed_on"] == "target"
    assert set(res["embeddings"]) == {"gnn_src", "gnn_dst", "ae_z"}


def test_confirmed_fraud_of_a_later_file_of_the_same_world_raises_no_warning():
    _, _, later = drift_world()
    res = _drift(later, labels=True)
    out = res["model_output"]
    assert out["confirmed_fraud"]["labelled_rows"] == len(later)
    assert out["confirmed_fraud_recall"]["confirmed"] == int(later["label"].sum()) > 100
    assert not out["confirmed_fraud_recall"]["flagged"] and out["confirmed_drifted"] == []
    assert drift_warnings(res) == []


def test_a_mix_the_model_misses_shows_in_its_recall_on_confirmed_fraud():
    # compromised merchants: ordinary amounts and timing, so the model misses them and the likely-fraud rows
    # do not see them; once the labels are back, the recall on the confirmed cases collapses
    model, world, _ = drift_world()
    mixed = later_rows(generate(replace(world, typology_mix={"compromised_merchant": 1.0})), model.history_.max_ns)
    before = _drift(mixed)
    assert "confirmed_fraud_recall" in before["model_output"]  # measured, but nothing is confirmed yet
    assert before["model_output"]["confirmed_fraud_recall"]["confirmed"] == 0
    assert not before["model_output"]["confirmed_fraud_recall"]["flagged"]
    rec = _drift(mixed, labels=True)["model_output"]["confirmed_fraud_recall"]
    assert rec["flagged"] and rec["recall"] < rec["reference_recall"] / 3
    lines = drift_warnings(_drift(mixed, labels=True))
    assert any(w.startswith(f"drift warning: the model flags {100 * rec['recall']:.1f} % of the "
                            f"{rec['confirmed']:,} confirmed frauds in this file vs ") for w in lines)


def test_another_mix_changes_the_confirmed_fraud_profile_and_warnings_stay_short():
    model, world, _ = drift_world()
    mixed = later_rows(generate(replace(world, typology_mix={"card_testing": 1.0})), model.history_.max_ns)
    res = _drift(mixed, labels=True)
    out = res["model_output"]
    assert "log_amount" in out["confirmed_drifted"]
    r = out["confirmed_fraud_profile"]["log_amount"]
    assert r["median"] < r["reference_median"] - 1
    lines = [w for w in drift_warnings(res) if w.startswith("drift warning: confirmed fraud changed in")]
    assert len(out["confirmed_drifted"]) > 6 and len(lines) == 6  # five inputs, then one line naming the rest
    assert all(name in lines[-1] for name in out["confirmed_drifted"][5:])


def test_confirmed_fraud_counts_add_up_over_partitions():
    model, _, later = drift_world()
    canon = later[CANON]
    x = model.matrix(canon, history="stored")
    p, y = predict(model.booster_, x), later["label"].to_numpy(np.int8).copy()
    y[::3] = -1  # a third not confirmed yet
    whole = DriftMonitor.for_model(model)
    whole.update(x, canon, p, labels=y)
    parts = [DriftMonitor.for_model(model) for _ in range(2)]
    half = len(canon) // 2
    parts[0].update(x[:half], canon.iloc[:half], p[:half], labels=y[:half])
    parts[1].update(x[half:], canon.iloc[half:], p[half:], labels=y[half:])
    parts[0].absorb(parts[1])
    a, b = whole.result()["model_output"], parts[0].result()["model_output"]
    for key in ("confirmed_fraud", "confirmed_fraud_recall", "confirmed_fraud_profile"):
        assert a[key] == b[key]
    assert a["confirmed_fraud"]["labelled_rows"] == int((y >= 0).sum())
    assert a["confirmed_fraud_recall"]["confirmed"] == int((y == 1).sum())
    caught = int(((p >= model.threshold_) & (y == 1)).sum())
    assert a["confirmed_fraud_recall"]["recall"] == pytest.approx(caught / (y == 1).sum(), abs=1e-6)


def test_amounts_x3_warn_on_amount_with_the_medians():
    _, _, later = drift_world()
    res = _drift(scale_amounts(later, 3.0))
    assert "log_amount" in res["drifted"]
    line = next(w for w in drift_warnings(res) if "(log_amount)" in w)
    assert line.startswith("drift warning: amount (log_amount): KS distance")
    med = res["features"]["log_amount"]
    assert np.expm1(med["median"]) / np.expm1(med["reference_median"]) == pytest.approx(3.0, rel=0.25)


def test_fewer_transfers_warn():
    # 80 % of the person-to-person transfers gone: their share of the file drops from ~12 % to ~3 %
    _, _, later = drift_world()
    res = _drift(thin_category(later, "p2p", keep=0.2, seed=0))
    assert res["drifted"] and drift_warnings(res)


def test_new_senders_warn_as_unseen_entities():
    _, _, later = drift_world()
    res = _drift(rename_entities(later, "source", share=0.3, seed=0))
    u = res["unseen_entities"]["source"]
    assert res["unseen_drifted"] == ["source"] and u["rows_share"] == pytest.approx(0.3, abs=0.08)
    assert any(w.startswith("drift warning: senders not in the model's history: ") for w in drift_warnings(res))


def test_another_typology_mix_warns_on_the_likely_fraud_rows():
    # the same world and fraud rate, all fraud card testing: the rows the model scores as likely fraud
    # now have tiny amounts (no input over all rows moves by more than the fraud share)
    model, world, _ = drift_world()
    mixed = later_rows(generate(replace(world, typology_mix={"card_testing": 1.0})), model.history_.max_ns)
    res = _drift(mixed)
    assert res["drifted"] == [] and "log_amount" in res["model_output"]["drifted"]
    r = res["model_output"]["likely_fraud_profile"]["log_amount"]
    assert r["median"] < r["reference_median"] - 1  # log1p units: several times smaller
    assert any(w.startswith("drift warning: rows the model scores as likely fraud changed in amount (log_amount)")
               for w in drift_warnings(res))


def test_kinds_point_masses_and_blanked_reference_rows():
    rng = np.random.default_rng(0)
    n = 6000
    a = rng.normal(size=n)
    a[:2000] = np.nan  # a saved reference blanks the learned columns of the booster's earliest rows
    ref = pd.DataFrame({"gnn_src0": a, "pair_is_new": (rng.random(n) < 0.3).astype(float),
                        "log_amount": np.where(rng.random(n) < 0.5, 0.0, rng.normal(3, 1, n)),
                        "src_n_hist": rng.normal(size=n)})
    assert [feature_kind(c, ref[c].to_numpy(), 10) for c in ref] == ["embedding", "categorical", "continuous",
                                                                     "continuous"]
    frame = pd.DataFrame({"source": [f"s{i}" for i in range(3000)], "target": [f"t{i}" for i in range(3000)]})
    same = DriftMonitor(ref)
    same.update(np.column_stack([rng.normal(size=3000), rng.random(3000) < 0.3,
                                 np.where(rng.random(3000) < 0.5, 0.0, rng.normal(3, 1, 3000)),
                                 rng.normal(size=3000) + 3]), frame)  # history grew: n_hist moved
    res = same.result()
    assert res["drifted"] == [] and res["features"]["gnn_src0"]["psi"] < 0.02
    assert res["features"]["src_n_hist"]["effect"] > 0.8 and res["features"]["src_n_hist"]["not_flagged"]
    moved = DriftMonitor(ref)
    moved.update(np.column_stack([rng.normal(size=3000), rng.random(3000) < 0.6,
                                  np.where(rng.random(3000) < 0.8, 0.0, rng.normal(3, 1, 3000)),
                                  rng.normal(size=3000)]), frame)
    res = moved.result()
    assert set(res["drifted"]) == {"pair_is_new", "log_amount"}
    assert res["features"]["log_amount"]["effect"] == pytest.approx(0.3, abs=0.05)  # mass at 0: 50 % -> 80 %
    lines = drift_warnings(res)
    assert any("first payment between this sender and receiver (pair_is_new): Cramer's V" in w
               and "share of value 0 70." in w and "-> 40." in w for w in lines)


def test_a_small_file_is_measured_but_not_flagged():
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"log_amount": rng.normal(size=5000)})
    mon = DriftMonitor(ref, cfg=DriftConfig())
    mon.update(rng.normal(5, 1, size=(100, 1)), pd.DataFrame({"source": ["s"] * 100, "target": ["t"] * 100}))
    res = mon.result()
    assert res["features"]["log_amount"]["effect"] > 0.9 and res["drifted"] == []
    assert drift_warnings(res)[-1].startswith("drift: only 100 rows scored")


def test_receiver_features_count_receivers_not_rows():
    # 3000 rows to 6 receivers: a receiver feature shifted by one receiver's value is not significant
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"dst_cnt_7d": np.repeat(np.arange(6.0), 1000) + rng.normal(0, 0.01, 6000)})
    mon = DriftMonitor(ref, profile={"effective_entities": {"target": 6.0, "source": 6000.0}})
    new = (np.repeat([0.0, 1, 2, 3, 4, 6], 500) + rng.normal(0, 0.01, 3000))[:, None]  # one receiver moved
    names = pd.DataFrame({"source": [f"s{i}" for i in range(3000)], "target": np.repeat([f"m{i}" for i in range(6)], 500)})
    mon.update(new, names)
    r = mon.result()["features"]["dst_cnt_7d"]
    assert r["effect"] == pytest.approx(1 / 6, abs=0.025) and r["p_value"] > 0.5 and not r["flagged"]
    counted_by_rows = DriftMonitor(ref)  # every row its own receiver: the p-value rows-as-independent gives
    counted_by_rows.update(new, names.assign(target=[f"t{i}" for i in range(3000)]))
    assert counted_by_rows.result()["features"]["dst_cnt_7d"]["p_value"] < 1e-10


def test_scoring_a_shifted_file_writes_drift_json_and_warns(tmp_path):
    model, _, later = tiny_model()
    shifted = later.copy()
    shifted["amount"] = shifted["amount"] * 20  # amounts 20x what training saw
    new_ent = shifted.index % 4 == 0
    shifted.loc[new_ent, "source"] = "NEW" + shifted.loc[new_ent, "transaction_id"]
    shifted.to_parquet(tmp_path / "shifted.parquet")
    opts = ScoreOptions(progress=False, reasons="none")
    s = score_file(model, tmp_path / "shifted.parquet", tmp_path / "s.parquet", drift_path=tmp_path / "d.json",
                   options=opts)
    d = json.loads((tmp_path / "d.json").read_text())
    assert d == s.drift and d["rows"] == len(later)
    assert "log_amount" in d["drifted"] and d["unseen_drifted"] == ["source"]
    assert d["unseen_entities"]["source"]["rows_share"] == pytest.approx(new_ent.mean(), abs=0.01)
    assert d["model_output"]["likely_fraud"]["reference_rows"] >= 0
    lines = drift_warnings(d)
    assert any(line.startswith("drift warning: amount (log_amount): KS distance") for line in lines)


def test_scoring_reads_confirmed_labels_from_the_label_book(tmp_path):
    model, run, later = tiny_model()
    test = tiny_split().test
    fed = FraudModel.load(run)  # a copy: the fixture's model stays as it is
    added, rejected = fed.add_labels(test[["transaction_id", "label"]].iloc[::2], test[CANON[:4]])
    assert len(rejected) == 0 and len(added) == len(test[::2])
    later.to_parquet(tmp_path / "later.parquet")
    opts = ScoreOptions(progress=False, reasons="none")
    d = score_file(fed, tmp_path / "later.parquet", tmp_path / "s.parquet", options=opts).drift
    conf = d["model_output"]["confirmed_fraud"]
    assert conf["scored_rows"] == len(later) and conf["labelled_rows"] == len(added)
    assert d["model_output"]["confirmed_fraud_recall"]["confirmed"] == int(added["label"].sum())
    none = score_file(model, tmp_path / "later.parquet", tmp_path / "t.parquet", options=opts).drift
    assert none["model_output"]["confirmed_fraud"]["labelled_rows"] == 0


def test_bin_counts_follow_the_bin_definition_with_ties_and_missing_values():
    rng = np.random.default_rng(3)
    x = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan, np.inf, -np.inf], size=(500, 3)).astype(np.float32)
    edges = [np.array([0.0, 1.0]), np.array([]), np.array([-1.0, 0.5, 2.0])]
    for j, got in enumerate(bin_counts(x, edges)):
        v = x[:, j].astype(np.float64)
        fin = v[np.isfinite(v)]
        want = np.r_[np.bincount(np.searchsorted(edges[j], fin, side="left"), minlength=len(edges[j]) + 1),
                     (~np.isfinite(v)).sum()]
        assert got.tolist() == want.tolist()  # right-closed bins: a value equal to an edge is in the lower bin
