"""A trained detector on real road images: hard-negative mining before/after, EigenCAM examples, video figures.

    python -m benchmarks.bench_detection_real --model runs/bench-transfer/scratch-tuned-600/model

Uses the development split written by `benchmarks.bench_detection_transfer` (OUT/highway-dev/data.yaml:
train = 75 % of the real training images, val = the other 25 % held out, test = the data set's own val split).
- Mining: `detection.mining.mine` with the held-out training images as the labelled pool (never the reported
  split), one round, fine-tuned from `--model`; the control fine-tunes the same model on the training images
  alone with the same schedule (what mining adds beyond more steps). All evaluated on the reported split.
- Explain: EigenCAM heatmaps for the first images of the reported split, and the false-positive mode on it.
- Video: `detection video` over the reported split's images as a 5 fps frame sequence (ByteTrack).
CPU seconds (this process, detection.budget.cpu_seconds) are recorded per part with the load average.

Writes OUT/real/bench_detection_real.json and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["model", "fp_per_image", "recall", "precision", "fp_at_base_recall", "box_map50", "box_map50_95",
           "rare_ap50", "rare_recall"]


def _split_dir(data: Path, split: str) -> Path:
    from detection.datasets import read_data_yaml

    spec, _ = read_data_yaml(data)
    return spec.splits[split][0]


def _timed(fn):
    from detection.budget import cpu_seconds

    c0, t0, l0 = cpu_seconds(), time.perf_counter(), os.getloadavg()[0]
    out = fn()
    return out, {"cpu_s": round(cpu_seconds() - c0, 1), "wall_s": round(time.perf_counter() - t0, 1),
                 "load_avg_1min": [round(l0, 2), round(os.getloadavg()[0], 2)]}


def run_mining(model: Path, data: Path, out: Path, imgsz: int, epochs: int, seed: int, control: bool,
               conf: float) -> dict:
    from detection.backends import resolve_model
    from detection.evaluate import EvalConfig, evaluate
    from detection.mining import MineConfig, mine, table_row
    from detection.train import TrainConfig, train

    ft = TrainConfig(preset="light", epochs=epochs, imgsz=imgsz, optimizer="AdamW", lr0=0.0005, warmup_epochs=0.0,
                     close_mosaic=1, nominal_batch=16, seed=seed)
    ecfg = EvalConfig(split="test", imgsz=imgsz, conf=conf)
    pool = _split_dir(data, "val")
    done = out / "mine" / "metrics.json"
    if done.is_file():  # a finished mining run of an earlier call: reuse it (its cost was recorded then)
        res, cost = json.loads(done.read_text()), json.loads((out / "mine" / "cost.json").read_text())
    else:
        res, cost = _timed(lambda: mine(model, data, MineConfig(rounds=1, conf=conf, finetune=ft), ecfg, pool,
                                        False, out / "mine", log=print))
        (out / "mine" / "cost.json").write_text(json.dumps(cost))
    rows = res["table"]
    record = {"mining": {k: res[k] for k in ("pool", "split", "conf", "rare_classes", "summary")},
              "rounds": [{k: v for k, v in r.items() if k != "metrics"} for r in res["rounds"]], "cost": cost}
    if control:
        def ctl():
            r = train(data, dataclasses.replace(ft, model=str(resolve_model(model))), out / "control", log=print)
            cfg = dataclasses.replace(ecfg, rare_classes=res["rare_classes"])
            return evaluate(r.weights, data, cfg, out / "control-eval", log=print)

        ev, ccost = _timed(ctl)
        rows.insert(1, table_row("control (fine-tuned, no mining)", ev, rows[0]["recall"]))
        record["control_cost"] = ccost
    record["table"] = rows
    return record


def run_explain(model: Path, data: Path, out: Path, imgsz: int, conf: float) -> dict:
    from detection.explain import ExplainConfig, explain_images

    images = sorted(_split_dir(data, "test").glob("*.jpg"))
    normal, c1 = _timed(lambda: explain_images(model, images[:8], out / "explain", ExplainConfig(imgsz=imgsz, conf=conf)))
    fps, c2 = _timed(lambda: explain_images(model, images, out / "explain-fp", ExplainConfig(imgsz=imgsz, conf=conf,
                                                                                      max_images=12),
                                            false_positives=True))
    return {"examples": [r["output"] for r in normal], "false_positive_images": len(fps),
            "false_positive_examples": [{k: r[k] for k in ("output", "false_positives", "fp_confidence", "missed")}
                                        for r in fps[:6]], "cost_examples": c1, "cost_fp_mode": c2}


def run_video_part(model: Path, data: Path, out: Path, imgsz: int, conf: float) -> dict:
    from detection.backends import load_backend
    from detection.video import run_video

    frames = _split_dir(data, "test")
    be = load_backend(model, "pytorch", imgsz=imgsz, batch=1, conf=conf)
    result = {}
    # ByteTrack starts tracks only from detections >= its track_high_thresh (0.25): without the tracker every
    # detection >= conf is drawn, which is what a weakly confident detector can show
    for tracker in ("bytetrack", None):
        name = tracker or "no-tracker"
        s, cost = _timed(lambda t=tracker, n=name: run_video(be, str(frames), out / "video" / f"real-{n}.mp4",
                                                             out / "video" / f"real-{n}.tracks.txt" if t else None,
                                                             None, t, 1, 5.0, None, False))
        lines = [json.loads(x) for x in (out / "video" / f"real-{name}.jsonl").read_text().splitlines() if x.strip()]
        dets = [len(x.get("objects", [])) for x in lines]
        result[name] = {"frames": s.frames_written, "size": [s.width, s.height], "fps_wall": round(s.fps, 2),
                        "track_ids": s.tracks if tracker else None,
                        "detections_per_frame": round(sum(dets) / max(len(dets), 1), 2),
                        "frames_with_detections": sum(d > 0 for d in dets), "stage_seconds": s.stage_seconds,
                        "cpu_ms_per_frame": round(1000 * cost["cpu_s"] / max(s.frames_written, 1), 1),
                        "conf": conf, "cost": cost}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="run directory trained on OUT/highway-dev")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-transfer")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs of mining and its control")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--conf", type=float, default=0.05,
                    help="operating and mining confidence (a detector trained for minutes is rarely more confident)")
    ap.add_argument("--part", action="append", choices=("mining", "explain", "video"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from shared.reporting import text_table, write_json
    from shared.seeding import seed_everything

    seed_everything(args.seed)
    data = args.out.resolve() / "highway-dev" / "data.yaml"
    if not data.is_file():
        raise SystemExit(f"{data} does not exist; run python -m benchmarks.bench_detection_transfer first")
    out = args.out.resolve() / "real"
    parts = args.part or ["mining", "explain", "video"]
    runners = {"mining": lambda: run_mining(args.model, data, out, args.imgsz, args.epochs, args.seed,
                                            not args.no_control, args.conf),
               "explain": lambda: run_explain(args.model, data, out, args.imgsz, args.conf),
               "video": lambda: run_video_part(args.model, data, out, args.imgsz, args.conf)}
    for part in parts:  # one file per part, so parts can run in parallel processes
        write_json({"model": str(args.model), **runners[part]()}, out / f"{part}.json")
    result = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))
              if p.stem in ("mining", "explain", "video")}
    path = out / "bench_detection_real.json"
    result.update(date=dt.date.today().isoformat(), model=str(args.model),
                  machine=f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
                  command="python -m benchmarks.bench_detection_real " + " ".join(argv or sys.argv[1:]))
    write_json(result, path)
    if "mining" in result:
        print(text_table(result["mining"]["table"], COLUMNS, digits=3))
    for name, v in result.get("video", {}).items():
        if isinstance(v, dict) and "frames" in v:
            print(name, {k: v[k] for k in ("frames", "fps_wall", "track_ids", "detections_per_frame",
                                           "cpu_ms_per_frame")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
