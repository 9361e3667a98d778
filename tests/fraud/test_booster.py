"""XGBoost part: threshold rules keep their promise, early stopping works, contributions explain the score."""

import numpy as np
import pytest

from fraud.models.booster import (
    BoosterConfig,
    blend_boosters,
    choose_threshold,
    contributions,
    fit_booster,
    predict,
)


def _data(n, rng):
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.7, n) > 2.3).astype(np.int8)
    return x, y


def test_fpr_threshold_flags_at_most_the_target_share_of_legitimate_rows():
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.05).astype(int)
    p = rng.random(5000) + y
    for fpr in (0.01, 0.05):
        thr = choose_threshold(y, p, BoosterConfig(target_fpr=fpr))
        got = ((p > thr) & (y == 0)).sum() / (y == 0).sum()
        assert fpr - 0.002 <= got <= fpr


def test_cost_threshold_is_the_brute_force_minimum():
    rng = np.random.default_rng(1)
    y = (rng.random(800) < 0.1).astype(int)
    p = np.round(rng.random(800) * 0.6 + 0.4 * y, 3)
    cfg = BoosterConfig(threshold="cost", cost_ratio=7.0)
    thr = choose_threshold(y, p, cfg)

    def cost(t):
        return 7.0 * ((p <= t) & (y == 1)).sum() + ((p > t) & (y == 0)).sum()

    assert cost(thr) == min(cost(t) for t in np.unique(p))


def test_fit_early_stops_and_contributions_sum_to_the_logit():
    rng = np.random.default_rng(2)
    x_tr, y_tr = _data(4000, rng)
    x_va, y_va = _data(2000, rng)
    names = ["a", "b", "c", "d"]
    booster = fit_booster(x_tr, y_tr, x_va, y_va, names, BoosterConfig(n_estimators=400, early_stopping_rounds=10),
                          seed=0)
    assert booster.num_boosted_rounds() < 400
    p = predict(booster, x_va)
    c = contributions(booster, x_va, names)
    logit = np.log(p / (1 - p))
    np.testing.assert_allclose(c.sum(axis=1), logit, atol=1e-3)
    assert np.abs(c[:, 0]).mean() > np.abs(c[:, 3]).mean()  # the informative feature explains most


def test_blended_booster_scores_the_weighted_margin_of_both_and_survives_saving(tmp_path):
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x_tr, y_tr = _data(3000, rng)
    x_va, y_va = _data(1000, rng)
    names = ["a", "b", "c", "d"]
    a = fit_booster(x_tr, y_tr, x_va, y_va, names, BoosterConfig(n_estimators=30, max_depth=3), seed=0)
    b = fit_booster(x_tr, 1 - y_tr, x_va, 1 - y_va, names, BoosterConfig(n_estimators=50, scale_pos_weight=3.0), seed=1)

    def margin(bst):
        p = predict(bst, x_va)
        return np.log(p / (1 - p))

    blend = blend_boosters([a, b], [0.3, 0.7])
    assert blend.num_boosted_rounds() == a.num_boosted_rounds() + b.num_boosted_rounds()
    np.testing.assert_allclose(margin(blend), 0.3 * margin(a) + 0.7 * margin(b), atol=1e-4)
    c = fit_booster(x_va, y_va, x_tr, y_tr, names, BoosterConfig(n_estimators=20), seed=2)
    three = blend_boosters([a, b, c], [0.5, 0.25, 0.25])  # an ensemble: any number of boosters
    np.testing.assert_allclose(margin(three), 0.5 * margin(a) + 0.25 * margin(b) + 0.25 * margin(c), atol=1e-4)
    np.testing.assert_allclose(contributions(blend, x_va, names).sum(axis=1), margin(blend), atol=1e-3)
    blend.save_model(tmp_path / "m.ubj")
    loaded = xgb.Booster(model_file=str(tmp_path / "m.ubj"))
    np.testing.assert_array_equal(predict(loaded, x_va), predict(blend, x_va))
    with pytest.raises(ValueError, match="blend weights"):
        blend_boosters([a, b], [1.5, -0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        blend_boosters([a, b], [0.5, 0.6])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="target_fpr"):
        BoosterConfig(target_fpr=1.5)
