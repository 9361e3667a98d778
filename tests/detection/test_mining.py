"""Mining finds the right images, caps and oversamples as configured, never leaks val, and fine-tunes a real run."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from detection.cli import app
from detection.datasets import check_dataset, img2label_path, read_data_yaml
from detection.evaluate import EvalConfig, ImageOutcome
from detection.mining import (
    MineConfig,
    build_training_list,
    dedupe,
    find_hard_examples,
    materialise,
    mine,
    resolve_pool,
)
from detection.train import TrainConfig, TrainingInputError, load_run, train
from tests.fixtures.toy_scenes import make_toy_scenes


def _outcome(name, fp, fp_conf, missed_classes=()):
    return ImageOutcome(Path(name), fp + 1, fp, fp_conf, len(missed_classes) + 1, len(missed_classes),
                        tuple(missed_classes), (0,) * fp)


def test_hard_examples_are_ranked_by_how_confidently_wrong():
    outs = [_outcome("a", 1, 0.3), _outcome("b", 2, 1.5), _outcome("c", 0, 0.0, (3,)), _outcome("d", 1, 0.9, (0,))]
    fps, rare = find_hard_examples(outs, rare=[3])
    assert [o.image.name for o in fps] == ["b", "d", "a"]
    assert [o.image.name for o in rare] == ["c"]
    fps, _ = find_hard_examples(outs, rare=[3], min_false_positives=2)
    assert [o.image.name for o in fps] == ["b"]


def test_training_list_caps_background_share_and_oversamples_rare(tmp_path):
    train_imgs = [tmp_path / f"images/train/t{i}.jpg" for i in range(90)]
    rare_train = train_imgs[:5]
    rare_mined = [tmp_path / "images/pool/r0.jpg", tmp_path / "images/pool/r1.jpg"]
    fp_mined = [tmp_path / f"images/pool/f{i}.jpg" for i in range(50)] + [rare_mined[0]]
    cfg = MineConfig(background_share=0.1, rare_oversample=3)
    rows, used = build_training_list(train_imgs, rare_train, rare_mined, fp_mined, cfg, labelled_pool=True)
    imgs = [r[0] for r in rows]
    assert imgs.count(rare_train[0]) == 3 and imgs.count(rare_mined[1]) == 3 and imgs.count(train_imgs[-1]) == 1
    assert len(used) / len(rows) <= 0.1 + 1e-9 and len(used) == 11  # 0.1 / 0.9 * 106 others
    assert used == fp_mined[:11], "most confidently wrong first"
    assert rare_mined[0] not in used, "an image already added as rare is not added again as background"
    assert all(lab == img2label_path(img) for img, lab in rows)
    _, used_bg = build_training_list(train_imgs, [], [], fp_mined, cfg, labelled_pool=False)
    rows_bg, _ = build_training_list(train_imgs, [], [], fp_mined, cfg, labelled_pool=False)
    assert all(lab is None for img, lab in rows_bg if img in used_bg), "background pool images get empty labels"
    none, _ = build_training_list(train_imgs, [], [], fp_mined, MineConfig(background_share=0.0), True)
    assert len(none) == 90


def test_dedupe_drops_near_identical_frames(tmp_path):
    rng = np.random.default_rng(0)
    base = (rng.random((96, 160, 3)) * 255).astype(np.uint8)
    base = cv2.GaussianBlur(base, (15, 15), 5)
    other = np.ascontiguousarray(base[:, ::-1])
    noisy = np.clip(base.astype(int) + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
    paths = []
    for name, img in (("a", base), ("a_copy", base), ("a_noisy", noisy), ("b", other)):
        p = tmp_path / f"{name}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    kept, hashes = dedupe(paths, max_distance=4)
    assert [p.stem for p in kept] == ["a", "b"] and len(hashes) == 2
    kept2, _ = dedupe([paths[1]], max_distance=4, seen=hashes)
    assert kept2 == [], "an image mined in an earlier round is not mined again"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("mine")
    data = make_toy_scenes(root / "toy", n_train=16, n_val=6, width=160, height=96, seed=6)
    make_toy_scenes(root / "pool", n_train=10, n_val=1, width=160, height=96, seed=7)
    with open(data, "a") as f:
        f.write(f"pool: {root / 'pool' / 'images' / 'train'}\n")
    bg = root / "background"
    bg.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):  # unlabelled frames without objects: road and sky only
        img = np.full((96, 160, 3), 90, np.uint8)
        img[: 30 + i * 3] = (200, 170, 140)
        cv2.imwrite(str(bg / f"bg{i}.jpg"), np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8))
    return data, bg


def test_pool_resolution_and_leak_guard(scenes, tmp_path):
    data_yaml, bg = scenes
    data, _ = read_data_yaml(data_yaml)
    pool = resolve_pool(data, "pool")
    assert pool.labelled and len(pool.images) == 10
    with pytest.raises(TrainingInputError, match="--pool-is-background") as err:
        resolve_pool(data, str(bg))
    assert "no label file" in str(err.value)
    assert not resolve_pool(data, str(bg), pool_is_background=True).labelled
    with pytest.raises(TrainingInputError, match="it has: pool, train, val"):
        resolve_pool(data, "frames")
    weights = tmp_path / "m.pt"
    weights.write_bytes(b"")  # the guard runs before any model is loaded
    with pytest.raises(TrainingInputError, match="leaks"):
        mine(weights, data_yaml, MineConfig(), EvalConfig(split="val"), pool="val", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_materialised_set_is_a_valid_yolo_dataset(scenes, tmp_path):
    data_yaml, bg = scenes
    data, _ = read_data_yaml(data_yaml)
    pool = resolve_pool(data, "pool")
    rows = [(p, img2label_path(p)) for p in pool.images[:3]] * 2 + [(Path(next(bg.glob("*.jpg"))), None)]
    out = materialise(rows, tmp_path / "set", data.splits["val"], data.names)
    check = check_dataset(out, decode_images=False)
    assert check.ok, check.errors
    assert check.splits["train"].images == 7 and check.splits["train"].background >= 1
    spec = yaml.safe_load(out.read_text())
    assert spec["names"] == data.names and Path(spec["val"]) == data.splits["val"][0]


@pytest.mark.slow
def test_mine_cli_runs_a_round_and_reports_before_after(scenes, tmp_path):
    data_yaml, bg = scenes
    base = train(data_yaml, TrainConfig(epochs=2, imgsz=64, batch=8, seed=0), tmp_path / "base", log=lambda s: None)
    args = ["mine", "--model", str(base.run_dir), "--data", str(data_yaml), "--conf", "0.001", "--mine-conf", "0.001", "--epochs", "1",
            "--set", "mine.finetune.imgsz=64", "--set", "mine.finetune.batch=8", "--set", "evaluate.imgsz=64",
            "--rare-class", "cyclist", "--out", str(tmp_path / "mine"), "--seed", "0"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "before" in r.output and "round 1" in r.output
    m = json.loads((tmp_path / "mine" / "metrics.json").read_text())
    assert [row["model"] for row in m["table"]] == ["before", "round 1"]
    assert "fp_at_base_recall" in m["table"][1] and "fp_at_equal_recall_change" in m["summary"]
    assert m["rare_classes"] == ["cyclist"] and m["pool"] == "split pool"
    rnd = m["rounds"][0]
    assert rnd["pool_images"] == 10 and rnd["fp_share"] <= 0.1 + 1e-9
    assert rnd["train_list"] >= 16
    manifest, weights = load_run(tmp_path / "mine" / "round-1" / "model")
    assert manifest.kind == "detection-model" and weights.is_file()
    assert (tmp_path / "mine" / "report.md").read_text().count("|") > 10

    # a folder of unlabelled frames is refused unless declared background, then every detection is a negative
    r = CliRunner().invoke(app, ["mine", "--model", str(base.run_dir), "--data", str(data_yaml), "--pool", str(bg)])
    assert r.exit_code == 2 and "--pool-is-background" in r.output
