"""Synthetic pre-training + fine-tuning: target classes map onto generator classes, the scenes carry the
target's names, and the result is an ordinary run directory that records both stages and their CPU seconds."""

import json

import pytest
import yaml

from detection.train import TrainConfig, TrainingInputError, load_run
from detection.transfer import TransferConfig, auto_class_map, transfer
from tests.fixtures.toy_scenes import make_toy_scenes

HIGHWAY = {0: "bus", 1: "car", 2: "motorbike", 3: "person", 4: "truck"}


def test_class_map_follows_the_target_names():
    m = auto_class_map(HIGHWAY)
    assert m == {"bus": "bus", "car": "car", "motorbike": "motorbike", "cyclist": "motorbike",
                 "pedestrian": "person", "truck": "truck"}
    assert auto_class_map({0: "Traffic Light"}) == {"traffic_light": "Traffic Light"}
    assert auto_class_map(HIGHWAY, {"cyclist": "person"})["cyclist"] == "person"
    with pytest.raises(TrainingInputError, match="no synthetic counterpart|none of the target"):
        auto_class_map({0: "giraffe"})
    with pytest.raises(TrainingInputError, match="not a generator class"):
        auto_class_map(HIGHWAY, {"tram": "bus"})


def test_transfer_pretrains_on_mapped_scenes_then_finetunes(tmp_path):
    data = make_toy_scenes(tmp_path / "real", n_train=8, n_val=4, width=128, height=96, seed=2)
    tiny = dict(epochs=1, imgsz=64, batch=4, optimizer="AdamW", lr0=0.001, warmup_epochs=0.0, close_mosaic=0)
    cfg = TransferConfig(scenes=16, scene_width=128, scene_height=96, seed=1,
                         pretrain=TrainConfig(**tiny), finetune=TrainConfig(**tiny, freeze_backbone_epochs=-1))
    r = transfer(data, cfg, tmp_path / "run", log=lambda s: None)
    scenes = yaml.safe_load((tmp_path / "run" / "pretrain-stage" / "scenes" / "data.yaml").read_text())
    assert list(scenes["names"].values()) == ["car", "truck", "pedestrian", "cyclist", "traffic_light",
                                              "stop_sign"], "scenes carry the target's names in its order"
    manifest, weights = load_run(r.run_dir)
    assert weights.is_file() and manifest.extra["transfer"]["class_map"]["pedestrian"] == "pedestrian"
    assert manifest.config["model"].endswith("pretrain/weights/best.pt")
    assert r.cpu["scenes_s"] > 0 and r.cpu["pretrain_s"] > 0 and r.cpu["finetune_s"] > 0
    assert r.finetune_metrics["recipe"]["freeze_backbone_epochs"] == -1
    stage = json.loads((tmp_path / "run" / "pretrain-stage" / "stage.json").read_text())
    again = transfer(data, cfg, tmp_path / "run2", log=lambda s: None,
                     pretrain_dir=tmp_path / "run" / "pretrain-stage")
    assert again.cpu["pretrain_s"] == stage["cpu"]["pretrain_s"], "a shared pre-training is charged, not redone"


def test_budget_smaller_than_the_pretraining_is_refused(tmp_path):
    with pytest.raises(ValueError, match="pretrain_share"):
        TransferConfig(pretrain_share=1.0)
