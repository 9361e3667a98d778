"""Tiny assets the deployment tests share (built once per test process): toy scenes, a toy video with
ground truth, and a yolo11n trained for one epoch at 64 px (shapes and plumbing, not accuracy)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from detection.detections import Detections
from detection.toy_scenes import make_toy_scenes, make_toy_video

IMGSZ = 64


@functools.cache
def assets() -> dict[str, Path]:
    root = Path(tempfile.mkdtemp(prefix="deploy-tests-"))
    data = make_toy_scenes(root / "scenes", n_train=16, n_val=6, width=160, height=96, seed=0)
    video, gt = make_toy_video(root / "video", frames=24, width=160, height=96, fps=12.0, objects=4, seed=1)
    from shared.offline import yolo

    model = yolo().YOLO("yolo11n.yaml")
    model.train(data=str(data), epochs=1, imgsz=IMGSZ, batch=8, workers=0, seed=0, device="cpu",
                project=str(root / "train"), name="run", exist_ok=True, plots=False, verbose=False, amp=False,
                val=False)
    weights = root / "train" / "run" / "weights" / "last.pt"
    return {"root": root, "data": data, "video": video, "gt": gt, "weights": weights}


@functools.cache
def exported(precision: str = "fp32", dynamic: bool = False, height: int = 0) -> Path:
    """An export folder of the tiny model (static 64 px, or height x 64, unless dynamic)."""
    from detection.export import ExportConfig, export_model

    a = assets()
    out = a["root"] / f"export-{precision}-{'dyn' if dynamic else 'static'}-{height}"
    export_model(a["weights"], out, ExportConfig(imgsz=IMGSZ, height=height, dynamic=dynamic, precision=precision,
                                                 data=str(a["data"]), calib_images=4, parity_images=4),
                 log=lambda *_: None)
    return out


class GroundTruthBackend:
    """A 'detector' that returns the video's ground-truth boxes: exercises tracking without a trained model."""

    name, precision, batch = "ground-truth", "-", 4
    names = {0: "car", 1: "truck", 2: "pedestrian", 3: "cyclist", 4: "traffic_light", 5: "stop_sign"}

    def __init__(self, gt: Path):
        self.rows: dict[int, list] = {}
        for line in Path(gt).read_text().splitlines():
            f, _, x, y, w, h, _, c, _ = line.split(",")
            self.rows.setdefault(int(f), []).append((float(x), float(y), float(w), float(h), int(c)))
        self.frame = 0

    def predict(self, images):
        out = []
        for _ in images:
            self.frame += 1
            r = np.array(self.rows.get(self.frame, []), dtype=float).reshape(-1, 5)
            out.append(Detections(np.c_[r[:, :2], r[:, :2] + r[:, 2:4]], np.full(len(r), 0.9), r[:, 4]))
        return out

    def describe(self):
        return {"backend": self.name, "precision": self.precision}
