"""Export a trained detector to ONNX that TensorRT 8.6-10 parses, plus FP16 and INT8 variants, with proof.

    result = export_model("runs/det/weights/best.pt", "export/", ExportConfig(imgsz=320, precision="int8",
                          data="scenes/data.yaml"))

writes into `export/`:
- `model.onnx`: FP32, opset 17 (TensorRT 8.6 parses opsets <= 17, TensorRT 10 newer ones too), simplified with
  onnxslim, static [batch, 3, imgsz, imgsz] input (or [batch, 3, height, imgsz] with `height`: the shape
  Ultralytics' own rectangular predict uses for wide video) or dynamic batch/height/width with `dynamic=True`
  (slower on ONNX Runtime CPU: the head then rebuilds its anchor grid on every call);
- `model_fp16.onnx` (precision fp16): weights and activations in FP16, FP32 input/output (for GPUs);
- `model_int8.onnx` (precision int8): static QDQ quantization by ONNX Runtime, calibrated on `calib_images`
  training images letterboxed exactly as at inference; the box/score decoding at the end of the head stays
  FP32 (one INT8 scale cannot span box pixels and class probabilities). `int8_target="cpu"` (default) gives
  U8S8 for ONNX Runtime CPU; `"tensorrt"` gives symmetric S8S8, the form TensorRT's explicit quantization takes;
- `trtexec.sh`: the exact TensorRT command per model (shapes, --fp16 / --int8), or `model*.engine` when
  `trtexec` and a GPU are present;
- `manifest.json` (kind `detection-onnx`): input/output names, shapes and dtypes per model, precision, opset,
  parity metrics, SHA-256 of every file; `video` and `bench` re-hash before use.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shared.runs import sha256_file, write_manifest

PRECISIONS = ("fp32", "fp16", "int8")
TENSORRT_OPSET = 17


@dataclass
class ExportConfig:
    """What to export. `imgsz` is the input width (static; height too unless `height` is set) or the longest
    side (dynamic)."""

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of a static input."""
        return (self.height or self.imgsz, self.imgsz)

    imgsz: int = 640
    height: int = 0             # static input height when it differs from imgsz (rectangular, e.g. 320x192 for
                                # 16:9 video: 40% fewer pixels than square); 0 = square imgsz x imgsz
    dynamic: bool = False
    batch: int = 1              # fixed batch of a static model; the max batch in trtexec shapes when dynamic
    opset: int = TENSORRT_OPSET
    simplify: bool = True
    precision: str = "fp32"     # fp32 | fp16 | int8 (fp32 is always written too: parity reference, TRT input)
    calib_images: int = 64      # INT8 calibration images drawn from the data set's train split
    int8_target: str = "cpu"    # cpu: U8S8 Q/DQ, fast on ONNX Runtime CPU; tensorrt: symmetric S8S8 Q/DQ
    data: str | None = None     # data.yaml: calibration (int8) and parity images
    parity_images: int = 50     # validation images for the parity check (0 skips it)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.imgsz % 32 or self.imgsz < 32:
            raise ValueError(f"imgsz must be a positive multiple of 32 (the network stride), got {self.imgsz}")
        if self.height and (self.height % 32 or self.height < 32):
            raise ValueError(f"height must be a positive multiple of 32 (the network stride), got {self.height}")
        if self.height and self.dynamic:
            raise ValueError("height fixes a rectangular static input; a dynamic export takes any height already")
        if self.precision == "int8" and not self.data:
            raise ValueError("INT8 needs calibration images: pass --data data.yaml (its train split is used)")
        if self.int8_target not in ("cpu", "tensorrt"):
            raise ValueError(f"int8_target must be cpu or tensorrt, got {self.int8_target!r}")
        if not 9 <= self.opset <= 20:
            raise ValueError(f"opset {self.opset} is outside 9..20; TensorRT 8.6 parses up to 17")


@dataclass
class ExportResult:
    out_dir: Path
    models: dict[str, Path]          # precision -> ONNX file
    parity: dict
    trtexec: Path
    engines: dict[str, Path]


def export_fp32(weights: Path, out_dir: Path, cfg: ExportConfig) -> Path:
    """Ultralytics' ONNX export (opset, simplify, static/dynamic) copied to `out_dir/model.onnx`."""
    from shared.offline import yolo

    tmp = out_dir / "_ultralytics"
    tmp.mkdir(parents=True, exist_ok=True)
    local = tmp / "model.pt"
    shutil.copyfile(weights, local)  # Ultralytics writes the .onnx beside the .pt; keep it out of the run dir
    model = yolo().YOLO(str(local))
    f = model.export(format="onnx", imgsz=list(cfg.input_hw) if cfg.height else cfg.imgsz, dynamic=cfg.dynamic,
                     batch=cfg.batch, opset=cfg.opset, simplify=cfg.simplify, device="cpu", verbose=False)
    dest = out_dir / "model.onnx"
    shutil.move(f, dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def convert_fp16(src: Path, dest: Path) -> Path:
    """FP16 weights/activations, FP32 graph input and output (so callers feed the same tensors)."""
    import onnx
    from onnxruntime.transformers import float16

    model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dest))
    return dest


def calibration_batches(data_yaml: str | Path, n: int, shape: tuple[int, int], seed: int = 0,
                        split: str = "train") -> list[np.ndarray]:
    """`n` images of the data set, letterboxed to `shape` like at inference: float32 [1, 3, h, w] each."""
    from detection.backends import preprocess
    from detection.parity import load_split

    _, images, _ = load_split(data_yaml, split, n, seed)
    return [preprocess([img], shape)[0] for img in images]


def head_decode_nodes(model) -> list[str]:
    """Nodes of the detection head's decoding (DFL, anchors, concat, sigmoid): kept FP32 under INT8.

    The head is the last `/model.N/` scope; its convolution branches (`cv2.*`, `cv3.*`) are quantized, the
    arithmetic after them is not.
    """
    scopes = [n.name.split("/")[1] for n in model.graph.node if n.name.startswith("/model.")]
    last = max({s for s in scopes}, key=lambda s: int(s.split(".")[1]) if s.split(".")[1].isdigit() else -1)
    return [n.name for n in model.graph.node
            if n.name.startswith(f"/{last}/") and "/cv2." not in n.name and "/cv3." not in n.name]


def quantize_int8(src: Path, dest: Path, batches: list[np.ndarray], target: str = "cpu",
                  per_channel: bool = True) -> Path:
    """Static QDQ INT8 (ONNX Runtime) calibrated on `batches` (each [b, 3, h, w] float32, letterboxed).

    target "cpu": unsigned 8-bit activations with zero points, signed per-channel weights (U8S8), the form ONNX
    Runtime's CPU kernels fuse into fast integer convolutions (about 3x FP32 at 640 px on this CPU).
    target "tensorrt": signed symmetric activations and weights (zero point 0), the only Q/DQ form
    TensorRT's explicit quantization accepts; on ONNX Runtime CPU this form runs *slower* than FP32.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(src))
    input_name = model.graph.input[0].name
    exclude = head_decode_nodes(model)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    pre = dest.with_name(dest.stem + "_pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    except Exception:  # shape inference is an optimisation; quantize the original when it fails
        shutil.copyfile(src, pre)
    quantize_static(str(pre), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QInt8 if target == "tensorrt" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=exclude,
                    extra_options={"ActivationSymmetric": target == "tensorrt", "WeightSymmetric": True})
    pre.unlink(missing_ok=True)
    return dest


def io_signature(path: Path) -> dict:
    """Input/output names, shapes (ints or axis names) and element types of an ONNX model, plus its opset."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)

    def info(v):
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim]
        return {"name": v.name, "shape": dims, "dtype": onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)}

    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=None)
    return {"inputs": [info(v) for v in m.graph.input], "outputs": [info(v) for v in m.graph.output], "opset": opset}


def trtexec_command(onnx_file: Path, precision: str, sig: dict, cfg: ExportConfig) -> str:
    """The `trtexec` line that builds a TensorRT engine from `onnx_file` (shapes and precision flags)."""
    inp = sig["inputs"][0]
    engine = onnx_file.with_suffix(".engine").name
    parts = ["trtexec", f"--onnx={onnx_file.name}", f"--saveEngine={engine}"]
    if cfg.dynamic:
        side = cfg.imgsz
        parts += [f"--minShapes={inp['name']}:1x3x{side // 2}x{side // 2}",
                  f"--optShapes={inp['name']}:{cfg.batch}x3x{side}x{side}",
                  f"--maxShapes={inp['name']}:{cfg.batch}x3x{side}x{side}"]
    else:
        parts.append(f"--shapes={inp['name']}:{'x'.join(str(d) for d in inp['shape'])}")
    if precision == "fp16":
        parts.append("--fp16")
    elif precision == "int8":
        parts += ["--int8", "--fp16"]  # QDQ model: explicit quantization, no calibration cache needed
    return " ".join(parts)


def write_trtexec(out_dir: Path, models: dict[str, Path], sigs: dict[str, dict], cfg: ExportConfig) -> Path:
    lines = ["#!/bin/sh",
             "# TensorRT engines for these ONNX files (run on the GPU machine, in this folder; TensorRT 8.6-10).",
             f"# Opset {cfg.opset}; input {sigs['fp32']['inputs'][0]['name']} "
             f"{sigs['fp32']['inputs'][0]['shape']}, RGB 0-1, letterboxed with grey 114 (see backends.letterbox).",
             "# FP16: TensorRT converts the FP32 model itself (model_fp16.onnx is for ONNX Runtime CUDA).",
             "# INT8: TensorRT takes model_int8.onnx (explicit Q/DQ, no calibration cache) only when it was exported",
             "#       with --int8-target tensorrt (symmetric scales, zero point 0); the default CPU export has",
             f"#       unsigned activations with zero points (this one: {cfg.int8_target}). Scales were calibrated on "
             f"{cfg.calib_images} training images.",
             "#       For implicit INT8 calibration of model.onnx instead, use the TensorRT Python API with an",
             "#       IInt8EntropyCalibrator2 fed by detection.export.calibration_batches(...).", "set -e", "cd \"$(dirname \"$0\")\""]
    lines.append(trtexec_command(models["fp32"], "fp32", sigs["fp32"], cfg))
    lines.append(trtexec_command(models["fp32"], "fp16", sigs["fp32"], cfg).replace(
        "model.engine", "model_fp16.engine"))
    if "int8" in models:
        line = trtexec_command(models["int8"], "int8", sigs["int8"], cfg)
        lines.append(line if cfg.int8_target == "tensorrt" else "# " + line + "   # needs --int8-target tensorrt")
    path = out_dir / "trtexec.sh"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def tensorrt_available() -> bool:
    """True when a TensorRT `trtexec` and an NVIDIA GPU are both present."""
    if not shutil.which("trtexec") or not shutil.which("nvidia-smi"):
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def build_engines(trtexec_file: Path) -> dict[str, Path]:
    """Run the trtexec lines (GPU machines only); returns the engines written."""
    out = {}
    for line in trtexec_file.read_text().splitlines():
        if line.startswith("trtexec "):
            subprocess.run(line.split(), cwd=trtexec_file.parent, check=True)
            engine = line.split("--saveEngine=")[1].split()[0]
            out[engine] = trtexec_file.parent / engine
    return out


def export_model(model: str | Path, out_dir: str | Path, cfg: ExportConfig, log=print) -> ExportResult:
    """Export `model` (run dir or .pt) to ONNX in `out_dir` at cfg.precision, check parity, write the manifest."""
    from detection.backends import resolve_model
    from detection.parity import check_parity

    weights = resolve_model(model)
    if weights.suffix != ".pt":
        raise ValueError(f"export needs PyTorch weights (a run directory or a .pt), got {weights.name}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"exporting {weights} -> {out_dir}/model.onnx (opset {cfg.opset}, "
        f"{'dynamic' if cfg.dynamic else f'static {cfg.batch}x3x{cfg.input_hw[0]}x{cfg.input_hw[1]}'})")
    models = {"fp32": export_fp32(weights, out_dir, cfg)}
    if cfg.precision == "fp16":
        models["fp16"] = convert_fp16(models["fp32"], out_dir / "model_fp16.onnx")
    if cfg.precision == "int8":
        shape = cfg.input_hw
        log(f"calibrating INT8 on {cfg.calib_images} training images of {cfg.data}")
        batches = calibration_batches(cfg.data, cfg.calib_images, shape, cfg.seed)
        if cfg.batch > 1 and not cfg.dynamic:
            batches = [np.repeat(b, cfg.batch, 0) for b in batches]
        models["int8"] = quantize_int8(models["fp32"], out_dir / "model_int8.onnx", batches, cfg.int8_target)
    sigs = {p: io_signature(f) for p, f in models.items()}
    parity = {}
    if cfg.data and cfg.parity_images:
        log(f"parity check on {cfg.parity_images} validation images")
        parity = check_parity(weights, models, cfg.data, cfg.parity_images, seed=cfg.seed)
    trt = write_trtexec(out_dir, models, sigs, cfg)
    engines = build_engines(trt) if tensorrt_available() else {}
    files = [f.name for f in models.values()] + [trt.name] + [e.name for e in engines.values()]
    extra = {"default": models[cfg.precision].name,
             "source": {"path": str(weights.resolve()), "sha256": sha256_file(weights)},
             "models": {f.name: {"precision": p, **sigs[p]} for p, f in models.items()},
             "tensorrt": {"engines": sorted(engines), "command_file": trt.name}}
    write_manifest(out_dir, "detection-onnx", asdict(cfg), files=files, metrics={"parity": parity}, extra=extra)
    return ExportResult(out_dir, models, parity, trt, engines)
