"""Every backend answers `predict(images) -> list[Detections]` with boxes in the original image's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from detection.backends import (
    Letterbox,
    available_providers,
    decode,
    letterbox,
    load_backend,
    preprocess,
    time_backend,
)
from detection.detections import Detections
from tests.fixtures.deploy_assets import IMGSZ, assets, exported


def _frames(n=3):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 255, (96, 160, 3), dtype=np.uint8) for _ in range(n)]


def test_letterbox_keeps_aspect_and_decode_maps_boxes_back():
    img = np.zeros((100, 200, 3), np.uint8)
    out, lb = letterbox(img, (64, 64))
    assert out.shape == (64, 64, 3) and lb.ratio == pytest.approx(0.32) and lb.pad == (0, 16)
    # one anchor: a box centred at (32, 32) of 16x8 input pixels, class 1 score 0.9
    raw = np.zeros((1, 4 + 3, 2), np.float32)
    raw[0, :4, 0] = [32, 32, 16, 8]
    raw[0, 5, 0] = 0.9
    (dets,) = decode(raw, [lb], conf=0.5)
    assert len(dets) == 1 and dets.class_id[0] == 1
    np.testing.assert_allclose(dets.xyxy[0], [75, 37.5, 125, 62.5], atol=1e-4)  # (32±8-0)/0.32, (32±4-16)/0.32


def test_decode_runs_class_aware_nms():
    lb = Letterbox(1.0, (0, 0), (64, 64))
    raw = np.zeros((1, 6, 3), np.float32)
    raw[0, :4] = np.array([[20, 20, 10, 10], [21, 20, 10, 10], [20, 20, 10, 10]]).T
    raw[0, 4, :2] = [0.9, 0.8]  # two overlapping class-0 boxes -> one survives
    raw[0, 5, 2] = 0.7          # same place, class 1 -> kept
    (dets,) = decode(raw, [lb], conf=0.25, iou=0.5)
    assert sorted(dets.class_id.tolist()) == [0, 1]


def test_all_backends_return_one_detections_per_image():
    w = assets()["weights"]
    images = _frames(3)
    for be in (load_backend(w, "pytorch", imgsz=IMGSZ, batch=2, conf=0.01),
               load_backend(w, "ultralytics", imgsz=IMGSZ, batch=2, conf=0.01),
               load_backend(exported("fp32") / "model.onnx", conf=0.01)):
        dets = be.predict(images)
        assert len(dets) == 3 and all(type(d) is Detections for d in dets), be.name
        for d in dets:
            assert d.xyxy.dtype == np.float32 and d.class_id.dtype == np.int64
            assert (d.xyxy[:, [0, 2]] <= 160).all() and (d.xyxy[:, [1, 3]] <= 96).all()
        assert set(be.describe()) >= {"backend", "precision", "imgsz", "batch"}


def test_dynamic_onnx_batches_give_the_same_detections_as_single_images():
    path = exported("fp32", dynamic=True) / "model.onnx"
    one = load_backend(path, batch=1, conf=0.01).predict(_frames(3))
    many = load_backend(path, batch=3, conf=0.01).predict(_frames(3))
    for a, b in zip(one, many, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)


def test_pytorch_and_onnx_agree_on_the_same_input():
    shape = (IMGSZ, IMGSZ)
    torch_be = load_backend(assets()["weights"], "pytorch", imgsz=IMGSZ)
    onnx_be = load_backend(exported("fp32") / "model.onnx")
    x, _ = preprocess(_frames(1), shape)
    np.testing.assert_allclose(torch_be.raw(x), onnx_be.raw(x), atol=1e-2)


def test_time_backend_reports_latency_and_throughput():
    r = time_backend(load_backend(exported("fp32") / "model.onnx"), _frames(2), repeats=2)
    assert r["latency_ms_median"] > 0 and r["latency_ms_p90"] >= r["latency_ms_median"] and r["images_per_s"] > 0


def test_providers_and_bad_inputs_fail_clearly(tmp_path):
    assert available_providers("cpu") == ["CPUExecutionProvider"]
    assert available_providers()[-1] == "CPUExecutionProvider"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ValueError, match="cuda execution provider requested"):
            available_providers("cuda")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backend(tmp_path / "nope.pt")
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported model file"):
        load_backend(tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="needs an .onnx model"):
        load_backend(assets()["weights"], "onnxruntime")
    with pytest.raises(ValueError, match="dynamic export"):
        load_backend(exported("fp32") / "model.onnx", imgsz=128)
