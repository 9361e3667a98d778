"""Deployment benchmark of the driving-scene detector: video FPS, INT8 vs FP32, export parity, pruning, tracking.

    python -m benchmarks.bench_deploy                 # full: 600 scenes, 6 epochs at 320 px (first run trains, ~1 h on 2 busy cores)
    python -m benchmarks.bench_deploy --short         # small data and model, ~2 min once cached (make demo)
    python -m benchmarks.bench_deploy --model runs/det-x --data scenes/data.yaml --video vid/video.mp4 --gt vid/gt.txt

One model (yolo11n from yaml, trained with Ultralytics on generated driving scenes and cached under the
output folder, unless --model is given) is exported to ONNX FP32 + INT8 (static QDQ, calibrated on training
images) at one image size, and measured on this machine against the issue's targets:

(a) video pipeline FPS: `detection.video.run_video` with the ONNX Runtime backend (decode thread, batched
    inference, ByteTrack, annotated mp4, MOT tracks, JSONL) vs Ultralytics' own PyTorch loop doing the same
    job (`model.track(source=video, stream=True)` + `Results.plot()` + an mp4 writer), same video, same imgsz,
    run interleaved (A, B, A, B...) and compared by medians. Target: ONNX >= 2x.
(b) INT8 vs FP32 ONNX latency (batch 1, interleaved, median) and mAP change. Target: >= 1.5x, <= 1.5 points.
(c) export parity: max box/score differences and mAP of PyTorch vs FP32 ONNX on the same letterboxed
    validation images. Target: within 0.5 mAP points.
(d) pruning: structured L1 channel pruning + fine-tuning: params, GFLOPs, latency (PyTorch and ONNX Runtime),
    mAP before/after.
(e) tracking: MOTA / IDF1 of each video run's tracks against the generated video's ground truth.

Writes <out>/bench_deploy.json (date, load averages, config, every row) and prints one table per part.
Data: `data_scripts.make_driving_scenes` / `make_driving_video` (the JSON names the generator).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]

FULL = {"n_train": 600, "n_val": 100, "epochs": 6, "more_epochs": 0, "imgsz": 320, "frames": 150, "rounds": 3, "calib": 64,
        "parity": 100, "prune_epochs": 2, "prune_ratio": 0.3, "lat_images": 32}
SHORT = {"n_train": 120, "n_val": 30, "epochs": 3, "more_epochs": 0, "imgsz": 256, "frames": 40, "rounds": 2, "calib": 16,
         "parity": 30, "prune_epochs": 1, "prune_ratio": 0.3, "lat_images": 8}


# --------------------------------------------------------------------------------------------- data, model
def make_scenes(out: Path, n_train: int, n_val: int, seed: int) -> tuple[Path, str]:
    """(data.yaml, generator name) of scenes from the project's driving-scene generator (cached in `out`)."""
    if (out / "data.yaml").is_file():
        return out / "data.yaml", (out / "GENERATOR").read_text().strip() if (out / "GENERATOR").is_file() else "?"
    from data_scripts.make_driving_scenes import SceneConfig, generate

    data = Path(generate(SceneConfig(n_train=n_train, n_val=n_val, n_pool=0, seed=seed), out))
    name = "data_scripts.make_driving_scenes"
    (out / "GENERATOR").write_text(name + "\n")
    return data, name


def make_video(out: Path, frames: int, seed: int) -> tuple[Path, Path, str]:
    """(video.mp4, gt.txt, generator name) of a generated driving video with MOTChallenge ground truth."""
    if (out / "GENERATOR").is_file():
        return out / "video.mp4", out / "gt.txt", (out / "GENERATOR").read_text().strip()
    from data_scripts.make_driving_video import VideoConfig, generate

    video, gt = generate(VideoConfig(frames=frames, seed=seed), out)
    name = "data_scripts.make_driving_video"
    (out / "GENERATOR").write_text(name + "\n")
    return Path(video), Path(gt), name


def train_model(data: Path, epochs: int, imgsz: int, seed: int, out: Path, more: int = 0) -> Path:
    """yolo11n from yaml trained with Ultralytics on `data` (cached in `out`).

    `more` > 0 continues the cached `epochs` model for `more` epochs (a fresh schedule, no warm-up): on a
    busy 2-core machine that lets a first result come early and a better model follow.
    """
    from shared.offline import yolo

    dest = out / f"yolo11n-e{epochs}-{imgsz}-s{seed}.pt"
    if more:
        cont = out / f"yolo11n-e{epochs}+{more}-{imgsz}-s{seed}.pt"
        if not cont.is_file():
            base = train_model(data, epochs, imgsz, seed, out)
            yolo().YOLO(str(base)).train(data=str(data), epochs=more, imgsz=imgsz, batch=16, workers=0, seed=seed,
                                         device="cpu", project=str(out / "train"), name="continue", exist_ok=True,
                                         plots=False, verbose=False, amp=False, warmup_epochs=0,
                                         close_mosaic=max(1, more // 4), patience=0)
            cont.write_bytes((out / "train" / "continue" / "weights" / "best.pt").read_bytes())
        return cont
    if dest.is_file():
        return dest

    model = yolo().YOLO("yolo11n.yaml")
    model.train(data=str(data), epochs=epochs, imgsz=imgsz, batch=16, workers=0, seed=seed, device="cpu",
                project=str(out / "train"), name="run", exist_ok=True, plots=False, verbose=False, amp=False,
                close_mosaic=max(1, epochs // 4), patience=0)
    dest.write_bytes((out / "train" / "run" / "weights" / "best.pt").read_bytes())
    return dest


# --------------------------------------------------------------------------------------------- (a) video FPS
def ultralytics_video(weights: Path, video: Path, output: Path, tracks: Path, imgsz: int, conf: float,
                      batch: int = 1) -> dict:
    """Ultralytics' own loop doing the job of `detection video`: track, draw, write mp4 + MOT lines."""
    import cv2

    from shared.offline import yolo

    model = yolo().YOLO(str(weights))
    model.predict(_first_frame(video), imgsz=imgsz, device="cpu", verbose=False)  # set up + warm up, untimed
    cpu0 = time.process_time()
    cap = cv2.VideoCapture(str(video))
    fps, w, h = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    lines, n = [], 0
    start = time.perf_counter()
    for r in model.track(source=str(video), stream=True, imgsz=imgsz, conf=conf, iou=0.7, device="cpu",
                         tracker="bytetrack.yaml", verbose=False, persist=True, batch=batch):
        n += 1
        writer.write(r.plot())
        b = r.boxes
        if b is not None and b.id is not None:
            for (x1, y1, x2, y2), c, t in zip(b.xyxy.tolist(), b.conf.tolist(), b.id.int().tolist(), strict=True):
                lines.append(f"{n},{t},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{c:.4f},-1,-1,-1")
    seconds = time.perf_counter() - start
    writer.release()
    cpu = time.process_time() - cpu0
    tracks.write_text("\n".join(lines) + "\n")
    return {"frames": n, "seconds": seconds, "fps": n / seconds, "cpu_s": cpu}


def ours_video(model: Path, video: Path, output: Path, tracks: Path, conf: float, batch: int,
               spin: bool = False) -> dict:
    from detection.backends import OnnxBackend
    from detection.video import run_video

    be = OnnxBackend(model, conf=conf, batch=batch, spin=spin)
    cpu0 = time.process_time()  # after the session is built, as Ultralytics' is set up before its clock starts
    s = run_video(be, video, output, tracks, tracker="bytetrack", batch=batch, progress=False, log=lambda *_: 0)
    return {"frames": s.frames_written, "seconds": s.seconds, "fps": s.fps, "stages": s.stage_seconds,
            "cpu_s": time.process_time() - cpu0,
            "input_shape": list(be.input_shape([_first_frame(video)]))}


def _first_frame(video: Path):
    import cv2

    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    return frame


def bench_video(variants: dict, video: Path, gt: Path, out: Path, rounds: int) -> list[dict]:
    """Every variant `rounds` times, interleaved; FPS medians and MOTA/IDF1 of the last run's tracks."""
    from detection.tracking_eval import evaluate_tracks

    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for r in range(rounds):
        for name, fn in variants.items():
            stem = name.replace(" ", "-")
            res = fn(out / f"{stem}.mp4", out / f"{stem}.tracks.txt")
            # CPU seconds of every thread of this process (model setup excluded): robust to other jobs' load
            res["cpu_ms_per_frame"] = res["cpu_s"] * 1000 / max(res["frames"], 1)
            res["loadavg_1m"] = os.getloadavg()[0]
            runs[name].append(res)
            print(f"  round {r + 1}/{rounds} {name}: {res['fps']:.1f} FPS, {res['cpu_ms_per_frame']:.1f} CPU ms/frame "
                  f"({res['frames']} frames, load {res['loadavg_1m']:.1f})", flush=True)
    rows = []
    for name, rs in runs.items():
        m = evaluate_tracks(gt, out / f"{name.replace(' ', '-')}.tracks.txt")
        rows.append({"variant": name, "fps_median": statistics.median(x["fps"] for x in rs),
                     "cpu_ms_per_frame": statistics.median(x["cpu_ms_per_frame"] for x in rs),
                     "fps_runs": [round(x["fps"], 2) for x in rs], "frames": rs[-1]["frames"],
                     "input_shape": rs[-1].get("input_shape"), "stages_last": rs[-1].get("stages"),
                     "loadavg_1m": [round(x["loadavg_1m"], 2) for x in rs],
                     "mota": m["mota"], "idf1": m["idf1"], "id_switches": m["num_switches"],
                     "track_recall": m["recall"], "track_precision": m["precision"]})
    return rows


# --------------------------------------------------------------------------------------------- (b) latency
def bench_latency(models: dict[str, Path], images: list, rounds: int, threads: int | None = None,
                  spin: bool = False) -> list[dict]:
    """Median batch-1 latency (ms) of each ONNX model over `images`, models interleaved image by image."""
    import numpy as np

    from detection.backends import OnnxBackend, preprocess

    backends = {k: OnnxBackend(p, threads=threads, spin=spin) for k, p in models.items()}
    xs = [preprocess([img], be.input_shape([img]))[0] for img in images for be in list(backends.values())[:1]]
    times: dict[str, list[float]] = {k: [] for k in backends}
    cpu: dict[str, list[float]] = {k: [] for k in backends}
    for be in backends.values():
        be.raw(xs[0])
    for _ in range(rounds):
        for x in xs:
            for k, be in backends.items():
                t, c = time.perf_counter(), time.process_time()
                be.raw(x)
                times[k].append((time.perf_counter() - t) * 1000)
                cpu[k].append((time.process_time() - c) * 1000)
    return [{"model": k, "precision": backends[k].precision, "input": list(xs[0].shape),
             "latency_ms_median": float(np.median(v)), "latency_ms_p90": float(np.percentile(v, 90)),
             "cpu_ms_median": float(np.median(cpu[k]))} for k, v in times.items()]


# --------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--short", action="store_true", help="small data, model and video (~2 min once cached)")
    ap.add_argument("--out", default=None, help="output folder (default .cache/bench-deploy[-short])")
    ap.add_argument("--model", default=None, help="a trained .pt / run dir instead of training one")
    ap.add_argument("--data", default=None, help="data.yaml instead of generating scenes")
    ap.add_argument("--video", default=None, help="video instead of generating one (needs --gt for tracking)")
    ap.add_argument("--gt", default=None, help="MOTChallenge gt.txt of --video")
    ap.add_argument("--imgsz", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--more-epochs", type=int, default=None, help="continue the cached model this many epochs")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved repetitions per measurement")
    ap.add_argument("--prune-epochs", type=int, default=None, help="fine-tuning epochs after pruning")
    ap.add_argument("--batch", type=int, default=4, help="frames per inference call in the batched video variants")
    ap.add_argument("--parts", default="video,int8,parity,prune", help="comma-separated subset to run")
    ap.add_argument("--conf", type=float, default=0.25)
    args = ap.parse_args()

    from detection.backends import resolve_model
    from detection.export import ExportConfig, export_model
    from detection.parity import load_split
    from shared.reporting import text_table, write_json
    from shared.seeding import seed_everything

    p = dict(SHORT if args.short else FULL)
    for k in ("imgsz", "epochs", "more_epochs", "rounds", "prune_epochs"):
        if getattr(args, k) is not None:
            p[k] = getattr(args, k)
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    out = Path(args.out or ROOT / ".cache" / ("bench-deploy-short" if args.short else "bench-deploy"))
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)
    t_start = time.perf_counter()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg_start": os.getloadavg(),
              "cpu_count": os.cpu_count(), "settings": p, "seed": args.seed, "short": args.short}

    # data, video and model
    if args.data:
        data, result["scenes"] = Path(args.data), f"given: {args.data}"
    else:
        data, result["scenes"] = make_scenes(out / f"scenes-{p['n_train']}-{args.seed}", p["n_train"], p["n_val"],
                                             args.seed)
    if args.video:
        video, gt, result["video"] = Path(args.video), Path(args.gt) if args.gt else None, f"given: {args.video}"
    else:
        video, gt, result["video"] = make_video(out / f"video-{p['frames']}-{args.seed}", p["frames"], args.seed)
    print(f"scenes: {data} ({result['scenes']}); video: {video} ({result['video']})", flush=True)
    t = time.perf_counter()
    weights = resolve_model(args.model) if args.model else train_model(data, p["epochs"], p["imgsz"], args.seed, out,
                                                                       p["more_epochs"])
    result["model"] = {"weights": str(weights), "train_or_load_s": round(time.perf_counter() - t, 1)}
    print(f"model: {weights} ({result['model']['train_or_load_s']} s)", flush=True)

    # export: FP32 + INT8 with the parity check, static input of the shape Ultralytics' rectangular predict uses
    # for this video (imgsz wide, height rounded up to the stride), so both pipelines see the same pixels
    from detection.backends import input_shape_for

    frame = _first_frame(video)
    h, w = input_shape_for([frame], p["imgsz"])
    height = h if w >= h else 0
    exp = out / f"export-{weights.stem}-{h}x{w}"
    if not (exp / "manifest.json").is_file():
        export_model(weights, exp, ExportConfig(imgsz=p["imgsz"], height=height, precision="int8", data=str(data),
                                                calib_images=p["calib"], parity_images=p["parity"], seed=args.seed))
    import json

    parity = json.loads((exp / "manifest.json").read_text())["metrics"]["parity"]
    result["export_dir"] = str(exp)

    if "parity" in parts or "int8" in parts:
        rows = [{"model": "pytorch", **parity["pytorch"]}]
        rows += [{"model": f"onnx {k}", **v} for k, v in parity.items() if k in ("fp32", "int8")]
        result["parity"] = {"images": parity["images"], "imgsz": parity["imgsz"], "rows": rows}
        print(f"\n(c) parity on {parity['images']} validation images at {parity['imgsz']} px "
              "(same letterboxed input; target |delta mAP50-95| <= 0.005 for fp32):")
        print(text_table(rows, ["model", "map50", "map50_95", "delta_map50_95", "delta_map50", "max_box_diff_px",
                                "max_score_diff", "within_tolerance"]))

    if "int8" in parts:
        _, images, _ = load_split(data, "val", p["lat_images"], args.seed)
        rows = bench_latency({"fp32": exp / "model.onnx", "int8": exp / "model_int8.onnx"}, images, p["rounds"])
        speed = rows[0]["latency_ms_median"] / rows[1]["latency_ms_median"]
        cpu_speed = rows[0]["cpu_ms_median"] / rows[1]["cpu_ms_median"]
        drop = (parity["fp32"]["map50_95"] - parity["int8"]["map50_95"]) * 100
        result["int8"] = {"rows": rows, "speedup": speed, "cpu_cost_ratio": cpu_speed,
                          "map50_95_points_lost_vs_fp32": drop,
                          "loadavg_1m": os.getloadavg()[0]}
        print(f"\n(b) INT8 vs FP32 ONNX Runtime, batch 1, {len(images)} images x {p['rounds']} rounds interleaved:")
        print(text_table(rows, ["model", "precision", "input", "latency_ms_median", "latency_ms_p90",
                                "cpu_ms_median"], digits=2))
        print(f"INT8 speed-up {speed:.2f}x wall, {cpu_speed:.2f}x CPU time (target >= 1.5x); mAP50-95 lost vs FP32 ONNX {drop:.2f} points "
              "(target <= 1.5)")

    if "video" in parts:
        vid_out = out / "video-runs"
        vid_out.mkdir(exist_ok=True)
        # batched variants need a model exported with that fixed batch (static shapes are fastest on ORT CPU)
        exp_b = out / f"export-{weights.stem}-{h}x{w}-b{args.batch}"
        if args.batch > 1 and not (exp_b / "manifest.json").is_file():
            export_model(weights, exp_b, ExportConfig(imgsz=p["imgsz"], height=height, batch=args.batch,
                                                      precision="int8", data=str(data), calib_images=p["calib"],
                                                      parity_images=0, seed=args.seed))
        b = args.batch
        variants = {
            "ultralytics-pytorch b1": lambda o, tr: ultralytics_video(weights, video, o, tr, p["imgsz"], args.conf),
            "onnx-fp32 b1": lambda o, tr: ours_video(exp / "model.onnx", video, o, tr, args.conf, 1),
            "onnx-int8 b1": lambda o, tr: ours_video(exp / "model_int8.onnx", video, o, tr, args.conf, 1),
            "onnx-int8 b1 spinning": lambda o, tr: ours_video(exp / "model_int8.onnx", video, o, tr, args.conf, 1,
                                                              spin=True),  # ORT's default thread behaviour
        }
        if b > 1:
            variants |= {
                f"ultralytics-pytorch b{b}": lambda o, tr: ultralytics_video(weights, video, o, tr, p["imgsz"],
                                                                             args.conf, b),
                f"onnx-fp32 b{b}": lambda o, tr: ours_video(exp_b / "model.onnx", video, o, tr, args.conf, b),
                f"onnx-int8 b{b}": lambda o, tr: ours_video(exp_b / "model_int8.onnx", video, o, tr, args.conf, b),
            }
        print(f"\n(a) video pipeline on {video.name}, {p['rounds']} interleaved rounds:", flush=True)
        rows = bench_video(variants, video, gt, vid_out, p["rounds"]) if gt else []
        base, base_cpu = rows[0]["fps_median"], rows[0]["cpu_ms_per_frame"]  # Ultralytics at batch 1: its default
        for r in rows:
            r["fps_vs_ultralytics_b1"] = r["fps_median"] / base
            r["cpu_cost_ratio_vs_ultralytics_b1"] = base_cpu / r["cpu_ms_per_frame"]
        result["video_fps"] = {"rows": rows, "imgsz": p["imgsz"], "batch": args.batch}
        print(text_table(rows, ["variant", "fps_median", "fps_vs_ultralytics_b1", "cpu_ms_per_frame",
                                "cpu_cost_ratio_vs_ultralytics_b1", "frames", "input_shape", "mota", "idf1",
                                "id_switches"], digits=3))
        print("target: onnx / ultralytics FPS >= 2.0 (wall clock); cpu_cost_ratio = Ultralytics' CPU time per frame / "
              "this variant's (all threads; less sensitive to other jobs); (e) MOTA/IDF1 vs the video's ground truth")

    if "prune" in parts:
        from detection.pruning import prune_and_finetune

        pdir = out / f"pruned-{weights.stem}-r{p['prune_ratio']}-e{p['prune_epochs']}"
        if not (pdir / "prune.json").is_file():
            prune_and_finetune(weights, data, pdir, p["prune_ratio"], p["prune_epochs"], p["imgsz"], args.seed)
        rows = json.loads((pdir / "prune.json").read_text())["rows"]
        pexp = pdir / "export"
        if not (pexp / "manifest.json").is_file():
            export_model(pdir / "weights" / "best.pt", pexp, ExportConfig(imgsz=p["imgsz"], height=height,
                                                                           parity_images=0))
        _, images, _ = load_split(data, "val", p["lat_images"], args.seed)
        lat = bench_latency({"before": exp / "model.onnx", "after": pexp / "model.onnx"}, images, p["rounds"])
        from detection.pruning import torch_latency_ms
        from shared.offline import yolo

        # PyTorch latency again in this run (prune.json keeps the one measured right after fine-tuning)
        nets = {k: yolo().YOLO(str(w)).model.float().eval().fuse()
                for k, w in (("before", weights), ("after", pdir / "weights" / "best.pt"))}
        torch_lat = torch_latency_ms(nets, p["imgsz"], repeats=40)
        for r, lr in zip(rows, lat, strict=True):
            r["latency_ms_onnx"] = lr["latency_ms_median"]
            r["latency_ms_torch_at_prune"], r["latency_ms_torch"] = r["latency_ms_torch"], torch_lat[r["model"]]
        result["pruning_loadavg_1m"] = os.getloadavg()[0]
        result["pruning"] = {"rows": rows, "ratio": p["prune_ratio"], "fine_tune_epochs": p["prune_epochs"],
                             "dir": str(pdir)}
        print(f"\n(d) structured L1 pruning ({p['prune_ratio']:.0%} channels) + {p['prune_epochs']} epochs "
              f"fine-tuning, {p['imgsz']} px, batch 1:")
        print(text_table(rows, ["model", "params", "gflops", "latency_ms_torch", "latency_ms_onnx", "map50",
                                "map50_95"], digits=4))

    result["loadavg_end"] = os.getloadavg()
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    path = write_json(result, out / "bench_deploy.json")
    print(f"\nload average start {result['loadavg_start'][0]:.2f}, end {result['loadavg_end'][0]:.2f} "
          f"(2 cores); {result['seconds']} s; json: {path}")


if __name__ == "__main__":
    main()
