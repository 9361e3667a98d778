"""Drift: PSI with reference-fixed bins flags a shifted amount distribution; unseen entities are counted."""

import json

import numpy as np
import pandas as pd
import pytest

from fraud.serve.drift import DriftConfig, DriftMonitor, bin_edges, drift_warnings, psi
from fraud.serve.scoring import ScoreOptions, score_file
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


def test_psi_basics():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.integers(0, 2, 5000).astype(float)})
    assert len(bin_edges(ref["a"].to_numpy(), 10)) == 9 and list(bin_edges(ref["b"].to_numpy(), 10)) == [0.0]
    same = DriftMonitor(ref, cfg=DriftConfig())
    shifted = DriftMonitor(ref, cfg=DriftConfig())
    new = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.integers(0, 2, 4000).astype(float)})
    frame = pd.DataFrame({"source": ["s"] * 4000, "target": ["t"] * 4000})
    same.update(new.to_numpy(), frame)
    shifted.update((new + [1.5, 0]).to_numpy(), frame)
    assert max(same.result()["psi"].values()) < 0.02
    res = shifted.result()
    assert res["psi"]["a"] > 1.0 and res["drifted"] == ["a"] and res["psi"]["b"] < 0.02
    assert psi(np.array([5, 5]), np.array([5, 5])) == 0.0
    nan = DriftMonitor(ref)
    nan.update(np.full((300, 2), np.nan), frame.iloc[:300])  # all missing: its own bin, a large PSI
    assert nan.result()["psi"]["a"] > 1.0


def test_blanked_reference_rows_do_not_read_as_drift_and_expanding_totals_are_not_flagged():
    # A saved model's reference has its GNN/autoencoder columns blanked (NaN) for the booster's earliest
    # rows; scoring never yields NaN, so the blanks must not count as a share of the reference.
    rng = np.random.default_rng(1)
    a = rng.normal(size=6000)
    a[:2000] = np.nan
    ref = pd.DataFrame({"gnn_src0": a, "src_n_hist": rng.normal(size=6000)})
    mon = DriftMonitor(ref)
    new = np.column_stack([rng.normal(size=3000), rng.normal(size=3000) + 3])  # history grew: n_hist shifted
    mon.update(new, pd.DataFrame({"source": ["s"] * 3000, "target": ["t"] * 3000}))
    res = mon.result()
    assert res["psi"]["gnn_src0"] < 0.02 and res["reference_rows"] == 6000
    assert res["psi"]["src_n_hist"] > 1.0 and res["drifted"] == [] and "src_n_hist" in res["not_flagged"]


def test_scoring_a_shifted_file_warns_on_amount_and_counts_unseen_entities(tmp_path):
    model, _, later = tiny_model()
    base = later.copy()
    shifted = later.copy()
    shifted["amount"] = shifted["amount"] * 20  # amounts 20x what training saw
    new_ent = shifted.index % 4 == 0
    shifted.loc[new_ent, "source"] = "NEW" + shifted.loc[new_ent, "transaction_id"]
    base.to_parquet(tmp_path / "base.parquet")
    shifted.to_parquet(tmp_path / "shifted.parquet")
    opts = ScoreOptions(progress=False, reasons="none", drift=DriftConfig(threshold=0.2))
    score_file(model, tmp_path / "base.parquet", tmp_path / "b.parquet", options=opts)
    s = score_file(model, tmp_path / "shifted.parquet", tmp_path / "s.parquet", drift_path=tmp_path / "d.json",
                   options=opts)
    b = json.loads((tmp_path / "b.drift.json").read_text())
    d = json.loads((tmp_path / "d.json").read_text())
    assert d == s.drift and d["rows"] == len(later)
    assert d["psi"]["log_amount"] > 1.0 > 0.2 > b["psi"]["log_amount"]
    assert "log_amount" in d["drifted"] and "log_amount" not in b["drifted"]
    lines = drift_warnings(d)
    assert any(line.startswith("drift warning: log_amount (amount) PSI") for line in lines)
    u = d["unseen_entities"]["source"]
    assert u["rows_share"] == pytest.approx(new_ent.mean(), abs=0.01)
    assert b["unseen_entities"]["source"]["rows_share"] < 0.05
    assert {"psi", "drifted", "threshold", "bins", "unseen_entities", "rows"} <= set(d)


def test_bin_counts_follow_the_bin_definition_with_ties_and_missing_values():
    from fraud.serve.drift import bin_counts

    rng = np.random.default_rng(3)
    x = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan, np.inf, -np.inf], size=(500, 3)).astype(np.float32)
    edges = [np.array([0.0, 1.0]), np.array([]), np.array([-1.0, 0.5, 2.0])]
    for j, got in enumerate(bin_counts(x, edges)):
        v = x[:, j].astype(np.float64)
        fin = v[np.isfinite(v)]
        want = np.r_[np.bincount(np.searchsorted(edges[j], fin, side="left"), minlength=len(edges[j]) + 1),
                     (~np.isfinite(v)).sum()]
        assert got.tolist() == want.tolist()  # right-closed bins: a value equal to an edge is in the lower bin
