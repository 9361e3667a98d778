"""Does the exported model detect what the PyTorch model detects? Same letterboxed images, both models.

`check_parity(pt, onnx, data_yaml)` feeds the *identical* input tensor (our letterbox, the ONNX model's input
shape) to the PyTorch network and to ONNX Runtime, then reports

- max |box| difference in input pixels and max |score| difference over the raw head output [B, 4 + nc, A]
  (anchors whose best score is >= 0.01 in either model: those are the ones that can become detections), and
- mAP50 and mAP50-95 of both on the validation images (COCO-style, conf 0.001), and their difference.

Agreement means |mAP50-95(onnx) - mAP50-95(pytorch)| <= 0.5 points (0.005) for FP32 and FP16 exports (the
same function, up to rounding), and at most 1.5 points lost for INT8 (quantization is allowed to cost a little).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detection.detections import Detections, box_iou

PARITY_TOLERANCE_MAP = 0.005  # 0.5 mAP points: FP32 / FP16 ONNX vs PyTorch
INT8_TOLERANCE_MAP = 0.015    # 1.5 mAP points lost at most: INT8 ONNX vs PyTorch
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def load_split(data_yaml: str | Path, split: str = "val", limit: int | None = None,
               seed: int = 0) -> tuple[list[Path], list[np.ndarray], list[Detections]]:
    """Images (BGR) and ground truth of one split of a YOLO data set (at most `limit`, chosen by seed)."""
    from detection.datasets import img2label_path, list_images, read_data_yaml

    data, problems = read_data_yaml(data_yaml, splits=[split])
    if data is None or split not in data.splits:
        detail = "; ".join(p.message for p in problems) or f"no '{split}:' entry"
        raise FileNotFoundError(f"{data_yaml}: cannot read split '{split}' ({detail})")
    files = sorted(list_images(data.splits[split], []))
    if not files:
        raise FileNotFoundError(f"{data_yaml}: split '{split}' has no images")
    if limit and len(files) > limit:
        pick = np.random.default_rng(seed).choice(len(files), limit, replace=False)
        files = [files[i] for i in sorted(pick)]
    images, truths = [], []
    for f in files:
        img = cv2.imread(str(f))
        if img is None:
            raise ValueError(f"cannot decode image {f}")
        lab = img2label_path(f)
        lines = lab.read_text().splitlines() if lab.is_file() else []
        images.append(img)
        truths.append(Detections.from_yolo_labels(lines, img.shape[1], img.shape[0]))
    return files, images, truths


def _ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO 101-point interpolated average precision."""
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


def mean_average_precision(preds: list[Detections], truths: list[Detections]) -> dict[str, float]:
    """mAP50 and mAP50-95 over classes present in the truth (greedy matching per IoU threshold)."""
    classes = sorted({int(c) for t in truths for c in t.class_id})
    if not classes:
        return {"map50": float("nan"), "map50_95": float("nan")}
    # per prediction: class, score, tp flag at each IoU threshold
    rows_cls, rows_conf, rows_tp = [], [], []
    n_truth = dict.fromkeys(classes, 0)
    for p, t in zip(preds, truths, strict=True):
        for c in t.class_id:
            n_truth[int(c)] += 1
        if not len(p):
            continue
        tp = np.zeros((len(p), len(IOU_THRESHOLDS)), bool)
        if len(t):
            iou = box_iou(p.xyxy, t.xyxy) * (p.class_id[:, None] == t.class_id[None, :])
            order = np.argsort(-p.confidence, kind="stable")
            for k, thr in enumerate(IOU_THRESHOLDS):
                used = np.zeros(len(t), bool)
                for i in order:
                    cand = np.where(used, -1.0, iou[i])
                    j = int(cand.argmax())
                    if cand[j] >= thr:
                        tp[i, k], used[j] = True, True
        rows_cls.append(p.class_id)
        rows_conf.append(p.confidence)
        rows_tp.append(tp)
    if not rows_cls:
        return {"map50": 0.0, "map50_95": 0.0}
    cls, conf, tp = np.concatenate(rows_cls), np.concatenate(rows_conf), np.concatenate(rows_tp)
    aps = np.zeros((len(classes), len(IOU_THRESHOLDS)))
    for ci, c in enumerate(classes):
        sel = np.where(cls == c)[0]
        if not len(sel) or not n_truth[c]:
            continue
        sel = sel[np.argsort(-conf[sel], kind="stable")]
        ctp = np.cumsum(tp[sel], 0)
        cfp = np.cumsum(~tp[sel], 0)
        for k in range(len(IOU_THRESHOLDS)):
            aps[ci, k] = _ap(ctp[:, k] / n_truth[c], ctp[:, k] / np.maximum(ctp[:, k] + cfp[:, k], 1e-9))
    return {"map50": float(aps[:, 0].mean()), "map50_95": float(aps.mean())}


def raw_differences(a: np.ndarray, b: np.ndarray, min_score: float = 0.01) -> dict[str, float]:
    """Max |box| (pixels) and |score| differences between two raw outputs [B, 4 + nc, A]."""
    live = np.maximum(a[:, 4:].max(1), b[:, 4:].max(1)) >= min_score  # [B, A]
    box = np.abs(a[:, :4] - b[:, :4]).max(1)  # [B, A]
    score = np.abs(a[:, 4:] - b[:, 4:]).max(1)
    return {"max_box_diff_px": float(box[live].max()) if live.any() else 0.0,
            "max_score_diff": float(score[live].max()) if live.any() else 0.0,
            "max_score_diff_all_anchors": float(score.max()), "live_anchors": int(live.sum())}


def evaluate_backend(backend, images: list[np.ndarray], truths: list[Detections]) -> dict[str, float]:
    """mAP of `backend` at conf 0.001 (the evaluation setting) on `images`."""
    conf = backend.conf
    backend.conf = 0.001
    try:
        preds = backend.predict(images)
    finally:
        backend.conf = conf
    return mean_average_precision(preds, truths)


def check_parity(pt_path: str | Path, onnx_paths: dict[str, Path], data_yaml: str | Path, limit: int = 50,
                 split: str = "val", seed: int = 0) -> dict:
    """Compare the PyTorch model with each ONNX model (name -> path) on the same letterboxed images.

    Returns {"images": n, "imgsz": s, "pytorch": {map50, map50_95}, "<name>": {map50, map50_95, max_box_diff_px,
    max_score_diff, delta_map50_95, within_tolerance}, ...}.
    """
    from detection.backends import OnnxBackend, TorchBackend, preprocess

    _, images, truths = load_split(data_yaml, split, limit, seed)
    ref = None
    report: dict = {"images": len(images), "split": split}
    for name, path in onnx_paths.items():
        ort = OnnxBackend(path, batch=1)
        if ref is None:
            ref = TorchBackend(pt_path, imgsz=ort.imgsz, batch=1)
            ref.input_shape = ort.input_shape  # exactly the same letterbox as the ONNX model
            report["imgsz"] = ort.imgsz
            report["pytorch"] = evaluate_backend(ref, images, truths)
        diffs = []
        for img in images[: min(len(images), 20)]:
            x, _ = preprocess([img], ort.input_shape([img]))
            diffs.append(raw_differences(ref.raw(x), ort.raw(x)))
        m = evaluate_backend(ort, images, truths)
        delta = m["map50_95"] - report["pytorch"]["map50_95"]
        report[name] = {**m, "max_box_diff_px": max(d["max_box_diff_px"] for d in diffs),
                        "max_score_diff": max(d["max_score_diff"] for d in diffs),
                        "delta_map50_95": delta, "delta_map50": m["map50"] - report["pytorch"]["map50"],
                        "within_tolerance": bool(-delta <= INT8_TOLERANCE_MAP if name == "int8"
                                                 else abs(delta) <= PARITY_TOLERANCE_MAP)}
    return report
