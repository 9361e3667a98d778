"""Reason codes: human phrases, grouped per phrase, only score-raising contributions, largest first."""

import numpy as np
import pandas as pd
import pytest

from fraud.serve.reasons import ReasonCoder, phrase
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


def test_every_model_input_has_a_human_phrase():
    model, _, _ = tiny_model()
    for name in model.feature_names_:
        text = phrase(name)
        assert text and "_" not in text, (name, text)


def test_grouping_ranking_sign_and_direction():
    names = ["log_amount", "hour_sin", "hour_cos", "pair_is_new", "gnn_src0", "gnn_src1"]
    ref = pd.DataFrame({"log_amount": [1.0, 2.0, 3.0], "hour_sin": [0.0, 0.5, 1.0], "hour_cos": [0.0, 0.5, 1.0],
                        "pair_is_new": [0.0, 1.0, 0.0], "gnn_src0": [0.0, 0.1, 0.2], "gnn_src1": [0.0, 0.1, 0.2]})
    coder = ReasonCoder(names, ref)
    assert coder.phrases == ["amount", "time of day", "first payment between this sender and receiver",
                             "sender's network neighbourhood (GNN)"]
    contrib = np.array([[0.5, 0.4, 0.3, -1.0, 0.2, 0.2],     # time of day 0.7 > amount 0.5 > GNN 0.4
                        [-0.1, -0.1, 0.0, 0.9, -0.3, 0.0]])  # only one positive reason
    x = np.array([[9.0, 0, 0, 1.0, 0, 0], [0.5, 0, 0, 1.0, 0, 0]])
    top = coder.top(contrib, x, k=3)
    assert top.iloc[0].tolist() == ["time of day", "amount (high)", "sender's network neighbourhood (GNN)"]
    assert top.iloc[1].tolist() == ["first payment between this sender and receiver (yes)", "", ""]
    ex = coder.explain(contrib, x, k=3)
    assert [r["reason"] for r in ex[1]] == ["first payment between this sender and receiver (yes)"]
    assert ex[0][0]["contribution"] == pytest.approx(0.7, abs=1e-4)


def test_reasons_come_from_the_booster_contributions_of_the_real_model():
    from fraud.models.booster import contributions, predict

    model, _, later = tiny_model()
    x = model.matrix(later.iloc[:200], model.history_.copy())
    c = contributions(model.booster_, x, model.feature_names_)
    margin = np.log(predict(model.booster_, x) / (1 - predict(model.booster_, x)))
    np.testing.assert_allclose(c.sum(axis=1), margin, atol=1e-3)  # contributions + bias = the score's log-odds
    coder = ReasonCoder(model.feature_names_, model.reference_)
    idx, val = coder.top_indices(c[:, :-1], k=3)
    grouped = coder.grouped(c[:, :-1])
    assert np.allclose(val[:, 0], grouped.max(axis=1))
    assert (np.diff(val, axis=1) <= 1e-7).all()
