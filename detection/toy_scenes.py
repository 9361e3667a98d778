"""Small stand-in data for the deployment tests and benchmarks: toy road scenes, a toy video, a cached model.

The real generators are `data_scripts.make_driving_scenes` / `make_driving_video`; deployment code
only needs *some* YOLO data set and *some* video with MOTChallenge ground truth, so this module makes a tiny
one in a second and uses the real generators when they are installed (`scenes()` / `video()`).

Toy scenes: flat road, horizon, coloured boxes for the six classes (car, truck, pedestrian, cyclist,
traffic_light, stop_sign) with distinct shapes and colours so a yolo11n learns them in a few CPU minutes.
Toy video: the same objects moving on straight lines, entering and leaving the frame; `gt.txt` in
MOTChallenge layout `frame,id,x,y,w,h,conf,class,visibility` (frames from 1, pixels).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

NAMES = ["car", "truck", "pedestrian", "cyclist", "traffic_light", "stop_sign"]
# (min w, max w) as a share of image width, aspect h/w, BGR colour
_LOOK = {
    0: ((0.08, 0.20), 0.6, (40, 40, 200)),
    1: ((0.15, 0.30), 0.9, (200, 120, 30)),
    2: ((0.025, 0.05), 2.6, (60, 200, 240)),
    3: ((0.04, 0.07), 1.5, (200, 60, 200)),
    4: ((0.02, 0.035), 2.4, (30, 30, 30)),
    5: ((0.04, 0.07), 1.0, (20, 20, 230)),
}


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    horizon = int(h * rng.uniform(0.35, 0.5))
    sky = rng.integers(120, 230)
    img[:horizon] = (sky, sky * 0.9, sky * 0.7)
    img[horizon:] = rng.integers(70, 110)
    cv2.line(img, (w // 2, horizon), (w // 2 - w // 6, h), (230, 230, 230), max(1, w // 160))
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _draw(img: np.ndarray, cls: int, x1: float, y1: float, x2: float, y2: float) -> None:
    colour = _LOOK[cls][2]
    p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
    if cls == 5:  # stop sign: red octagon-ish disc with a white bar
        c = ((p1[0] + p2[0]) // 2, (p1[1] + p2[1]) // 2)
        cv2.circle(img, c, max(1, (p2[0] - p1[0]) // 2), colour, -1)
        cv2.line(img, (p1[0] + 2, c[1]), (p2[0] - 2, c[1]), (255, 255, 255), 1)
        return
    cv2.rectangle(img, p1, p2, colour, -1)
    if cls == 4:  # traffic light: three lamps
        cx, hh = (p1[0] + p2[0]) // 2, (p2[1] - p1[1])
        for k, lamp in enumerate(((0, 0, 255), (0, 200, 255), (0, 255, 0))):
            cv2.circle(img, (cx, p1[1] + hh * (2 * k + 1) // 6), max(1, (p2[0] - p1[0]) // 3), lamp, -1)
    elif cls in (0, 1):  # windows / cab
        cv2.rectangle(img, (p1[0] + 2, p1[1] + 2), (p2[0] - 2, (p1[1] + p2[1]) // 2), (210, 200, 150), -1)
    elif cls == 3:  # wheels
        r = max(1, (p2[0] - p1[0]) // 3)
        cv2.circle(img, (p1[0] + r, p2[1] - r), r, (0, 0, 0), 1)
        cv2.circle(img, (p2[0] - r, p2[1] - r), r, (0, 0, 0), 1)


def _random_box(rng: np.random.Generator, cls: int, w: int, h: int) -> tuple[float, float, float, float]:
    (lo, hi), aspect, _ = _LOOK[cls]
    bw = rng.uniform(lo, hi) * w
    bh = min(bw * aspect, 0.8 * h)
    x1 = rng.uniform(0, w - bw)
    y1 = rng.uniform(0.3 * h, h - bh) if cls != 4 else rng.uniform(0.02 * h, 0.4 * h)
    return x1, y1, x1 + bw, y1 + bh


def make_toy_scenes(out: str | Path, n_train: int = 200, n_val: int = 50, width: int = 320, height: int = 192,
                    seed: int = 0) -> Path:
    """Write a YOLO data set (images/ and labels/ per split, data.yaml) and return the data.yaml path."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = _background(rng, width, height)
            lines = []
            for _ in range(int(rng.integers(0, 7))):
                cls = int(rng.choice(6, p=[0.35, 0.15, 0.2, 0.12, 0.1, 0.08]))
                x1, y1, x2, y2 = _random_box(rng, cls, width, height)
                _draw(img, cls, x1, y1, x2, y2)
                lines.append(f"{cls} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                             f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
            cv2.imwrite(str(out / "images" / split / f"{i:05d}.jpg"), img)
            (out / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(NAMES))
    data = out / "data.yaml"
    data.write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data


def make_toy_video(out: str | Path, frames: int = 60, width: int = 320, height: int = 192, fps: float = 10.0,
                   objects: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """Write `out/video.mp4` and `out/gt.txt` (MOTChallenge); objects move linearly and leave the frame."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bg = _background(rng, width, height)
    tracks = []
    for tid in range(1, objects + 1):
        cls = int(rng.choice([0, 0, 1, 2, 3, 5]))
        x1, y1, x2, y2 = _random_box(rng, cls, width, height)
        start = int(rng.integers(0, frames // 2))
        vx = rng.uniform(1.0, 3.5) * rng.choice([-1, 1]) * width / 320
        tracks.append((tid, cls, x1, y1, x2 - x1, y2 - y1, start, vx))
    path = out / "video.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    gt = []
    for f in range(frames):
        img = bg.copy()
        for tid, cls, x, y, bw, bh, start, vx in tracks:
            if f < start:
                continue
            xf = x + vx * (f - start)
            if xf + bw < 0 or xf > width:
                continue
            _draw(img, cls, xf, y, xf + bw, y + bh)
            cx1, cx2 = max(xf, 0), min(xf + bw, width)
            gt.append(f"{f + 1},{tid},{cx1:.1f},{y:.1f},{cx2 - cx1:.1f},{bh:.1f},1,{cls},1.0")
        writer.write(img)
    writer.release()
    (out / "gt.txt").write_text("\n".join(gt) + "\n")
    return path, out / "gt.txt"


def scenes(out: str | Path, n_train: int = 200, n_val: int = 50, seed: int = 0, width: int = 320,
           height: int = 192) -> Path:
    """A data.yaml of generated scenes: the project's driving-scene generator if present, else toy scenes."""
    out = Path(out)
    if (out / "data.yaml").is_file():
        return out / "data.yaml"
    return make_toy_scenes(out, n_train, n_val, width, height, seed)


def train_cached(data_yaml: str | Path, epochs: int, imgsz: int, seed: int = 0, key: str = "toy") -> Path:
    """Train yolo11n (from yaml) once on `data_yaml` and cache `best.pt` under .cache/deploy-models/."""
    from shared.offline import yolo
    from shared.paths import cache_dir

    tag = hashlib.sha256(json.dumps([key, str(data_yaml), epochs, imgsz, seed]).encode()).hexdigest()[:12]
    dest = cache_dir() / "deploy-models" / f"{key}-e{epochs}-s{imgsz}-{tag}.pt"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    project = dest.parent / f"train-{tag}"
    model = yolo().YOLO("yolo11n.yaml")
    model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=16, workers=0, seed=seed, device="cpu",
                project=str(project), name="run", exist_ok=True, plots=False, verbose=False, amp=False,
                fliplr=0.5, mosaic=1.0, close_mosaic=max(1, epochs // 5), patience=0)
    shutil.copyfile(project / "run" / "weights" / "best.pt", dest)
    return dest
