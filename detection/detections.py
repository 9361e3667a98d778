"""`Detections`: the one result type that backends, evaluation, mining, tracking and writers share.

Modelled on supervision's `Detections`: parallel arrays for N objects in one image, boxes in pixels.

    dets = Detections.from_ultralytics(result)
    confident = dets[dets.confidence >= 0.25]          # a new object; nothing changes in place
    iou = box_iou(confident.xyxy, truth.xyxy)          # [N, M]

Shapes: xyxy [N, 4] float32 pixels (x1, y1, x2, y2) in the original image; confidence [N] float32;
class_id [N] int64; mask [N, H, W] bool or None; tracker_id [N] int64 or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Objects found in one image: boxes, scores, classes, and optional masks and track ids."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    mask: np.ndarray | None = None
    tracker_id: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4))
        object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=np.float32).reshape(-1))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int64).reshape(-1))
        n = len(self.xyxy)
        if len(self.confidence) != n or len(self.class_id) != n:
            raise ValueError(f"Detections arrays disagree in length: xyxy {n}, confidence "
                             f"{len(self.confidence)}, class_id {len(self.class_id)}")
        if self.mask is not None:
            object.__setattr__(self, "mask", np.asarray(self.mask, dtype=bool))
            if self.mask.ndim != 3 or len(self.mask) != n:
                raise ValueError(f"mask must be [N, H, W] with N={n}, got shape {self.mask.shape}")
        if self.tracker_id is not None:
            object.__setattr__(self, "tracker_id", np.asarray(self.tracker_id, dtype=np.int64).reshape(-1))
            if len(self.tracker_id) != n:
                raise ValueError(f"tracker_id has {len(self.tracker_id)} entries for {n} detections")
        if not np.isfinite(self.xyxy).all() or not np.isfinite(self.confidence).all():
            raise ValueError("Detections contain non-finite boxes or scores")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def from_ultralytics(cls, result) -> Detections:
        """Convert one `ultralytics.engine.results.Results` (boxes, masks and track ids when present)."""
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return cls.empty()
        mask = None
        if getattr(result, "masks", None) is not None:
            mask = result.masks.data.cpu().numpy() > 0.5
        tracker_id = None
        if getattr(boxes, "id", None) is not None:
            tracker_id = boxes.id.cpu().numpy().astype(np.int64)
        return cls(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy().astype(np.int64),
                   mask=mask, tracker_id=tracker_id)

    @classmethod
    def from_yolo_labels(cls, lines: list[str], width: int, height: int) -> Detections:
        """Ground truth from YOLO label lines (`cls cx cy w h` or `cls x1 y1 x2 y2 ...` polygons), confidence 1."""
        boxes, classes = [], []
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            c, vals = int(float(parts[0])), np.asarray(parts[1:], dtype=np.float64)
            if len(vals) == 4:
                cx, cy, w, h = vals
                x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            else:
                xs, ys = vals[0::2], vals[1::2]
                x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
            boxes.append([x1 * width, y1 * height, x2 * width, y2 * height])
            classes.append(c)
        if not boxes:
            return cls.empty()
        return cls(np.asarray(boxes), np.ones(len(boxes)), np.asarray(classes))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """A new Detections with the selected rows (boolean mask, integer array or slice)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Detections(
            self.xyxy[index], self.confidence[index], self.class_id[index],
            mask=None if self.mask is None else self.mask[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={k: np.asarray(v)[index] for k, v in self.data.items()},
        )

    @property
    def area(self) -> np.ndarray:
        """Box areas in square pixels, [N]."""
        return (self.xyxy[:, 2] - self.xyxy[:, 0]).clip(0) * (self.xyxy[:, 3] - self.xyxy[:, 1]).clip(0)

    @staticmethod
    def merge(parts: list[Detections]) -> Detections:
        """Concatenate detections of the same image (masks and track ids kept only if all parts have them)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        masks = [p.mask for p in parts]
        tids = [p.tracker_id for p in parts]
        return Detections(
            np.concatenate([p.xyxy for p in parts]), np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            mask=np.concatenate(masks) if all(m is not None for m in masks) else None,
            tracker_id=np.concatenate(tids) if all(t is not None for t in tids) else None,
        )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a [N, 4] and b [M, 4] (xyxy, same units) -> [N, M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((br - tl).clip(0), axis=2)
    area_a = np.prod((a[:, 2:] - a[:, :2]).clip(0), axis=1)
    area_b = np.prod((b[:, 2:] - b[:, :2]).clip(0), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass(frozen=True)
class Match:
    """Outcome of matching predictions to ground truth in one image.

    tp [N] bool: prediction matched a same-class truth at IoU >= threshold (each truth used once,
    highest confidence first, as in VOC/COCO evaluation); matched_truth [N] int (-1 if none);
    missed [M] bool: truth objects no prediction matched.
    """

    tp: np.ndarray
    matched_truth: np.ndarray
    missed: np.ndarray

    @property
    def false_positives(self) -> int:
        return int((~self.tp).sum())


def match_to_ground_truth(pred: Detections, truth: Detections, iou_threshold: float = 0.5,
                          class_aware: bool = True) -> Match:
    """Greedy one-to-one matching of predictions to truth, by descending confidence."""
    n, m = len(pred), len(truth)
    tp = np.zeros(n, bool)
    matched = np.full(n, -1, np.int64)
    used = np.zeros(m, bool)
    if n and m:
        iou = box_iou(pred.xyxy, truth.xyxy)
        if class_aware:
            iou = np.where(pred.class_id[:, None] == truth.class_id[None, :], iou, 0.0)
        for i in np.argsort(-pred.confidence, kind="stable"):
            cand = np.where(used, -1.0, iou[i])
            j = int(cand.argmax())
            if cand[j] >= iou_threshold:
                tp[i], matched[i], used[j] = True, j, True
    return Match(tp=tp, matched_truth=matched, missed=~used)
