"""One `predict(images) -> list[Detections]` over PyTorch and ONNX Runtime, batched.

    backend = load_backend("export/model.onnx")            # or a run directory, a best.pt
    dets = backend.predict([frame_bgr, ...])                # one Detections per image, boxes in image pixels

Backends:
- `UltralyticsBackend`: Ultralytics' own `model.predict` (the reference loop, PyTorch).
- `TorchBackend`: the same PyTorch network, but fed by *our* letterbox/decoding, so it sees exactly the input
  the ONNX model sees (parity checks compare these two).
- `OnnxBackend`: ONNX Runtime with the best execution provider present (TensorRT > CUDA > CPU); fp32, fp16
  or int8 (QDQ) models, static or dynamic input shape.

Pre/post-processing shared by Torch and ONNX backends: `letterbox` (Ultralytics' LetterBox: keep aspect,
pad with grey 114, centred), BGR->RGB, [0, 1] float, NCHW; the raw head output [B, 4 + nc, A] holds
(cx, cy, w, h) in input pixels then per-class scores; `decode` keeps scores >= conf and runs class-aware NMS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detection.detections import Detections
from shared.runs import ManifestError, load_manifest

STRIDE = 32


@dataclass(frozen=True)
class Letterbox:
    """How one image was fitted into the network input: scale r and padding (left, top), in pixels."""

    ratio: float
    pad: tuple[float, float]
    shape: tuple[int, int]  # original (height, width)


def letterbox(img: np.ndarray, new_shape: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize `img` [H, W, 3] keeping aspect ratio and pad to `new_shape` (h, w) with 114, centred."""
    h, w = img.shape[:2]
    r = min(new_shape[0] / h, new_shape[1] / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (new_shape[1] - nw) / 2, (new_shape[0] - nh) / 2
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return img, Letterbox(r, (left, top), (h, w))


def input_shape_for(images: list[np.ndarray], imgsz: int) -> tuple[int, int]:
    """The smallest stride-32 (h, w) that holds the largest image scaled to `imgsz` (dynamic-shape models)."""
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    r = imgsz / max(h, w)
    return (int(np.ceil(round(h * r) / STRIDE) * STRIDE), int(np.ceil(round(w * r) / STRIDE) * STRIDE))


def preprocess(images: list[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, list[Letterbox]]:
    """BGR uint8 images -> float32 [B, 3, h, w] in [0, 1] (RGB) plus each image's Letterbox."""
    batch = np.empty((len(images), 3, *shape), np.float32)
    boxes = []
    for i, img in enumerate(images):
        if img is None or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image {i} is not an HxWx3 BGR array (got {None if img is None else img.shape})")
        lb, info = letterbox(img, shape)
        batch[i] = lb[:, :, ::-1].transpose(2, 0, 1) * (1 / 255.0)
        boxes.append(info)
    return batch, boxes


def decode(raw: np.ndarray, boxes: list[Letterbox], conf: float = 0.25, iou: float = 0.7,
           max_det: int = 300) -> list[Detections]:
    """Raw head output [B, 4 + nc, A] -> one Detections per image (class-aware NMS, boxes in image pixels)."""
    out = []
    for pred, lb in zip(raw.astype(np.float32, copy=False), boxes, strict=True):
        scores_all = pred[4:]
        cls = scores_all.argmax(0)
        score = scores_all[cls, np.arange(pred.shape[1])]
        keep = score >= conf
        if not keep.any():
            out.append(Detections.empty())
            continue
        cx, cy, w, h = pred[:4, keep]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        score, cls = score[keep], cls[keep]
        # class-aware NMS via per-class offsets (what Ultralytics does): boxes of different classes never overlap
        off = xyxy + (cls[:, None] * 7680.0)
        idx = cv2.dnn.NMSBoxes(np.c_[off[:, :2], off[:, 2:] - off[:, :2]].tolist(), score.tolist(), conf, iou)
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        idx = idx[np.argsort(-score[idx], kind="stable")][:max_det]
        xyxy = xyxy[idx]
        xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - lb.pad[0]) / lb.ratio).clip(0, lb.shape[1])
        xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - lb.pad[1]) / lb.ratio).clip(0, lb.shape[0])
        out.append(Detections(xyxy, score[idx], cls[idx]))
    return out


class Backend:
    """Common interface: `predict(list of BGR images) -> list[Detections]`, plus what the backend is."""

    name = "backend"
    precision = "fp32"
    imgsz = 640
    batch = 1
    conf = 0.25
    iou = 0.7
    names: dict[int, str] = {}

    def raw(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def input_shape(self, images: list[np.ndarray]) -> tuple[int, int]:
        return (self.imgsz, self.imgsz)

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        """Detect objects in `images` (BGR uint8 [H, W, 3], any sizes), `self.batch` images per forward pass."""
        out: list[Detections] = []
        for s in range(0, len(images), self.batch):
            chunk = list(images[s:s + self.batch])
            x, boxes = preprocess(chunk, self.input_shape(chunk))
            out.extend(decode(self.raw(x), boxes, self.conf, self.iou))
        return out

    def describe(self) -> dict:
        return {"backend": self.name, "precision": self.precision, "imgsz": self.imgsz, "batch": self.batch}


class TorchBackend(Backend):
    """The PyTorch network of a `.pt` with our letterbox and decoding (same input as the ONNX model)."""

    name = "pytorch"

    def __init__(self, weights: str | Path, imgsz: int = 640, batch: int = 1, conf: float = 0.25,
                 iou: float = 0.7, rect: bool = False):
        import torch

        from shared.offline import yolo

        self._torch = torch
        yolo_model = yolo().YOLO(str(weights))
        self.module = yolo_model.model.float().eval().fuse() if hasattr(yolo_model.model, "fuse") else yolo_model.model
        self.names = dict(yolo_model.names)
        self.imgsz, self.batch, self.conf, self.iou, self.rect = imgsz, batch, conf, iou, rect

    def input_shape(self, images):
        return input_shape_for(images, self.imgsz) if self.rect else (self.imgsz, self.imgsz)

    def raw(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            y = self.module(self._torch.from_numpy(batch))
        return (y[0] if isinstance(y, list | tuple) else y).numpy()


class UltralyticsBackend(Backend):
    """Ultralytics' own `predict` loop on the PyTorch model (the reference the targets compare against)."""

    name = "ultralytics"

    def __init__(self, weights: str | Path, imgsz: int = 640, batch: int = 1, conf: float = 0.25, iou: float = 0.7):
        from shared.offline import yolo

        self.model = yolo().YOLO(str(weights))
        self.names = dict(self.model.names)
        self.imgsz, self.batch, self.conf, self.iou = imgsz, batch, conf, iou

    def predict(self, images):
        out = []
        for s in range(0, len(images), self.batch):
            res = self.model.predict(list(images[s:s + self.batch]), imgsz=self.imgsz, conf=self.conf, iou=self.iou,
                                     device="cpu", verbose=False, batch=self.batch)
            out.extend(Detections.from_ultralytics(r) for r in res)
        return out


def available_providers(prefer: str = "auto") -> list[str]:
    """ONNX Runtime execution providers to use, best first: TensorRT, CUDA, then CPU (always last)."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    order = {"auto": ["TensorrtExecutionProvider", "CUDAExecutionProvider"], "cpu": [],
             "cuda": ["CUDAExecutionProvider"], "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}
    if prefer not in order:
        raise ValueError(f"unknown provider {prefer!r}; choose auto, cpu, cuda or tensorrt")
    chosen = [p for p in order[prefer] if p in have]
    if prefer in ("cuda", "tensorrt") and not chosen:
        raise ValueError(f"{prefer} execution provider requested but ONNX Runtime offers only {have} "
                           "(install onnxruntime-gpu and a CUDA/TensorRT runtime)")
    return [*chosen, "CPUExecutionProvider"]


class OnnxBackend(Backend):
    """An ONNX model (fp32, fp16 or int8 QDQ) on ONNX Runtime, static or dynamic input shape."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, imgsz: int | None = None, batch: int = 1, conf: float = 0.25,
                 iou: float = 0.7, providers: str = "auto", threads: int | None = None, spin: bool = False):
        import onnxruntime as ort

        path = Path(path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        if not spin:
            # Idle intra-op threads sleep instead of busy-waiting. ORT spins by default, which burns the cores
            # that the video pipeline's decode/writer threads (and other jobs) need: measured on the 2-core
            # machine, the INT8 video pipeline ran 3.7x faster and used 2.2x less CPU per frame without spinning.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=available_providers(providers))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        shape = inp.shape  # [B, 3, H, W]; strings where the axis is dynamic
        self.static_batch = shape[0] if isinstance(shape[0], int) else None
        self.static_hw = (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:]) else None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = _parse_names(meta.get("names", "{}"))
        model_imgsz = _parse_imgsz(meta.get("imgsz"))
        self.imgsz = imgsz or (max(self.static_hw) if self.static_hw else model_imgsz or 640)
        if self.static_hw and imgsz and imgsz != max(self.static_hw):
            raise ValueError(f"{path.name} was exported for {self.static_hw[0]}x{self.static_hw[1]} input; "
                             f"--imgsz {imgsz} needs a dynamic export (detection export --dynamic)")
        self.batch = self.static_batch or batch
        self.conf, self.iou = conf, iou
        self.precision = _precision_of(path)
        self.provider = self.session.get_providers()[0]

    def input_shape(self, images):
        return self.static_hw or input_shape_for(images, self.imgsz)

    def raw(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if self.static_batch and n < self.static_batch:  # pad a short last batch to the fixed batch size
            batch = np.concatenate([batch, np.zeros((self.static_batch - n, *batch.shape[1:]), batch.dtype)])
        y = self.session.run(None, {self.input_name: batch.astype(self.input_dtype, copy=False)})[0]
        return y[:n]

    def describe(self):
        return {**super().describe(), "provider": self.provider}


def _parse_names(text: str) -> dict[int, str]:
    import ast

    try:
        return {int(k): str(v) for k, v in ast.literal_eval(text).items()}
    except (ValueError, SyntaxError, AttributeError):
        return {}


def _parse_imgsz(text: str | None) -> int | None:
    import ast

    try:
        v = ast.literal_eval(text) if text else None
    except (ValueError, SyntaxError):
        return None
    return int(max(v)) if isinstance(v, list | tuple) else (int(v) if v else None)


def _precision_of(path: Path) -> str:
    """Precision recorded by `detection export` in the manifest next to the ONNX file (else guessed)."""
    man = path.parent / "manifest.json"
    if man.is_file():
        try:
            entry = json.loads(man.read_text()).get("extra", {}).get("models", {}).get(path.name, {})
            if entry.get("precision"):
                return entry["precision"]
        except (json.JSONDecodeError, AttributeError):
            pass
    for p in ("int8", "fp16"):
        if p in path.stem:
            return p
    return "fp32"


def resolve_model(model: str | Path) -> Path:
    """A run directory, a `.pt` or an `.onnx` -> the file to load, verified against its manifest.

    Run directories (written by `detection train`, manifest kind 'detection-model') resolve to their
    `weights/best.pt`; export directories (kind 'detection-onnx') to their fp32 ONNX. An `.onnx` file that sits
    next to an export manifest is re-hashed before use; a tampered file is refused.
    """
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(f"model {path} does not exist; pass a run directory, a .pt or an .onnx file")
    if path.is_dir():
        if (path / "manifest.json").is_file():
            raw_kind = json.loads((path / "manifest.json").read_text()).get("kind")
            if raw_kind == "detection-onnx":
                m = load_manifest(path, kind="detection-onnx")
                return path / m.extra.get("default", "model.onnx")
            try:
                from detection.train import load_run  # verifies the run's hashes

                return Path(load_run(path)[1])
            except ImportError:
                load_manifest(path)
        for cand in (path / "weights" / "best.pt", path / "best.pt"):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{path} holds no weights/best.pt; pass the run directory `detection train` wrote")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        man = path.parent / "manifest.json"
        if man.is_file():
            m = load_manifest(path.parent, verify=False)
            if path.name in m.files:
                load_manifest(path.parent)  # re-hash every file listed (raises ManifestError when altered)
        return path
    if suffix == ".pt":
        return path
    raise ValueError(f"unsupported model file {path.name}: expected a run directory, a .pt or an .onnx file")


def load_backend(model: str | Path, backend: str = "auto", imgsz: int | None = None, batch: int = 1,
                 conf: float = 0.25, iou: float = 0.7, providers: str = "auto") -> Backend:
    """Open `model` (run dir, .pt, .onnx) with `backend` in auto|onnxruntime|pytorch|ultralytics."""
    path = resolve_model(model)
    is_onnx = path.suffix.lower() == ".onnx"
    if backend == "auto":
        backend = "onnxruntime" if is_onnx else "pytorch"
    if backend == "onnxruntime":
        if not is_onnx:
            raise ValueError(f"the onnxruntime backend needs an .onnx model, got {path.name}; run `detection export`")
        return OnnxBackend(path, imgsz, batch, conf, iou, providers)
    if is_onnx:
        raise ValueError(f"backend {backend!r} needs a .pt model, got {path.name}")
    if backend == "pytorch":
        return TorchBackend(path, imgsz or 640, batch, conf, iou, rect=True)
    if backend == "ultralytics":
        return UltralyticsBackend(path, imgsz or 640, batch, conf, iou)
    raise ValueError(f"unknown backend {backend!r}; choose auto, onnxruntime, pytorch or ultralytics")


def time_backend(backend: Backend, images: list[np.ndarray], repeats: int = 5, warmup: int = 1) -> dict:
    """Latency per batch (median, p90, ms) and throughput (images/s) of `backend.predict` on `images`."""
    for _ in range(warmup):
        backend.predict(images[:backend.batch])
    per_batch = []
    start = time.perf_counter()
    for _ in range(repeats):
        for s in range(0, len(images), backend.batch):
            t = time.perf_counter()
            backend.predict(images[s:s + backend.batch])
            per_batch.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - start
    lat = np.asarray(per_batch)
    return {**backend.describe(), "latency_ms_median": float(np.median(lat)),
            "latency_ms_p90": float(np.percentile(lat, 90)), "images_per_s": repeats * len(images) / total}


__all__ = ["Backend", "Letterbox", "ManifestError", "OnnxBackend", "TorchBackend", "UltralyticsBackend",
           "available_providers", "decode", "letterbox", "load_backend", "preprocess", "resolve_model",
           "time_backend"]
