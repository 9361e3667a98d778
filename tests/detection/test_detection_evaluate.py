"""Evaluation counts false positives, misses and confusions the way a user reads them, and writes its report."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from detection.cli import app
from detection.detections import Detections
from detection.evaluate import (
    EvalConfig,
    confusion_matrix,
    evaluate,
    fp_recall_curve,
    load_truth,
    match_images,
    operating_point,
    rare_class_ids,
)
from detection.train import TrainConfig, train
from tests.fixtures.toy_scenes import make_toy_scenes


def _dets(boxes, conf, cls):
    return Detections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(conf, float), np.asarray(cls))


def test_operating_point_counts_false_positives_and_recall(tmp_path):
    truth = _dets([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [1, 1, 1], [0, 1, 3])
    pred = _dets([[0, 0, 10, 10],      # correct car
                  [1, 1, 10, 10],      # duplicate of the car: a false positive (truth used once)
                  [20, 20, 30, 30],    # right place, wrong class (pedestrian for a truck): false positive
                  [70, 70, 80, 80]],   # nothing there: false positive
                 [0.9, 0.8, 0.7, 0.6], [0, 0, 2, 5])
    empty_img = Detections.empty()
    out = match_images([tmp_path / "a.jpg", tmp_path / "b.jpg"], [pred, _dets([[5, 5, 9, 9]], [0.5], [4])],
                       [truth, empty_img])
    assert [o.false_positives for o in out] == [3, 1]
    assert out[0].missed_classes == (1, 3) and out[1].missed == 0
    overall, per = operating_point(out, nc=6)
    assert overall["fp_per_image"] == pytest.approx(2.0)
    assert overall["recall"] == pytest.approx(1 / 3) and overall["precision"] == pytest.approx(1 / 5)
    assert per[3]["missed"] == 1 and per[5]["fp"] == 1 and per[0]["fp"] == 1


def test_confusion_matrix_shows_class_mixups_and_background():
    truth = _dets([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1], [0, 1])
    pred = _dets([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], [0.9, 0.8, 0.7], [0, 2, 1])
    cm = confusion_matrix([pred, Detections.empty()], [truth, _dets([[1, 1, 5, 5]], [1], [3])], nc=4)
    assert cm.shape == (5, 5)
    assert cm[0, 0] == 1          # car seen as car
    assert cm[2, 1] == 1          # truck predicted as class 2
    assert cm[1, 4] == 1          # a prediction on background
    assert cm[4, 3] == 1          # a missed class-3 object
    assert cm.sum() == 4


def test_fp_recall_curve_reads_false_positives_at_a_recall():
    truth = _dets([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1], [0, 0])
    pred = _dets([[0, 0, 10, 10], [50, 50, 60, 60], [70, 70, 80, 80], [20, 20, 30, 30]], [0.9, 0.8, 0.6, 0.3],
                 [0, 0, 0, 0])
    curve = fp_recall_curve([pred, Detections.empty()], [truth, Detections.empty()])
    assert curve.recall.tolist() == [0.5, 0.5, 0.5, 1.0]
    assert curve.fp_per_image.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert curve.at_recall(0.5) == {"conf": pytest.approx(0.9), "recall": 0.5, "fp_per_image": 0.0}
    assert curve.at_recall(1.0)["fp_per_image"] == 1.0 and curve.at_recall(1.0)["conf"] == pytest.approx(0.3)
    # the operating point at a threshold is the curve's point at that threshold
    out = match_images(["a", "b"], [pred[pred.confidence >= 0.6], Detections.empty()], [truth, Detections.empty()])
    overall, _ = operating_point(out, nc=1)
    assert overall["fp_per_image"] == curve.fp_per_image[2] and overall["recall"] == curve.recall[2]


def test_rare_class_choice():
    names = {0: "car", 1: "truck", 2: "cyclist"}
    assert rare_class_ids(names, [], {0: 50, 1: 9, 2: 3}) == [2]
    assert rare_class_ids(names, ["truck"], None) == [1]
    with pytest.raises(ValueError, match="bike.*car, truck, cyclist"):
        rare_class_ids(names, ["bike"], None)


def test_load_truth_converts_labels_to_pixels(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    img = tmp_path / "images" / "x.jpg"
    (tmp_path / "labels" / "x.txt").write_text("3 0.5 0.5 0.2 0.4\n")
    t = load_truth(img, size=(200, 100))
    assert t.class_id.tolist() == [3] and np.allclose(t.xyxy, [[80, 30, 120, 70]])
    assert len(load_truth(tmp_path / "images" / "unlabelled.jpg", size=(10, 10))) == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    data = make_toy_scenes(root / "toy", n_train=16, n_val=6, width=160, height=96, seed=4)
    run = train(data, TrainConfig(epochs=2, imgsz=64, batch=8, seed=0), root / "run", log=lambda s: None)
    return data, run


@pytest.mark.slow
def test_evaluate_writes_a_consistent_report(trained, tmp_path):
    data, run = trained
    res = evaluate(run.run_dir, data, EvalConfig(conf=0.001, imgsz=64, rare_classes=["cyclist"]), tmp_path / "ev",
                   log=lambda s: None)
    files = {p.name for p in (tmp_path / "ev").iterdir()}
    assert {"metrics.json", "report.md", "per_image.csv", "confusion_matrix.png", "fp_recall_curve.csv"} <= files
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["images"] == 6 and set(m["per_class"]) == {"car", "truck", "pedestrian", "cyclist", "traffic_light",
                                                          "stop_sign"}
    with open(tmp_path / "ev" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert m["fp_per_image"] == pytest.approx(sum(int(r["false_positives"]) for r in rows) / 6)
    assert m["false_positives"] + int(res.confusion[:-1, :-1].trace()) <= m["predictions"] + 1e-9
    assert res.confusion[:, :-1].sum() == m["truths"], "every truth object is either matched or missed"
    assert m["rare_classes"] == ["cyclist"] and 0 <= m["box_map50"] <= 1
    # conf 0.001 is below the curve's floor: the curve ends exactly at the operating point
    assert res.curve.fp_per_image[-1] == pytest.approx(m["fp_per_image"])
    assert res.curve.recall[-1] == pytest.approx(m["recall"])
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "| cyclist |" in report and "fp_per_image" in report


@pytest.mark.slow
def test_evaluate_cli_and_bad_inputs(trained, tmp_path):
    data, run = trained
    r = CliRunner().invoke(app, ["evaluate", "--model", str(run.run_dir), "--data", str(data), "--imgsz", "64",
                                 "--conf", "0.01", "--out", str(tmp_path / "e"), "--seed", "0"])
    assert r.exit_code == 0, r.output
    assert "ap50" in r.output and (tmp_path / "e" / "report.md").is_file()
    r = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "nothing"), "--data", str(data)])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(app, ["evaluate", "--model", str(run.run_dir), "--data", str(data), "--conf", "1.5"])
    assert r.exit_code == 2 and "conf" in r.output
