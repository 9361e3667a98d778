"""FraudModel: fit/score/save/load round trip, chunk invariance, tamper detection, clear data errors."""

import json

import numpy as np
import pandas as pd
import pytest

from fraud.data.frame import DataError
from fraud.features.graph import GraphConfig
from fraud.models.autoencoder import AEConfig
from fraud.models.booster import BoosterConfig
from fraud.models.gnn import GNNConfig
from fraud.stack.config import FraudConfig
from fraud.stack.evaluate import temporal_split
from fraud.stack.model import FraudModel
from shared.runs import ManifestError
from tests.fixtures.fraud_frames import planted


def small_cfg(**kw) -> FraudConfig:
    return FraudConfig(gnn=GNNConfig(hidden=16, embed=4, epochs=2), autoencoder=AEConfig(epochs=3),
                       booster=BoosterConfig(n_estimators=60), graph=GraphConfig(every="2h", window="2d"), **kw)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    df = planted(n=5000, days=20, seed=0)
    split = temporal_split(df, 0.6, 0.2)
    model = FraudModel(small_cfg()).fit(split.train, split.val, progress=False)
    run = model.save(tmp_path_factory.mktemp("model") / "m")
    return model, split, run


def test_save_then_load_gives_identical_scores_and_no_pickle(fitted):
    import torch

    model, split, run = fitted
    a = model.score(split.test, history="stored", explain=True)
    loaded = FraudModel.load(run)
    b = loaded.score(split.test, history="stored", explain=True)
    pd.testing.assert_frame_equal(a, b)
    assert {"booster.ubj", "gnn.pt", "autoencoder.pt", "history_tail.parquet", "manifest.json"} <= {
        p.name for p in run.iterdir()}
    torch.load(run / "gnn.pt", weights_only=True)  # plain tensors, no code
    assert set(a.columns[:3]) == {"transaction_id", "probability", "flag"}
    assert a["flag"].equals(a["probability"] > model.threshold_)


def test_scoring_in_chunks_equals_scoring_the_whole_file(fitted):
    model, split, _ = fitted
    whole = model.score(split.test, history="stored")
    stream = model.stream()
    cuts = [0, 1, 333, 334, 700, len(split.test)]
    parts = [stream.score(split.test.iloc[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    with pytest.raises(DataError, match="event order"):
        stream.score(split.test.iloc[:5])


def test_the_model_beats_chance_on_held_out_time(fitted):
    from sklearn.metrics import average_precision_score

    model, split, _ = fitted
    s = model.score(split.test, history="stored")
    assert average_precision_score(split.test["label"], s["probability"]) > 0.5


def test_tampered_or_incomplete_model_directory_is_refused(fitted, tmp_path):
    import shutil

    _, _, run = fitted
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["threshold"] = 0.0
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ManifestError, match="model.json changed"):
        FraudModel.load(bad)
    (bad / "gnn.pt").unlink()
    with pytest.raises(ManifestError, match="missing gnn.pt"):
        FraudModel.load(bad)


def test_overlapping_data_needs_its_own_history(fitted):
    model, split, _ = fitted
    with pytest.raises(DataError, match="history='none'"):
        model.score(split.val, history="stored")
    own = model.score(pd.concat([split.val, split.test]), history="auto")
    assert len(own) == len(split.val) + len(split.test)


@pytest.mark.parametrize("problem, match", [("nolabel", "no 'label' column"), ("oneclass", "one class only"),
                                            ("small", "only 50 rows")])
def test_unusable_training_data_gets_a_clear_error(problem, match):
    df = planted(n=3000, days=10, seed=4)
    split = temporal_split(df, 0.6, 0.2)
    train = split.train
    if problem == "nolabel":
        train = train.drop(columns="label")
    elif problem == "oneclass":
        train = train.assign(label=np.int8(0))
    else:
        train = train.iloc[:50]
    with pytest.raises(DataError, match=match):
        FraudModel(small_cfg()).fit(train, split.val, progress=False)


@pytest.mark.slow
def test_same_seed_same_scores_and_parts_can_be_switched_off():
    from fraud.stack.config import PartsConfig

    df = planted(n=3000, days=12, seed=5)
    split = temporal_split(df, 0.6, 0.2)
    a = FraudModel(small_cfg()).fit(split.train, split.val, progress=False).score(split.test)
    b = FraudModel(small_cfg()).fit(split.train, split.val, progress=False).score(split.test)
    pd.testing.assert_frame_equal(a, b)
    raw = FraudModel(small_cfg(parts=PartsConfig(neighbour=False, autoencoder=False, gnn=False)))
    raw.fit(split.train, split.val, progress=False)
    assert not any(n.startswith(("gnn_", "ae_", "src_in_")) for n in raw.feature_names_)


def test_labels_of_scored_rows_never_change_their_scores(fitted):
    model, split, _ = fitted
    a = model.score(split.test, history="stored")
    flipped = split.test.assign(label=(1 - split.test["label"]).astype("int8"), typology="x")
    pd.testing.assert_frame_equal(a, model.score(flipped, history="stored"))
    pd.testing.assert_frame_equal(a, model.score(split.test.drop(columns="label"), history="stored"))


def test_auto_cadence_is_chosen_from_training_density_and_kept_through_save_and_load(tmp_path):
    df = planted(n=5000, days=20, seed=6)  # ~10 training rows an hour
    split = temporal_split(df, 0.6, 0.2)
    cfg = small_cfg()
    cfg.graph = GraphConfig(every="auto", window="2d", auto_rows=40)
    model = FraudModel(cfg).fit(split.train, split.val, progress=False)
    assert model.cfg.graph.every == "6h"  # the finest cadence with >= 40 training rows per snapshot
    assert cfg.graph.every == "auto"  # the caller's config is not changed
    run = model.save(tmp_path / "m")
    loaded = FraudModel.load(run)
    assert loaded.cfg.graph.every == "6h"
    whole = model.score(split.test, history="stored")
    pd.testing.assert_frame_equal(loaded.score(split.test, history="stored"), whole)
    stream = loaded.stream()
    cuts = [0, 7, 400, len(split.test)]
    parts = [stream.score(split.test.iloc[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
