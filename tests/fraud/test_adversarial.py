"""Defences: adversarial training is reproducible by seed, saves/loads like any model, robust options hold."""

import numpy as np
import pandas as pd
import pytest
from fraud_frames import planted
from test_pipeline import small_cfg

from fraud.adversarial import AdversarialConfig, fit_adversarial
from fraud.evaluate import temporal_split
from fraud.pipeline import FraudModel

ACFG = dict(candidates=2, rounds=2, val_candidates=1, gnn_pgd_steps=2, drop_features=["weekday"], select="last")


@pytest.fixture(scope="module")
def split():
    return temporal_split(planted(n=4000, days=20, seed=2), 0.6, 0.2)


@pytest.fixture(scope="module")
def adv(split):
    cfg = small_cfg(seed=3)
    return fit_adversarial(split.train, split.val, cfg, AdversarialConfig(**ACFG), progress=False)


def test_adversarial_training_is_reproducible_by_seed(split, adv):
    again = fit_adversarial(split.train, split.val, small_cfg(seed=3), AdversarialConfig(**ACFG), progress=False)
    a = adv.score(split.test, history="stored")
    pd.testing.assert_frame_equal(a, again.score(split.test, history="stored"))
    other = fit_adversarial(split.train, split.val, small_cfg(seed=4), AdversarialConfig(**ACFG), progress=False)
    assert not np.allclose(a["probability"], other.score(split.test, history="stored")["probability"])


def test_adversarial_model_saves_loads_and_records_its_defences(adv, split, tmp_path):
    info = adv.fit_info_["adversarial"]
    assert info["augmented_rows"] > 0 and info["threat"] == "full"
    run = adv.save(tmp_path / "m")
    loaded = FraudModel.load(run)
    pd.testing.assert_frame_equal(adv.score(split.test, history="stored"), loaded.score(split.test, history="stored"))
    assert loaded.fit_info_["adversarial"]["augmented_rows"] == info["augmented_rows"]


def test_robust_options_hold_in_the_booster(adv, split):
    names = adv.feature_names_
    used = set(adv.booster_.get_score(importance_type="weight"))
    assert "weekday" not in used  # dropped: blanked in every training row, so never split on
    # Monotone: raising the sender's window counts never lowers the score.
    x = adv.matrix(split.test, history="stored")[:300]
    cnt = [i for i, n in enumerate(names) if n.startswith(("src_cnt_", "src_young_cnt_"))]
    assert any(names[i].startswith("src_young_cnt_") for i in cnt)
    from fraud.booster import predict

    p0 = predict(adv.booster_, x)
    for step in (1, 5, 50):
        x2 = x.copy()
        x2[:, cnt] += step
        assert (predict(adv.booster_, x2) >= p0 - 1e-6).all()


def test_augment_weight_is_checked_and_changes_the_booster(adv, split):
    with pytest.raises(ValueError, match="augment_weight"):
        AdversarialConfig(augment_weight=0)
    light = fit_adversarial(split.train, split.val, small_cfg(seed=3), AdversarialConfig(**ACFG, augment_weight=0.25),
                            progress=False)
    a = adv.score(split.test, history="stored")["probability"]
    assert not np.allclose(a, light.score(split.test, history="stored")["probability"])


def test_edited_legitimate_rows_join_the_booster_training_as_label_0(adv, split):
    with pytest.raises(ValueError, match="legit_edits"):
        AdversarialConfig(legit_edits=-1)
    assert adv.fit_info_["adversarial"]["edited_legit_rows"] == 0  # off by default
    inv = fit_adversarial(split.train, split.val, small_cfg(seed=3), AdversarialConfig(**ACFG, legit_edits=1.0),
                          progress=False)
    frauds = int(split.train["label"].sum())
    # One edited legitimate payment per training fraud, each giving 1-5 rows (its parts).
    assert inv.fit_info_["adversarial"]["edited_legit_rows"] >= 0.5 * frauds
    a = adv.score(split.test, history="stored")["probability"]
    assert not np.allclose(a, inv.score(split.test, history="stored")["probability"])


def test_blend_mixes_the_pre_augmentation_booster_into_the_final_one(adv, split):
    with pytest.raises(ValueError, match="blend"):
        AdversarialConfig(blend=1.0)
    trials = adv.fit_info_["adversarial"]["trials"]
    assert AdversarialConfig().blend == 0.5  # the default: round 0 and the last round, in one booster
    assert adv.booster_.num_boosted_rounds() == sum(t["trees"] for t in (trials[0], trials[-1]))
    alone = fit_adversarial(split.train, split.val, small_cfg(seed=3), AdversarialConfig(**ACFG, blend=0.0),
                            progress=False)
    assert alone.booster_.num_boosted_rounds() == trials[-1]["trees"]
    a = adv.score(split.test, history="stored")["probability"]
    assert not np.allclose(a, alone.score(split.test, history="stored")["probability"])


def test_ensemble_averages_independently_augmented_boosters(adv, split):
    with pytest.raises(ValueError, match="ensemble"):
        AdversarialConfig(ensemble=0)
    with pytest.raises(ValueError, match="select: last"):
        AdversarialConfig(ensemble=2, select="val")
    assert adv.fit_info_["adversarial"]["ensemble_trees"] == []  # off by default
    ens = fit_adversarial(split.train, split.val, small_cfg(seed=3), AdversarialConfig(**ACFG, ensemble=2),
                          progress=False)
    info = ens.fit_info_["adversarial"]
    assert len(info["ensemble_trees"]) == 1
    # Round 0 and member 0 are the single run's own boosters (same seeds); member 1 adds its trees.
    assert [t["trees"] for t in info["trials"]] == [t["trees"] for t in adv.fit_info_["adversarial"]["trials"]]
    assert ens.booster_.num_boosted_rounds() == adv.booster_.num_boosted_rounds() + info["ensemble_trees"][0]
    a = adv.score(split.test, history="stored")["probability"]
    assert not np.allclose(a, ens.score(split.test, history="stored")["probability"])


def test_robust_features_only_in_the_defended_stack(adv, split):
    from fraud.adversarial import defended_config

    cfg = small_cfg(seed=3)
    assert "pair_age" in adv.feature_names_ and adv.cfg.features.robust
    assert not cfg.features.robust  # fit_adversarial works on a copy; the standard config is unchanged
    off = defended_config(cfg, AdversarialConfig(robust_features=False))
    assert off is cfg
    nb = defended_config(cfg, AdversarialConfig(neighbour_windows=["7d"]))
    assert "7d" in nb.features.neighbour_windows and "7d" not in cfg.features.neighbour_windows


def test_gnn_training_hook_is_restored():
    import fraud.gnn as gnn

    before = gnn.fit_gnn
    from fraud.adversarial import _gnn_training
    from fraud.threat import preset

    with _gnn_training(AdversarialConfig(), preset("full")):
        assert gnn.fit_gnn is not before
    assert gnn.fit_gnn is before


def test_fraud_train_adversarial_cli(split, tmp_path):
    from typer.testing import CliRunner

    from fraud.cli import app

    data = tmp_path / "d.parquet"
    pd.concat([split.train, split.val, split.test]).to_parquet(data, index=False)
    sets = ["gnn.epochs=1", "gnn.hidden=16", "gnn.embed=4", "autoencoder.epochs=2", "booster.n_estimators=40",
            "adversarial.candidates=1", "adversarial.rounds=1", "adversarial.gnn_pgd_steps=1"]
    args = ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--adversarial", "-q"]
    r = CliRunner().invoke(app, args + [x for s in sets for x in ("--set", s)])
    assert r.exit_code == 0, r.output
    loaded = FraudModel.load(tmp_path / "m")
    assert loaded.cfg.adversarial.enabled and loaded.fit_info_["adversarial"]["augmented_rows"] > 0


def test_validation_selection_is_reproducible_and_respects_the_clean_drop(split):
    acfg = AdversarialConfig(**{**ACFG, "rounds": 1, "select": "val"}, select_weights=[0.25, 1.0],
                             select_candidates=1, select_reference="standard")
    a = fit_adversarial(split.train, split.val, small_cfg(seed=3), acfg, progress=False)
    info = a.fit_info_["adversarial"]
    trials = info["trials"]
    assert len(trials) == 1 + 2 * 1  # round 0 + rounds per weight
    chosen = next(t for t in trials if (t["weight"], t["round"]) == (info["chosen"]["weight"], info["chosen"]["round"]))
    ref = info["select_reference_val_pr_auc"]
    assert ref is not None and 0 < ref <= 1
    ok = [t for t in trials if t["val_pr_auc"] >= ref - acfg.select_max_drop]
    if ok:
        assert chosen in ok and chosen["val_attacked_recall"] == max(t["val_attacked_recall"] for t in ok)
    else:  # nothing as clean as the reference: the cleanest trial
        assert chosen["val_pr_auc"] == max(t["val_pr_auc"] for t in trials)
    b = fit_adversarial(split.train, split.val, small_cfg(seed=3), acfg, progress=False)
    pd.testing.assert_frame_equal(a.score(split.test, history="stored"), b.score(split.test, history="stored"))
    with pytest.raises(ValueError, match="select"):
        AdversarialConfig(select="test")
    with pytest.raises(ValueError, match="select_reference"):
        AdversarialConfig(select_reference="test")


def test_selector_pick_rule():
    from fraud.adversarial import _Selector

    sel = _Selector.__new__(_Selector)
    sel.acfg, sel.reference = AdversarialConfig(select_max_drop=0.01), None
    trials = [{"round": 0, "val_pr_auc": 0.70, "val_attacked_recall": 0.2},
              {"round": 1, "val_pr_auc": 0.695, "val_attacked_recall": 0.6},
              {"round": 2, "val_pr_auc": 0.68, "val_attacked_recall": 0.9}]
    assert sel.pick(trials)["round"] == 1  # round 2 catches more but costs 2 points of clean PR-AUC
    sel.reference = 0.69
    assert sel.pick(trials)["round"] == 2  # within 1 point of the reference
    sel.reference = 0.75
    assert sel.pick(trials)["round"] == 0  # none as clean as the reference: the cleanest
