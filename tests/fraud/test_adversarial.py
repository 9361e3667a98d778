"""Defences: adversarial training is reproducible by seed, saves/loads like any model, robust options hold."""

import numpy as np
import pandas as pd
import pytest
from test_pipeline import small_cfg

from fraud.robust.config import AdversarialConfig
from fraud.robust.defence import fit_adversarial
from fraud.stack.evaluate import temporal_split
from fraud.stack.model import FraudModel
from tests.fixtures.fraud_frames import planted

ACFG = dict(candidates=2, rounds=2, val_candidates=1, gnn_pgd_steps=2, drop_features=["weekday"])


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
    from fraud.models.booster import predict

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


def test_robust_features_only_in_the_defended_stack(adv, split):
    from fraud.robust.defence import defended_config

    cfg = small_cfg(seed=3)
    assert "pair_age" in adv.feature_names_ and adv.cfg.features.robust
    assert not cfg.features.robust  # fit_adversarial works on a copy; the standard config is unchanged
    off = defended_config(cfg, AdversarialConfig(robust_features=False))
    assert off is cfg
    nb = defended_config(cfg, AdversarialConfig(neighbour_windows=["7d"]))
    assert "7d" in nb.features.neighbour_windows and "7d" not in cfg.features.neighbour_windows


def test_fit_uses_the_gnn_trainer_hook_and_patches_nothing(split):
    import fraud.models.gnn_training as gnn
    from fraud.robust.defence import gnn_trainer
    from fraud.robust.threat import preset

    before = gnn.fit_gnn
    calls = []
    trainer = gnn_trainer(AdversarialConfig(**ACFG), preset("full"))
    assert trainer is not None and gnn_trainer(AdversarialConfig(gnn_adversarial=False), preset("full")) is None

    def spy(*args, **kw):
        calls.append(len(args[2]))
        return trainer(*args, **kw)

    FraudModel(small_cfg(seed=3)).fit(split.train, split.val, progress=False, gnn_trainer=spy)
    assert calls and calls[0] > 0  # the hook trained the GNN on the base rows' labels
    assert gnn.fit_gnn is before  # no module attribute was swapped


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


