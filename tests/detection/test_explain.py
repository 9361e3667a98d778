"""EigenCAM heatmaps: the image's size, finite, in [0, 1], following the object; written blended with the
detections; the false-positive mode writes only images the model got wrong, worst first."""

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from detection.cli import app
from detection.explain import ExplainConfig, Explainer, explain_images
from shared.offline import yolo
from tests.fixtures.toy_scenes import make_toy_scenes


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    # an untrained yolo11n: EigenCAM follows whatever the activations do, trained or not, and this costs no epoch
    path = tmp_path_factory.mktemp("model") / "fresh.pt"
    torch.manual_seed(0)
    yolo().YOLO("yolo11n.yaml").save(str(path))
    return path


def _scene(x: int, size=(160, 160)) -> np.ndarray:
    img = np.full((*size, 3), 60, np.uint8)
    cv2.rectangle(img, (x, 60), (x + 40, 100), (255, 255, 255), -1)  # a 40 x 40 px object at x
    return img


def test_heatmap_has_the_image_size_is_finite_and_moves_with_the_object(weights):
    ex = Explainer(weights, ExplainConfig(imgsz=160))
    assert ex.layers == [16, 19, 22], "default layers are the Detect head's inputs"
    for x in (12, 108):
        heat, _ = ex.explain(_scene(x))
        assert heat.shape == (160, 160) and heat.dtype == np.float32
        assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
        inside = heat[60:100, x:x + 40]
        outside = (heat.sum() - inside.sum()) / (heat.size - inside.size)
        assert inside.mean() > 5 * outside, (x, inside.mean(), outside)
        centre = float((heat.sum(0) * np.arange(160)).sum() / heat.sum())
        assert abs(centre - (x + 20)) < 15, f"heat centre {centre:.0f} px, object centre {x + 20} px"
    wide, _ = ex.explain(np.zeros((90, 200, 3), np.uint8) + 60)
    assert wide.shape == (90, 200), "a non-square image gets a map of its own size (letterbox undone)"


def test_explain_writes_blended_images_and_a_summary(weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, x in enumerate((8, 60)):
        cv2.imwrite(str(src / f"f{i}.png"), _scene(x, (120, 160)))
    r = CliRunner().invoke(app, ["explain", "--model", str(weights), "--source", str(src), "--out",
                                 str(tmp_path / "out"), "--imgsz", "128"])
    assert r.exit_code == 0, r.output
    written = sorted((tmp_path / "out").glob("*.jpg"))
    assert [p.stem for p in written] == ["f0", "f1"]
    assert cv2.imread(str(written[0])).shape == (120, 160, 3)
    summary = json.loads((tmp_path / "out" / "explain.json").read_text())
    assert summary["layers"] == [16, 19, 22] and summary["images_written"] == 2
    bad = CliRunner().invoke(app, ["explain", "--model", str(weights), "--source", str(tmp_path / "none"),
                                   "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_false_positive_mode_keeps_only_wrong_images_worst_first(weights, tmp_path):
    data = make_toy_scenes(tmp_path / "toy", n_train=2, n_val=4, width=128, height=96, seed=3)
    images = sorted((data.parent / "images" / "val").glob("*.jpg"))
    # an untrained model scores everything near its prior: at this threshold all its boxes are false positives
    recs = explain_images(weights, images, tmp_path / "fp", ExplainConfig(imgsz=128, conf=0.0001),
                          false_positives=True, log=lambda s: None)
    assert recs and all(r["false_positives"] > 0 for r in recs)
    conf = [r["fp_confidence"] for r in recs]
    assert conf == sorted(conf, reverse=True)
    assert sorted(p.name[:4] for p in (tmp_path / "fp").glob("*.jpg"))[0] == "000_"
