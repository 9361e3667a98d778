"""How good are the tracks? MOTA, IDF1 and friends against MOTChallenge ground truth, with motmetrics.

    metrics = evaluate_tracks("gt.txt", "tracks.txt")   # {"mota": 0.81, "idf1": 0.77, "id_switches": 3, ...}

Both files: `frame,id,x,y,w,h,...` (frame from 1, pixels, top-left corner and size). Ground-truth rows with
conf 0 (MOTChallenge "ignore") are dropped. Matching uses box IoU >= `iou` (distance 1 - IoU < 1 - iou, the
MOTChallenge convention with iou 0.5). Classes are not used: the metric is identity-preserving detection of
objects, as in the MOT benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

METRICS = ["mota", "motp", "idf1", "idp", "idr", "recall", "precision", "num_switches", "num_false_positives",
           "num_misses", "num_objects", "num_unique_objects", "mostly_tracked", "mostly_lost", "num_fragmentations"]


def read_mot(path: str | Path, is_gt: bool = False) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frame -> (ids [N], boxes [N, 4] x, y, w, h) of a MOTChallenge text file; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tracks file {path} does not exist")
    rows: dict[int, list] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.replace(" ", "").split(",")
        try:
            frame, tid, x, y, w, h = int(float(parts[0])), int(float(parts[1])), *map(float, parts[2:6])
            conf = float(parts[6]) if len(parts) > 6 else 1.0
        except (ValueError, IndexError):
            raise ValueError(f"{path} line {n}: expected 'frame,id,x,y,w,h[,conf,...]', got {line!r}") from None
        if is_gt and conf == 0:
            continue
        rows.setdefault(frame, []).append((tid, x, y, w, h))
    return {f: (np.array([r[0] for r in v]), np.array([r[1:] for r in v], dtype=float)) for f, v in rows.items()}


def iou_distance(gt_xywh: np.ndarray, hyp_xywh: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """1 - IoU [N, M] between x,y,w,h boxes, NaN (no match allowed) where IoU < `iou`.

    Same as motmetrics.distances.iou_matrix, which calls np.asfarray (gone in NumPy 2).
    """
    from detection.detections import box_iou

    def xyxy(b):
        b = np.asarray(b, float).reshape(-1, 4)
        return np.c_[b[:, :2], b[:, :2] + b[:, 2:]]

    d = 1.0 - box_iou(xyxy(gt_xywh), xyxy(hyp_xywh))
    d[d > 1 - iou] = np.nan
    return d


def evaluate_tracks(gt: str | Path, hyp: str | Path, iou: float = 0.5) -> dict[str, float]:
    """MOTA, MOTP, IDF1, ID switches... of tracks `hyp` against ground truth `gt` (see module docstring)."""
    import motmetrics as mm

    truth, pred = read_mot(gt, is_gt=True), read_mot(hyp)
    acc = mm.MOTAccumulator(auto_id=False)
    empty = (np.zeros(0, int), np.zeros((0, 4)))
    for frame in range(1, max([*truth, *pred, 0]) + 1):
        g_ids, g_box = truth.get(frame, empty)
        h_ids, h_box = pred.get(frame, empty)
        dist = iou_distance(g_box, h_box, iou)
        acc.update(g_ids.tolist(), h_ids.tolist(), dist, frameid=frame)
    mh = mm.metrics.create()
    row = mh.compute(acc, metrics=METRICS, name="video").iloc[0]
    return {k: (float(row[k]) if k in ("mota", "motp", "idf1", "idp", "idr", "recall", "precision") else int(row[k]))
            for k in METRICS}
