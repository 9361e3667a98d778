"""The booster on Dask (xgboost.dask, LocalCluster of 2 workers) against the one-process booster: same
early stopping rule and threshold rule, metrics close (bins are sketched per worker, so not bit-identical)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraud.models.booster import BoosterConfig, choose_threshold, fit_booster, predict

pytest.importorskip("distributed")


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] * x[:, 2] + x[:, 3] - 4.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return x, y


def test_dask_booster_matches_one_process_metrics():
    from fraud.scale.booster import dask_booster_fitter
    from fraud.scale.cluster import cluster

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _data(6000, 0), _data(2000, 1), _data(4000, 2)
    assert 50 < y_tr.sum() < 1000 and y_va.sum() > 10
    cfg = BoosterConfig(n_estimators=300, early_stopping_rounds=20, n_jobs=1)
    names = [f"f{i}" for i in range(8)]
    one = fit_booster(x_tr, y_tr, x_va, y_va, names, cfg, seed=0)
    with cluster("local:2") as client:
        many = dask_booster_fitter(client)(x_tr, y_tr, x_va, y_va, names, cfg, 0)
    assert many.feature_names == names
    assert 1 <= many.num_boosted_rounds() < cfg.n_estimators  # early stopping happened on the cluster too
    ap_one = average_precision_score(y_te, predict(one, x_te))
    ap_many = average_precision_score(y_te, predict(many, x_te))
    assert abs(ap_one - ap_many) < 0.03, (ap_one, ap_many)
    t_one = choose_threshold(y_va, predict(one, x_va), cfg)
    t_many = choose_threshold(y_va, predict(many, x_va), cfg)
    # The threshold rule holds the same false-positive rate on validation for both.
    for b, t in ((one, t_one), (many, t_many)):
        fpr = float((predict(b, x_va)[y_va == 0] > t).mean())
        assert fpr <= cfg.target_fpr + 1e-9


def test_fraud_model_with_the_dask_booster_scores_like_one_process():
    """The whole stack with its booster trained on the cluster: the same features and parts, a booster close
    to the one-process one, the threshold chosen by the same rule on validation."""
    from fraud.scale.booster import dask_booster_fitter
    from fraud.scale.cluster import cluster
    from fraud.stack.evaluate import metrics
    from fraud.stack.model import FraudModel
    from tests.fixtures.scoring_model import tiny_config, tiny_model, tiny_split

    one, _, _ = tiny_model()
    split = tiny_split()
    with cluster("local:2") as client:
        many = FraudModel(tiny_config()).fit(split.train, split.val, progress=False,
                                             booster_fitter=dask_booster_fitter(client))
    assert many.feature_names_ == one.feature_names_
    y = split.test["label"].to_numpy()
    m_one = metrics(y, one.score(split.test, history="stored")["probability"].to_numpy(), one.threshold_)
    m_many = metrics(y, many.score(split.test, history="stored")["probability"].to_numpy(), many.threshold_)
    assert abs(m_one["pr_auc"] - m_many["pr_auc"]) < 0.1, (m_one, m_many)
    assert abs(m_one["roc_auc"] - m_many["roc_auc"]) < 0.05, (m_one, m_many)
