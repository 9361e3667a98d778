"""EigenCAM heatmaps for a YOLO detector: where in the image the features that feed the detection head respond.

    explainer = Explainer("runs/train-.../", ExplainConfig(imgsz=320))
    heat, dets = explainer.explain(image_bgr)        # float32 [H, W] in [0, 1] at the image's size; Detections
    explain_images(model, ["a.jpg"], "out/")         # out/a.jpg: heatmap blended over the image, boxes drawn

Method: EigenCAM (pytorch-grad-cam; Muhammad & Yeasin 2020): the first principal component of a layer's
activations [C, h, w] projected back onto its h x w positions. It needs no gradients and no target class, so
it works on a detection head whose outputs are thousands of boxes (Grad-CAM needs one scalar score to
differentiate) and costs one forward pass. The sign of a principal component is arbitrary; pytorch-grad-cam's
sign-corrected projection turns the map so that its strongest response is positive.

Layers: by default the three feature maps the Detect head reads (its `f` inputs: layers 16, 19 and 22 of
yolo11n, strides 8, 16, 32). Every box is predicted from one of them, so they are the last place where "what
the detector looks at" is still a spatial map; the stride-8 map resolves small objects, the stride-32 map large
ones, and pytorch-grad-cam averages their (rescaled, non-negative) maps. A backbone layer (e.g. 10) shows
generic texture instead; pass `layers` to compare.

With labels (`false_positives=True`) each image's detections are matched to its ground truth as mining does
(same class, IoU >= 0.5, confidence >= conf): false positives are drawn red with their confidence, true
positives green, missed objects yellow, and only images with false positives are written, most confidently
wrong first: what fooled the model, and what it was looking at when it was fooled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detection.backends import decode, preprocess, resolve_model
from detection.detections import Detections, match_to_ground_truth


@dataclass
class ExplainConfig:
    """Options of `detection explain`.

    imgsz: network input side (square letterbox, pixels); conf: detections drawn at or above it; layers:
    model layer indices whose activations EigenCAM uses (empty: the Detect head's inputs); alpha: heatmap
    weight in the blend (0-1); iou_match: IoU for a detection to match ground truth (false-positive mode);
    max_images: at most this many images are written.
    """

    imgsz: int = 320
    conf: float = 0.25
    layers: list[int] = field(default_factory=list)
    alpha: float = 0.45
    iou_match: float = 0.5
    max_images: int = 100

    def __post_init__(self) -> None:
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"explain imgsz must be a multiple of 32, got {self.imgsz}")
        if not 0 < self.conf < 1 or not 0 <= self.alpha <= 1 or not 0 < self.iou_match < 1:
            raise ValueError(f"explain conf and iou_match must be in (0, 1) and alpha in [0, 1], got "
                             f"{self.conf}, {self.iou_match}, {self.alpha}")


def _eigencam_class():
    try:
        from pytorch_grad_cam import EigenCAM
        from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction
    except ImportError as exc:
        raise ImportError("detection explain needs pytorch-grad-cam: pip install grad-cam==1.5.7") from exc

    class SignedEigenCAM(EigenCAM):
        """EigenCAM whose principal component is turned so that its largest response is positive."""

        def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
            return get_2d_projection_with_sign_correction(activations)

    return SignedEigenCAM


class Explainer:
    """A detector (run directory or .pt) with an EigenCAM on the chosen layers; one forward per image."""

    def __init__(self, model: str | Path, cfg: ExplainConfig | None = None):
        import torch

        from shared.offline import yolo

        self.cfg = cfg or ExplainConfig()
        self.weights = resolve_model(model)
        if self.weights.suffix != ".pt":
            raise ValueError(f"explain needs the PyTorch model (a run directory or .pt), got {self.weights.name}: "
                             "an ONNX graph has no layers to hook")
        self._torch = torch
        yolo_model = yolo().YOLO(str(self.weights))
        self.names = dict(yolo_model.names)
        self.net = yolo_model.model.float().eval()
        head = self.net.model[-1]
        self.layers = list(self.cfg.layers) or [int(i) for i in (head.f if isinstance(head.f, list) else [head.f])]
        bad = [i for i in self.layers if not -len(self.net.model) <= i < len(self.net.model) - 1]
        if bad:
            raise ValueError(f"explain layers {bad} are not layers of this model (0..{len(self.net.model) - 2})")
        self.cam = _eigencam_class()(self.net, [self.net.model[i] for i in self.layers])

    def explain(self, image: np.ndarray) -> tuple[np.ndarray, Detections]:
        """(heatmap float32 [H, W] in [0, 1] at the image's size, detections at cfg.conf) for one BGR image."""
        x, boxes = preprocess([image], (self.cfg.imgsz, self.cfg.imgsz))
        with self._torch.no_grad():
            cam = self.cam(self._torch.from_numpy(x), targets=[])  # [1, S, S]; targets unused by EigenCAM
            out = self.cam.outputs
        raw = (out[0] if isinstance(out, list | tuple) else out).numpy()
        dets = decode(raw, boxes, self.cfg.conf)[0]
        return unletterbox(cam[0], boxes[0]), dets


def unletterbox(cam: np.ndarray, lb) -> np.ndarray:
    """A map over the letterboxed input [S, S] -> the original image's [H, W] (padding cut, resized), in [0, 1]."""
    h, w = lb.shape
    left, top = int(lb.pad[0]), int(lb.pad[1])
    nh, nw = max(1, round(h * lb.ratio)), max(1, round(w * lb.ratio))
    crop = np.ascontiguousarray(cam[top:top + nh, left:left + nw], np.float32)
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    out -= out.min()
    peak = out.max()
    if not np.isfinite(peak):
        raise FloatingPointError("the heatmap is not finite; the model's activations hold NaN or inf")
    return out / peak if peak > 0 else out


def blend(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap (JET colours) blended over a BGR image of the same size."""
    colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    return cv2.addWeighted(colour, alpha, image, 1 - alpha, 0)


def _box(img, xyxy, colour, label: str, thick: int = 2) -> None:
    x1, y1, x2, y2 = (int(v) for v in xyxy)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
    scale = max(0.35, min(img.shape[:2]) / 900)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, y1), colour, -1)
    cv2.putText(img, label, (x1 + 1, max(th, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def draw_outcome(img: np.ndarray, dets: Detections, truth: Detections, names: dict[int, str],
                 iou: float = 0.5) -> tuple[np.ndarray, dict]:
    """Draw false positives red, true positives green, missed truths yellow; return (image, counts)."""
    out = img.copy()
    m = match_to_ground_truth(dets, truth, iou_threshold=iou)
    for j in np.flatnonzero(m.missed):
        _box(out, truth.xyxy[j], (0, 220, 255), f"missed {names.get(int(truth.class_id[j]), '?')}", 1)
    for i in range(len(dets)):
        colour, tag = ((60, 200, 60), "") if m.tp[i] else ((40, 40, 230), "FP ")
        _box(out, dets.xyxy[i], colour, f"{tag}{names.get(int(dets.class_id[i]), '?')} {dets.confidence[i]:.2f}")
    fp = ~m.tp
    return out, {"false_positives": int(fp.sum()), "fp_confidence": float(dets.confidence[fp].sum()),
                 "true_positives": int(m.tp.sum()), "missed": int(m.missed.sum())}


def explain_images(model: str | Path, images: Sequence[str | Path], out_dir: str | Path,
                   cfg: ExplainConfig | None = None, false_positives: bool = False,
                   log: Callable[[str], None] = print) -> list[dict]:
    """Write one heatmap-and-detections image per input into `out_dir` (+ explain.json); return the records.

    false_positives: the images have YOLO labels (images/ -> labels/); write only those with false positives,
    most confidently wrong first, with FP / TP / missed boxes drawn.
    """
    from detection.evaluate import load_truth
    from detection.video import annotate

    cfg = cfg or ExplainConfig()
    ex = Explainer(model, cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for p in images:
        img = cv2.imread(str(p))
        if img is None:
            raise FileNotFoundError(f"cannot read image {p}; it is missing or not an image")
        heat, dets = ex.explain(img)
        base = blend(img, heat, cfg.alpha)
        rec = {"image": str(p), "detections": len(dets), "heat_peak_xy": [int(v) for v in
                                                                         np.unravel_index(heat.argmax(), heat.shape)[::-1]]}
        if false_positives:
            vis, counts = draw_outcome(base, dets, load_truth(p, (img.shape[1], img.shape[0])), ex.names,
                                       cfg.iou_match)
            rec.update(counts)
            if counts["false_positives"] == 0:
                continue
        else:
            vis = annotate(base, dets, ex.names)
        drawn.append((rec, vis))
    if false_positives:
        drawn.sort(key=lambda rv: (-rv[0]["fp_confidence"], rv[0]["image"]))
    records = []
    for k, (rec, vis) in enumerate(drawn[:cfg.max_images]):
        name = f"{k:03d}_{Path(rec['image']).stem}.jpg" if false_positives else f"{Path(rec['image']).stem}.jpg"
        target = out / name
        if not cv2.imwrite(str(target), vis):
            raise OSError(f"could not write {target}; check the folder is writable")
        records.append({**rec, "output": str(target)})
    summary = {"model": str(ex.weights), "method": "EigenCAM (pytorch-grad-cam, sign-corrected)",
               "layers": ex.layers, "imgsz": cfg.imgsz, "conf": cfg.conf, "false_positive_mode": false_positives,
               "images_in": len(images), "images_written": len(records), "records": records}
    (out / "explain.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {len(records)} heatmap images to {out} (EigenCAM on layers {ex.layers})")
    return records
