"""fraud.models.treeshap: the reason-code contributions equal XGBoost's own (exact TreeSHAP and Saabas)."""

import numpy as np
import pytest
import xgboost as xgb

from fraud.models import treeshap
from fraud.models.booster import contributions


def _booster(depth=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 7)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take each split's default direction
    y = ((np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2]) > 0.3) ^ (rng.random(3000) < 0.1))
    names = [f"f{i}" for i in range(7)]
    b = xgb.train({"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "base_score": 0.3, "seed": seed},
                  xgb.DMatrix(x, y.astype(int), feature_names=names), num_boost_round=40)
    return b, x, names


@pytest.mark.parametrize("exact", [True, False])
def test_contributions_equal_xgboosts_own(exact):
    b, x, names = _booster()
    want = b.predict(xgb.DMatrix(x, feature_names=names), pred_contribs=True, approx_contribs=not exact)
    got = contributions(b, x, names, exact=exact)
    assert treeshap.explainer(b) is not None  # computed here, not by XGBoost
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())
    margin = b.predict(xgb.DMatrix(x, feature_names=names), output_margin=True)
    np.testing.assert_allclose(got.sum(axis=1), margin, atol=1e-4)  # + bias = the score's log-odds


def test_a_rows_contributions_do_not_depend_on_the_rows_computed_with_it():
    b, x, names = _booster(depth=6, seed=1)
    ex = treeshap.explainer(b)
    for exact in (True, False):
        whole = ex(x[:700], exact, threads=2)
        alone = np.concatenate([ex(x[i:i + 1], exact, threads=1) for i in (0, 350, 699)])
        assert np.array_equal(whole[[0, 350, 699]], alone)


@pytest.mark.parametrize("limit", [("MAX_UNIQUE", 1), ("MAX_TABLE_BYTES", 1000)])
def test_models_it_does_not_cover_fall_back_to_xgboost(monkeypatch, limit):
    monkeypatch.setattr(treeshap, *limit)  # paths with more features / tables larger than allowed
    b, x, names = _booster(depth=4, seed=2)
    assert treeshap.explainer(b) is None
    want = b.predict(xgb.DMatrix(x, feature_names=names), pred_contribs=True)
    np.testing.assert_array_equal(contributions(b, x, names), want)


def test_wrong_width_is_refused():
    b, x, _ = _booster(depth=3)
    with pytest.raises(ValueError, match="7 features"):
        treeshap.explainer(b)(x[:, :5])
