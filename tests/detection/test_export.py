"""ONNX export: loads, matches PyTorch on the same letterboxed input, records its signature, writes the
trtexec command, INT8/FP16 variants run, and a tampered file is refused."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from detection.backends import OnnxBackend, TorchBackend, load_backend, preprocess, resolve_model
from detection.detections import Detections
from detection.export import ExportConfig
from detection.parity import mean_average_precision, raw_differences
from shared.runs import ManifestError
from tests.fixtures.deploy_assets import IMGSZ, assets, exported


def test_fp32_onnx_matches_pytorch_on_the_same_letterboxed_input():
    out = exported("fp32")
    ort = OnnxBackend(out / "model.onnx")
    ref = TorchBackend(assets()["weights"], imgsz=IMGSZ)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    x, _ = preprocess([img], ort.input_shape([img]))
    a, b = ref.raw(x), ort.raw(x)
    assert a.shape == b.shape == (1, 4 + 6, (IMGSZ // 8) ** 2 + (IMGSZ // 16) ** 2 + (IMGSZ // 32) ** 2)
    d = raw_differences(a, b, min_score=0.0)  # every anchor, not only confident ones
    assert d["max_box_diff_px"] < 1e-2 and d["max_score_diff"] < 1e-4


def test_manifest_records_signature_opset_parity_and_hashes():
    out = exported("fp32")
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "detection-onnx"
    sig = man["extra"]["models"]["model.onnx"]
    assert sig["inputs"] == [{"name": "images", "shape": [1, 3, IMGSZ, IMGSZ], "dtype": "FLOAT"}]
    assert sig["outputs"][0]["name"] == "output0" and sig["outputs"][0]["shape"][:2] == [1, 10]
    assert sig["opset"] == 17 and sig["precision"] == "fp32"
    parity = man["metrics"]["parity"]
    assert parity["fp32"]["within_tolerance"] is True
    assert abs(parity["fp32"]["map50_95"] - parity["pytorch"]["map50_95"]) <= 0.005
    assert set(man["files"]) == {"model.onnx", "trtexec.sh"}


def test_trtexec_command_file_has_shapes_and_precisions():
    text = (exported("fp32") / "trtexec.sh").read_text()
    assert f"trtexec --onnx=model.onnx --saveEngine=model.engine --shapes=images:1x3x{IMGSZ}x{IMGSZ}" in text
    assert "--saveEngine=model_fp16.engine" in text and " --fp16" in text
    dyn = (exported("fp32", dynamic=True) / "trtexec.sh").read_text()
    assert f"--minShapes=images:1x3x{IMGSZ // 2}x{IMGSZ // 2}" in dyn
    assert f"--maxShapes=images:1x3x{IMGSZ}x{IMGSZ}" in dyn


def test_int8_export_is_quantized_runnable_and_reports_map_change():
    out = exported("int8")
    m = onnx.load(str(out / "model_int8.onnx"))
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    be = load_backend(out)  # the export folder resolves to its default (int8) model
    assert be.precision == "int8"
    dets = be.predict([np.full((96, 160, 3), 114, np.uint8)] * 2)
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    parity = json.loads((out / "manifest.json").read_text())["metrics"]["parity"]
    assert "delta_map50_95" in parity["int8"]
    trt = (out / "trtexec.sh").read_text()
    assert "# trtexec --onnx=model_int8.onnx" in trt and "--int8" in trt  # CPU-form int8: commented, explained


def test_fp16_export_has_half_weights_and_float_io():
    out = exported("fp16")
    m = onnx.load(str(out / "model_fp16.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer)
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    be = OnnxBackend(out / "model_fp16.onnx")
    assert be.precision == "fp16" and len(be.predict([np.zeros((96, 160, 3), np.uint8)])) == 1


def test_tampered_onnx_is_refused(tmp_path):
    import shutil

    src = exported("fp32")
    copy = tmp_path / "exp"
    shutil.copytree(src, copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match="changed since the manifest"):
        resolve_model(copy / "model.onnx")


def test_rectangular_export_has_that_input_and_matches_pytorch():
    out = exported("fp32", height=32)  # 64 wide, 32 high: a wide video's shape, fewer pixels than a square
    sig = json.loads((out / "manifest.json").read_text())["extra"]["models"]["model.onnx"]
    assert sig["inputs"][0]["shape"] == [1, 3, 32, IMGSZ]
    assert f"--shapes=images:1x3x32x{IMGSZ}" in (out / "trtexec.sh").read_text()
    ort = OnnxBackend(out / "model.onnx")
    img = np.random.default_rng(2).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    assert ort.input_shape([img]) == (32, IMGSZ)
    ref = TorchBackend(assets()["weights"], imgsz=IMGSZ)
    x, _ = preprocess([img], (32, IMGSZ))
    assert raw_differences(ref.raw(x), ort.raw(x), min_score=0.0)["max_box_diff_px"] < 1e-2
    ort.conf = 0.001
    (dets,) = ort.predict([img])
    assert (dets.xyxy[:, [0, 2]] <= 160).all() and (dets.xyxy[:, [1, 3]] <= 96).all()


@pytest.mark.parametrize("kwargs, match", [({"imgsz": 100}, "multiple of 32"),
                                           ({"height": 40}, "height must be a positive multiple of 32"),
                                           ({"height": 64, "dynamic": True}, "dynamic export"),
                                           ({"precision": "int4"}, "precision"),
                                           ({"precision": "int8"}, "calibration"),
                                           ({"opset": 30}, "opset")])
def test_export_config_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExportConfig(**kwargs)


def test_map_is_one_for_perfect_predictions_and_zero_for_none():
    t = Detections(np.array([[0, 0, 10, 10], [20, 20, 40, 50]]), np.ones(2), np.array([0, 1]))
    p = Detections(t.xyxy, np.array([0.9, 0.8]), t.class_id)
    assert mean_average_precision([p], [t])["map50_95"] == pytest.approx(1.0, abs=0.006)  # 101-point trapezoid: 0.995
    assert mean_average_precision([Detections.empty()], [t])["map50"] == 0.0


def test_export_cli_runs_and_prints_parity(tmp_path):
    from typer.testing import CliRunner

    from detection.cli import app

    a = assets()
    r = CliRunner().invoke(app, ["export", "-m", str(a["weights"]), "-o", str(tmp_path / "e"), "--imgsz",
                                 str(IMGSZ), "--data", str(a["data"]), "--parity-images", "3"])
    assert r.exit_code == 0, r.output
    assert "parity on 3 validation images" in r.output and (tmp_path / "e" / "model.onnx").is_file()
    r = CliRunner().invoke(app, ["export", "-m", str(tmp_path / "missing.pt")])
    assert r.exit_code == 2 and "does not exist" in r.output
