"""Black-box search in adversarial training: stays in the threat model, only lowers scores, reproducible."""

import numpy as np
import pandas as pd
import pytest
from fraud_frames import planted
from test_pipeline import small_cfg

from fraud.adversarial import AdversarialConfig, fit_adversarial
from fraud.evaluate import temporal_split
from fraud.pipeline import FraudModel
from fraud.threat import preset

ACFG = dict(candidates=1, rounds=2, val_candidates=1, gnn_pgd_steps=1, pgd_candidate=False, blackbox_queries=3)


@pytest.fixture(scope="module")
def split():
    return temporal_split(planted(n=4000, days=20, seed=5), 0.6, 0.2)


def test_search_stays_in_the_budget_and_never_raises_a_payments_score(split):
    from fraud.blackbox_augment import BlackboxSearch
    from fraud.booster import predict

    model = FraudModel(small_cfg(seed=1)).fit(split.train, split.val, progress=False)
    train = split.train.sort_values("timestamp", kind="stable").reset_index(drop=True)
    rows = np.flatnonzero(train["label"].to_numpy() == 1)
    tm = preset("full").scaled(2)
    val = split.val.sort_values("timestamp", kind="stable").reset_index(drop=True)
    search = BlackboxSearch(model, train, rows, tm, 4, 0, model.val_matrix_, val["label"].to_numpy(), seed=0)
    s0 = search._scores(model.booster_, *search.best_rows)
    xs, j = search.step(model.booster_)
    s1 = np.full(len(rows), -np.inf)
    np.maximum.at(s1, j, predict(model.booster_, xs))
    assert np.isin(np.arange(len(rows)), j).all()  # every fraudulent payment has at least one part
    assert (search.queries_used >= 1).all() and search.queries_used.max() <= 4
    # Kept only when lower; the joint re-scoring (one payment's rows feed another's features) may move a
    # score a little, so the bulk must fall, not every single one.
    assert np.mean(s1) < np.mean(s0) and np.mean(s1 <= s0 + 1e-9) > 0.9
    e = search.best
    assert (np.abs(e.factor - 1) <= tm.amount_rel + 1e-12).all() and (e.parts <= tm.max_splits).all()
    assert (np.abs(e.shifts) <= tm.shift_ns).all()
    with pytest.raises(ValueError, match="query"):
        BlackboxSearch(model, train, rows, tm, 0, 0, model.val_matrix_, val["label"].to_numpy(), seed=0)


def test_blackbox_augmentation_is_reproducible_and_recorded(split):
    acfg = AdversarialConfig(**ACFG)
    a = fit_adversarial(split.train, split.val, small_cfg(seed=3), acfg, progress=False)
    b = fit_adversarial(split.train, split.val, small_cfg(seed=3), acfg, progress=False)
    pa = a.score(split.test, history="stored")
    pd.testing.assert_frame_equal(pa, b.score(split.test, history="stored"))
    info = a.fit_info_["adversarial"]
    assert info["blackbox_queries"] == 3 and len(info["blackbox_search"]) == 1
    search = info["blackbox_search"][0]
    assert len(search["rounds"]) == ACFG["rounds"] and 0 < search["queries_per_fraud"] <= 3 * ACFG["rounds"]
    off = fit_adversarial(split.train, split.val, small_cfg(seed=3), AdversarialConfig(**{**ACFG, "blackbox_queries": 0}),
                          progress=False)
    assert off.fit_info_["adversarial"]["blackbox_search"] == []
    assert not np.allclose(pa["probability"], off.score(split.test, history="stored")["probability"])
    with pytest.raises(ValueError, match="blackbox_queries"):
        AdversarialConfig(blackbox_queries=-1)


def test_folds_search_each_fold_against_a_booster_that_never_saw_it(split, monkeypatch):
    import fraud.adversarial as adv_mod

    fits = []
    real_fit = adv_mod.fit_booster_robust

    def recording_fit(x, y, *args, **kw):
        fits.append((len(x), int(y.sum())))
        return real_fit(x, y, *args, **kw)

    class Spy:  # stands in for BlackboxSearch: leaves payments 0 and 2 (training rows 0 and 5) out
        rows = np.array([0, 2, 5])

        def step(self, booster, refit_without):
            refit_without(np.array([True, False, True]))
            return np.zeros((3, 3), np.float32), np.arange(3)  # one part per payment

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = np.zeros(60, np.int8)
    y[[0, 2, 5, 7]] = 1
    cfg, acfg = small_cfg(seed=0), AdversarialConfig(rounds=2, monotone=False)
    booster = real_fit(x, y, x, y, ["a", "b", "c"], cfg.booster, acfg, 0)
    monkeypatch.setattr(adv_mod, "fit_booster_robust", recording_fit)
    trials = adv_mod._augment_rounds(booster, x, y, np.ones(len(y)), x, y, ["a", "b", "c"], cfg, acfg, [], 3, 0.25,
                                     Spy())
    assert len(trials) == 2
    # round 1: the refit leaves out 2 clean fraud rows, the round's fit adds one row per payment; round 2:
    # the refit also leaves out the added rows of payments 0 and 2 (the identical new candidate adds none)
    assert fits == [(58, 2), (63, 7), (59, 3), (63, 7)]
    with pytest.raises(ValueError, match="blackbox_folds"):
        AdversarialConfig(blackbox_folds=1)
    acfg = AdversarialConfig(**{**ACFG, "blackbox_folds": 2, "rounds": 1})
    m = fit_adversarial(split.train, split.val, small_cfg(seed=3), acfg, progress=False)
    log = m.fit_info_["adversarial"]["blackbox_search"][0]["rounds"]
    assert len(log) == 1 and len(log[0]["threshold"]) == 2  # one booster (and threshold) per fold
