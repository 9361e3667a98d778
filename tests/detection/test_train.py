"""Training refuses bad input before any work, runs offline, and writes a run directory others can trust."""

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from detection.backends import resolve_model
from detection.cli import app
from detection.train import (
    TrainConfig,
    TrainingInputError,
    check_training_data,
    load_run,
    resolve_model_source,
    train,
)
from shared.runs import ManifestError
from tests.fixtures.toy_scenes import make_toy_scenes


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_scenes(tmp_path_factory.mktemp("toy"), n_train=12, n_val=4, width=160, height=96, seed=2)


def test_model_names_resolve_without_downloads(tmp_path):
    assert resolve_model_source("yolo11n.yaml") == ("yolo11n.yaml", "detect")
    assert resolve_model_source("yolo11n-seg.yaml") == ("yolo11n-seg.yaml", "segment")
    with pytest.raises(TrainingInputError, match="download") as err:
        resolve_model_source("yolo11n.pt")
    assert "local" in str(err.value) and "yolo11n.yaml" in str(err.value)
    with pytest.raises(TrainingInputError, match="unknown model"):
        resolve_model_source("yolo99z.yaml")
    with pytest.raises(TrainingInputError, match="pose"):
        resolve_model_source("yolo11n-pose.yaml")
    with pytest.raises(TrainingInputError, match="unknown model"):
        resolve_model_source("resnet50")
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingInputError, match="not a readable"):
        resolve_model_source(bad)


def test_bad_data_fails_before_training(toy, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_training_data(tmp_path / "nope.yaml")
    broken = tmp_path / "data.yaml"
    broken.write_text("path: /no/such/folder\ntrain: images/train\nval: images/val\nnames: [car]\n")
    with pytest.raises(TrainingInputError, match="cannot be trained on") as err:
        check_training_data(broken)
    assert "does not exist" in str(err.value) and "check-data" in str(err.value)
    with pytest.raises(TrainingInputError, match="polygon"):
        check_training_data(toy, task="segment")  # toy scenes have boxes only


def test_config_is_checked():
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainConfig(imgsz=100)
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        TrainConfig(preset="sunny")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_cli_errors_are_one_clear_line(toy, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--data", str(toy), "--model", "yolo11n.pt", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "download" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "missing.yaml does not exist" in r.output
    r = runner.invoke(app, ["train", "--data", str(toy), "--set", "train.epoch=3"])
    assert r.exit_code == 2 and "did you mean 'train.epochs'" in r.output
    assert not (tmp_path / "r").exists(), "nothing may be written before the input is accepted"


def _state(weights):
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    return (ckpt.get("ema") or ckpt["model"]).float().state_dict()


@pytest.mark.slow
def test_train_writes_a_verified_reproducible_run_dir(toy, tmp_path):
    cfg = TrainConfig(epochs=1, imgsz=64, batch=8, seed=5)
    a = train(toy, cfg, tmp_path / "a", log=lambda s: None)
    assert sorted(p.name for p in a.run_dir.iterdir()) == ["args.yaml", "config.yaml", "manifest.json",
                                                           "results.csv", "weights"]
    man = json.loads((a.run_dir / "manifest.json").read_text())
    assert man["kind"] == "detection-model" and man["config"]["seed"] == 5 and man["extra"]["task"] == "detect"
    assert man["data"]["splits"]["train"]["images"] == 12 and len(man["data"]["data_yaml_sha256"]) == 64
    assert man["metrics"]["train_images_per_s"] > 0 and man["metrics"]["train_images"] == 12
    assert {"box_map50", "box_map50_95"} <= set(man["metrics"])
    assert man["extra"]["augment"]["flipud"] == 0.0
    assert load_run(a.run_dir)[1] == a.weights and resolve_model(a.run_dir) == a.weights

    b = train(toy, cfg, tmp_path / "b", log=lambda s: None)
    sa, sb = _state(a.weights), _state(b.weights)
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "same seed must give the same weights"

    # a changed best.pt is refused by everyone who loads the run through its manifest
    with open(a.weights, "ab") as f:
        f.write(b"x")
    with pytest.raises(ManifestError, match="changed"):
        load_run(a.run_dir)
    with pytest.raises(ManifestError):
        resolve_model(a.run_dir)


def _polygon_copy(data_yaml, dest):
    """The toy set with every box written as a 4-point polygon (what a -seg model trains on)."""
    src = data_yaml.parent
    shutil.copytree(src, dest)
    for label in (dest / "labels").rglob("*.txt"):
        lines = []
        for line in label.read_text().splitlines():
            c, cx, cy, w, h = line.split()
            cx, cy, w, h = map(float, (cx, cy, w, h))
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            lines.append(f"{c} {x1:.5f} {y1:.5f} {x2:.5f} {y1:.5f} {x2:.5f} {y2:.5f} {x1:.5f} {y2:.5f}")
        label.write_text("\n".join(lines) + ("\n" if lines else ""))
    (dest / "data.yaml").write_text((src / "data.yaml").read_text().replace(str(src.resolve()), str(dest.resolve())))
    return dest / "data.yaml"


@pytest.mark.slow
def test_segmentation_model_trains_boxes_and_masks_jointly(toy, tmp_path):
    seg = _polygon_copy(toy, tmp_path / "seg")
    r = CliRunner().invoke(app, ["train", "--data", str(seg), "--model", "yolo11n-seg.yaml", "--preset", "road-seg",
                                 "--epochs", "1", "--imgsz", "64", "--batch", "8", "--out", str(tmp_path / "run"),
                                 "--seed", "0"])
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["extra"]["task"] == "segment" and man["extra"]["augment"]["copy_paste"] > 0
    assert {"box_map50", "box_map50_95", "mask_map50", "mask_map50_95"} <= set(man["metrics"])


def test_quiet_train_prints_one_line_and_logs_ultralytics_to_the_run_directory(toy, tmp_path):
    """`--quiet`: Ultralytics' banner, argument dump and model table go to <out>/log.txt, not the terminal."""
    out = tmp_path / "quiet"
    r = CliRunner().invoke(app, ["train", "--data", str(toy), "--epochs", "1", "--imgsz", "64", "--batch", "4",
                                 "--out", str(out), "--seed", "0", "--quiet"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"detector -> {out.resolve()}: val box mAP50 "), r.output
    log = (out / "log.txt").read_text()
    for chatter in ("Ultralytics", "engine/trainer", "params", "training yolo11n.yaml"):
        assert chatter in log, chatter
        assert chatter not in r.output, chatter
    assert load_run(out)[0].metrics["epochs"] == 1  # the log file is beside the run, not in its manifest
