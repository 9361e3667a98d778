"""Driving-scene generator benchmark: generation speed, and (--train-check) whether the set is learnable.

    python -m benchmarks.bench_driving_scenes                          # 2,000 images at 640x384 (target < 2 min)
    python -m benchmarks.bench_driving_scenes --train-check            # + yolo11n from yaml on 1,000 train images
    python -m benchmarks.bench_driving_scenes --train-check --seg      # + yolo11n-seg on the polygon labels

Speed: renders `--images` images (split like a real set: 70 % train, 15 % val, 15 % pool) with `--workers`
processes and reports wall time and images/s. Train check: generates `--n-train`/`--n-val` images, trains
yolo11n from `yolo11n.yaml` (and yolo11n-seg from `yolo11n-seg.yaml` with --seg) for `--epochs` at `--imgsz`
on CPU, and reports box mAP50 / mAP50-95 (mask mAP for seg) and per-class AP50 on val, plus how often the val
split's look-alike distractors draw a false positive (the hard negatives mining should remove).
Writes `bench.json` into `--out` and prints a table. The 1-minute load average is recorded: figures taken with a
load above the core count are slower than the machine can do.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def bench_speed(out: Path, images: int, width: int, height: int, workers: int, seed: int) -> dict:
    """Wall time of generating `images` images (one run, the set is deleted afterwards)."""
    import shutil

    from data_scripts.make_driving_scenes import SceneConfig, generate

    n_val = n_pool = int(images * 0.15)
    cfg = SceneConfig(n_train=images - n_val - n_pool, n_val=n_val, n_pool=n_pool, width=width, height=height,
                      seed=seed, workers=workers)
    target = out / "speed-set"
    shutil.rmtree(target, ignore_errors=True)
    load0 = _load()
    t0 = time.perf_counter()
    generate(cfg, target)
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (target / "det" / "images").rglob("*.jpg"))
    shutil.rmtree(target, ignore_errors=True)
    return {"images": images, "size": f"{width}x{height}", "workers": workers, "seconds": round(dt, 1),
            "images_per_s": round(images / dt, 1), "target_s": 120, "met": dt < 120,
            "jpeg_mb": round(size / 2**20, 1), "loadavg_1m_start": load0, "loadavg_1m_end": _load(),
            "cpu_count": os.cpu_count()}


def _distractor_fp(model, data_yaml: Path, imgsz: int, conf: float = 0.25) -> dict:
    """Share of val distractors that draw a false positive, and false positives per val image overall."""
    import numpy as np

    from data_scripts.road_render import NAMES

    root = data_yaml.parent
    meta = [json.loads(x) for x in (root / "meta" / "val.jsonl").read_text().splitlines()]
    hit = total = fps = 0
    for m in meta:
        img = root / "det" / "images" / "val" / m["image"]
        res = model.predict(str(img), imgsz=imgsz, conf=conf, device="cpu", verbose=False)[0]
        boxes = res.boxes.xyxy.cpu().numpy()
        classes = res.boxes.cls.cpu().numpy().astype(int)
        gt = [(NAMES.index(o["cls"]), np.array(o["box"], float)) for o in m["objects"]]
        false = [b for b, c in zip(boxes, classes, strict=True)
                 if not any(gc == c and _iou(b, gb) >= 0.5 for gc, gb in gt)]
        fps += len(false)
        for d in m["distractors"]:
            total += 1
            hit += any(_iou(b, np.array(d["box"])) >= 0.3 for b in false)
    return {"val_distractors": total, "distractors_with_fp": hit,
            "distractor_fp_share": round(hit / total, 3) if total else None,
            "fp_per_val_image": round(fps / max(len(meta), 1), 3), "conf": conf}


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _train_set(out: Path, n_train: int, n_val: int, width: int, height: int, seed: int) -> Path:
    from data_scripts.make_driving_scenes import SceneConfig, generate

    data_dir = out / f"train-set-{n_train}-{n_val}-{width}x{height}-s{seed}"
    if (data_dir / "data.yaml").is_file() and (data_dir / "config.json").is_file():
        return data_dir / "data.yaml"
    return generate(SceneConfig(n_train=n_train, n_val=n_val, n_pool=0, width=width, height=height, seed=seed),
                    data_dir)


def eval_weights(weights: Path, data: Path, imgsz: int, batch: int) -> dict:
    """Box mAP, per-class AP50 and distractor false positives of saved detection weights on `data`'s val."""
    from data_scripts.road_render import NAMES
    from shared.offline import yolo

    model = yolo().YOLO(str(weights))
    r = model.val(data=str(data), imgsz=imgsz, batch=batch, device="cpu", workers=0, plots=False,
                  project=str(weights.parent / "eval"), name="val", exist_ok=True, verbose=False)
    row = {"task": "detect", "weights": str(weights), "imgsz": imgsz,
           "box_map50": round(float(r.box.map50), 3), "box_map50_95": round(float(r.box.map), 3),
           "per_class_ap50": {NAMES[int(c)]: round(float(a), 3)
                              for c, a in zip(r.box.ap_class_index, r.box.ap50, strict=True)},
           "loadavg_1m_end": _load()}
    row.update(_distractor_fp(model, data, imgsz))
    return row


def train_check(out: Path, n_train: int, n_val: int, width: int, height: int, epochs: int, imgsz: int,
                batch: int, seed: int, seg: bool, detect: bool = True) -> list[dict]:
    """Train yolo11n (and yolo11n-seg) from yaml on a generated set; metrics on its val split."""
    from data_scripts.road_render import NAMES
    from shared.offline import yolo

    YOLO = yolo().YOLO
    data = _train_set(out, n_train, n_val, width, height, seed)
    rows = []
    for task, model_yaml, data_yaml in (("detect", "yolo11n.yaml", data),
                                        ("segment", "yolo11n-seg.yaml", data.with_name("data-seg.yaml"))):
        if (task == "segment" and not seg) or (task == "detect" and not detect):
            continue
        load0 = _load()
        t0 = time.perf_counter()
        model = YOLO(model_yaml)
        model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, workers=0, seed=seed,
                    deterministic=True, device="cpu", project=str(out / "runs"), name=task, exist_ok=True,
                    plots=False, verbose=False, amp=False, patience=0, val=False)
        train_s = time.perf_counter() - t0
        r = model.val(data=str(data_yaml), imgsz=imgsz, batch=batch, device="cpu", workers=0, plots=False,
                      project=str(out / "runs"), name=f"{task}-val", exist_ok=True, verbose=False)
        row = {"task": task, "model": model_yaml, "train_images": n_train, "val_images": n_val, "epochs": epochs,
               "imgsz": imgsz, "batch": batch, "train_minutes": round(train_s / 60, 1),
               "box_map50": round(float(r.box.map50), 3), "box_map50_95": round(float(r.box.map), 3),
               "per_class_ap50": {NAMES[int(c)]: round(float(a), 3) for c, a in zip(r.box.ap_class_index,
                                                                                   r.box.ap50, strict=True)},
               "loadavg_1m_start": load0, "loadavg_1m_end": _load()}
        if task == "segment":
            row["mask_map50"], row["mask_map50_95"] = round(float(r.seg.map50), 3), round(float(r.seg.map), 3)
        else:
            row.update(_distractor_fp(model, data, imgsz))
        rows.append(row)
    return rows


def _table(rows: list[dict], cols: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="Output folder (default: runs/bench-driving-scenes).")
    p.add_argument("--images", type=int, default=2000, help="Images to generate for the speed figure.")
    p.add_argument("--width", type=int, default=640, help="Image width in pixels.")
    p.add_argument("--height", type=int, default=384, help="Image height in pixels.")
    p.add_argument("--workers", type=int, default=2, help="Rendering processes.")
    p.add_argument("--seed", type=int, default=0, help="Random seed (data and training).")
    p.add_argument("--skip-speed", action="store_true", help="Only run the train check.")
    p.add_argument("--train-check", action="store_true", help="Also train yolo11n from yaml and report mAP.")
    p.add_argument("--seg", action="store_true", help="With --train-check: also train yolo11n-seg (mask mAP).")
    p.add_argument("--seg-only", action="store_true", help="With --train-check: train only yolo11n-seg.")
    p.add_argument("--n-train", type=int, default=1000, help="Train images for the train check.")
    p.add_argument("--n-val", type=int, default=200, help="Val images for the train check.")
    p.add_argument("--epochs", type=int, default=12, help="Training epochs for the train check.")
    p.add_argument("--imgsz", type=int, default=320, help="Training image size for the train check.")
    p.add_argument("--batch", type=int, default=16, help="Training batch size for the train check.")
    p.add_argument("--eval-weights", type=Path, default=None,
                   help="Evaluate these saved detection weights (e.g. a checkpoint of an earlier --train-check) "
                        "on the train-check set's val split instead of training.")
    a = p.parse_args()
    from shared.paths import runs_dir

    out = (a.out or runs_dir() / "bench-driving-scenes").resolve()
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if not a.skip_speed:
        result["speed"] = bench_speed(out, a.images, a.width, a.height, a.workers, a.seed)
        print(_table([result["speed"]], ["images", "size", "workers", "seconds", "images_per_s", "met",
                                         "loadavg_1m_start", "loadavg_1m_end"]))
    if a.eval_weights:
        data = _train_set(out, a.n_train, a.n_val, a.width, a.height, a.seed)
        result["eval_weights"] = eval_weights(a.eval_weights.resolve(), data, a.imgsz, a.batch)
        print(_table([result["eval_weights"]], ["weights", "box_map50", "box_map50_95", "distractor_fp_share",
                                                "fp_per_val_image", "loadavg_1m_end"]))
        print(f"per-class AP50: {result['eval_weights']['per_class_ap50']}")
    if a.train_check:
        result["train_check"] = train_check(out, a.n_train, a.n_val, a.width, a.height, a.epochs, a.imgsz,
                                            a.batch, a.seed, a.seg or a.seg_only, not a.seg_only)
        print(_table(result["train_check"], ["task", "train_images", "epochs", "imgsz", "train_minutes",
                                             "box_map50", "box_map50_95", "mask_map50", "mask_map50_95",
                                             "distractor_fp_share", "fp_per_val_image", "loadavg_1m_end"]))
        for r in result["train_check"]:
            print(f"{r['task']} per-class AP50: {r['per_class_ap50']}")
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out / 'bench.json'}")


if __name__ == "__main__":
    main()
