"""detection CLI commands: `export`, `prune`, `bench`, `video`, `track-eval` (deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detection.cli import app
from shared.cli_common import QUIET_HELP, ConfigOpt, SeedOpt, SetOpt, friendly_errors

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
ModelArg = Annotated[str, typer.Option(
    "--model", "-m", help="A run directory written by `detection train`, a .pt file, or (video/bench) an .onnx "
                          "file or a folder written by `detection export`.")]


@app.command(epilog=("Example: detection export -m runs/demo/det/base -o runs/my-export --data "
                     "runs/demo/scenes/data.yaml --imgsz 256 --precision int8"))
@friendly_errors(ValueError)
def export(
    model: ModelArg,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for model.onnx, model_fp16/int8.onnx, trtexec.sh and manifest.json "
                            "(default: runs/export-<time>).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format; only 'onnx' (TensorRT builds from it).")] = "onnx",
    dynamic: Annotated[bool | None, typer.Option(
        "--dynamic/--static", help="Dynamic batch/height/width input, or a fixed [batch, 3, imgsz, imgsz].")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Input side in pixels, a multiple of 32 (default 640).")] = None,
    height: Annotated[int | None, typer.Option(
        help="Static input height when it should differ from --imgsz (the width), e.g. --imgsz 320 --height 192 "
             "for 16:9 video: fewer pixels than a square, the shape Ultralytics' own predict uses.")] = None,
    precision: Annotated[str | None, typer.Option(
        help="fp32, fp16 (for GPUs) or int8 (static quantization calibrated on --data). FP32 is always written "
             "too, as the parity reference.")] = None,
    calib_images: Annotated[int | None, typer.Option(
        help="INT8 calibration images drawn from the data set's train split (default 64).")] = None,
    int8_target: Annotated[str | None, typer.Option(
        help="cpu: U8S8 Q/DQ, fast on ONNX Runtime CPU; tensorrt: symmetric S8S8 Q/DQ that TensorRT accepts.")] = None,
    data: Annotated[Path | None, typer.Option(
        help="data.yaml: validation images for the parity check, training images for INT8 calibration.")] = None,
    parity_images: Annotated[int | None, typer.Option(
        help="Validation images for the parity check (0 skips it; default 50).")] = None,
    batch: Annotated[int | None, typer.Option(help="Fixed batch of a static model (default 1).")] = None,
    opset: Annotated[int | None, typer.Option(
        help="ONNX opset (default 17: TensorRT 8.6 parses up to 17, TensorRT 10 too).")] = None,
    seed: SeedOpt = 0,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Export a trained detector to ONNX (FP32 + optional FP16/INT8), check parity, write the trtexec command.

    The parity check feeds the same letterboxed validation images to PyTorch and ONNX Runtime and prints the
    max box and score differences and the mAP of both; it fails (exit 1) when they differ by more than 0.5
    mAP points. Config keys (--config / --set): imgsz, height, dynamic, batch, opset, simplify, precision,
    calib_images, int8_target, data, parity_images, seed.
    """
    from detection.export import ExportConfig, export_model
    from shared.config import load_config, to_dict
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.runs import new_run_dir

    if fmt != "onnx":
        raise ValueError(f"--format {fmt} is not supported; use onnx (TensorRT engines are built from it)")
    cfg = load_config(ExportConfig, config, set_)
    flags = {"dynamic": dynamic, "imgsz": imgsz, "height": height, "precision": precision,
             "calib_images": calib_images,
             "int8_target": int8_target, "data": str(data) if data else None, "parity_images": parity_images,
             "batch": batch, "opset": opset}
    cfg = ExportConfig(**{**to_dict(cfg), **{k: v for k, v in flags.items() if v is not None}, "seed": seed})
    from shared.run_log import chatter_to

    out_dir = Path(out or new_run_dir(runs_dir(), "export"))
    with chatter_to(out_dir / "log.txt" if quiet else None):
        result = export_model(model, out_dir, cfg, log=typer.echo)
        for p, f in result.models.items():
            typer.echo(f"{p:5s} {f}")
        typer.echo(f"trtexec commands: {result.trtexec}" + ("" if result.engines else "  (no TensorRT/GPU here)"))
        if result.parity:
            rows = [{"model": "pytorch", **result.parity["pytorch"]}]
            rows += [{"model": k, **v} for k, v in result.parity.items() if isinstance(v, dict) and k != "pytorch"]
            typer.echo(f"\nparity on {result.parity['images']} validation images at {result.parity['imgsz']} px "
                       "(same letterboxed input):")
            typer.echo(text_table(rows, ["model", "map50", "map50_95", "delta_map50_95", "max_box_diff_px",
                                         "max_score_diff", "within_tolerance"]))
    if quiet:
        par = result.parity or {}
        checks = ", ".join(f"{k} mAP50-95 {v['map50_95']:.3f} ({v['delta_map50_95']:+.3f})" for k, v in par.items()
                           if isinstance(v, dict) and k != "pytorch")
        typer.echo(f"ONNX -> {out_dir}: {', '.join(result.models)}"
                   + (f"; parity on {par['images']} images: PyTorch mAP50-95 {par['pytorch']['map50_95']:.3f}, "
                      f"{checks}" if par else ""))
    if result.parity and not result.parity["fp32"]["within_tolerance"]:
        typer.secho("error: FP32 ONNX mAP differs from PyTorch by more than 0.5 points", fg="red", err=True)
        raise typer.Exit(1)


@app.command(epilog=("Example: detection prune -m runs/demo/det/base --data runs/demo/scenes/data.yaml "
                     "--ratio 0.3 --epochs 3 --imgsz 256"))
@friendly_errors(ValueError)
def prune(
    model: ModelArg,
    data: Annotated[Path, typer.Option(help="data.yaml to fine-tune on (train split) and score on (val split).")],
    ratio: Annotated[float, typer.Option(
        help="Share of the channels removed in every prunable group (0-1), ranked by L1 norm.")] = 0.3,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after pruning.")] = 10,
    imgsz: Annotated[int, typer.Option(help="Training / measuring size in pixels (a multiple of 32).")] = 320,
    batch: Annotated[int, typer.Option(help="Fine-tuning batch size.")] = 16,
    lr0: Annotated[float, typer.Option(help="Fine-tuning learning rate, AdamW (small: the weights are trained).")]
    = 0.001,
    val_images: Annotated[int | None, typer.Option(help="Validation images for mAP (default: all).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run directory to write (default: runs/prune-<time>); `detection export -m` takes it.")]
    = None,
    seed: SeedOpt = 0,
) -> None:
    """Structured L1 channel pruning + fine-tuning; prints parameters, GFLOPs, latency and mAP before/after.

    Whole channels are removed (a smaller dense network, faster on every backend), then the pruned network is
    fine-tuned. The output is a run directory (weights/best.pt, prune.json, prune.md, manifest.json) that
    `detection export`, `bench` and `video` accept like any trained model.
    """
    from detection.backends import resolve_model
    from detection.pruning import prune_and_finetune
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.runs import new_run_dir

    if imgsz % 32 or imgsz < 32:
        raise ValueError(f"--imgsz must be a positive multiple of 32, got {imgsz}")
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1 (a pruned network needs fine-tuning), got {epochs}")
    weights = resolve_model(model)
    if weights.suffix != ".pt":
        raise ValueError(f"prune needs PyTorch weights (a run directory or a .pt), got {weights.name}")
    if not data.is_file():
        raise FileNotFoundError(f"data file {data} does not exist; pass the data.yaml the model was trained on")
    out_dir = out or new_run_dir(runs_dir(), "prune")
    report = prune_and_finetune(weights, data, out_dir, ratio, epochs, imgsz, seed, batch, lr0, val_images,
                                log=typer.echo)
    typer.echo("\n" + text_table(report.rows, ["model", "params", "gflops", "latency_ms_torch", "map50",
                                                "map50_95"], digits=4))
    typer.echo(f"pruned model: {out_dir}  (detection export -m {out_dir} ...)")


@app.command(epilog=("Example: detection bench -m runs/demo/det/export --images runs/demo/scenes/data.yaml "
                     "--batch 1,4"))
@friendly_errors(ValueError)
def bench(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="Model to time (repeatable): a run dir / .pt (timed with PyTorch and Ultralytics) "
                              "or an .onnx / export folder (ONNX Runtime).")],
    images: Annotated[Path, typer.Option(
        help="What to run on: a data.yaml (its val split), an image folder or a video file.")],
    imgsz: Annotated[int, typer.Option(help="Input size for .pt models (ONNX models use their own).")] = 640,
    batch: Annotated[str, typer.Option(help="Comma-separated batch sizes, e.g. 1,4.")] = "1",
    backends: Annotated[str, typer.Option(
        help="Backends for .pt models: comma-separated from pytorch, ultralytics.")] = "pytorch,ultralytics",
    n_images: Annotated[int, typer.Option("--n-images", help="Images to time per run.")] = 16,
    repeats: Annotated[int, typer.Option(help="Passes over the images; latency is the median over batches.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Write the rows as JSON here too.")] = None,
    seed: SeedOpt = 0,
) -> None:
    """Latency (median, p90 per batch) and throughput (images/s) per backend, precision and batch size."""
    from detection.backends import load_backend, resolve_model, time_backend
    from detection.video import sample_images
    from shared.reporting import text_table, write_json

    frames = sample_images(images, n_images, seed)
    rows = []
    for m in model:
        path = resolve_model(m)
        kinds = ["onnxruntime"] if path.suffix == ".onnx" else [b.strip() for b in backends.split(",") if b.strip()]
        for kind in kinds:
            for b in [int(x) for x in batch.split(",") if x.strip()]:
                be = load_backend(path, kind, imgsz=None if kind == "onnxruntime" else imgsz, batch=b)
                if kind == "onnxruntime" and be.static_batch and be.static_batch != b:
                    typer.echo(f"skip {path.name} batch {b}: exported with a fixed batch of {be.static_batch}")
                    continue
                r = time_backend(be, frames, repeats)
                rows.append({"model": path.name, **r})
                typer.echo(f"{path.name} {kind} batch {b}: {r['latency_ms_median']:.1f} ms, "
                           f"{r['images_per_s']:.1f} img/s")
    cols = ["model", "backend", "precision", "imgsz", "batch", "latency_ms_median", "latency_ms_p90", "images_per_s"]
    typer.echo("\n" + text_table(rows, cols, digits=1))
    if out:
        write_json({"rows": rows, "images": str(images), "n_images": len(frames)}, out)
        typer.echo(f"json: {out}")


@app.command(epilog=("Example: detection video -m runs/demo/det/export -s runs/demo/video/video.mp4 -o "
                     "annotated.mp4 --gt runs/demo/video/gt.txt"))
@friendly_errors(ValueError)
def video(
    model: ModelArg,
    source: Annotated[str, typer.Option(
        "--source", "-s", help="Video file (.mp4 .avi .mov .mkv ...), image folder, camera index or stream URL.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Annotated .mp4 to write.")],
    tracks: Annotated[Path | None, typer.Option(
        help="Write tracks here in MOTChallenge format (frame,id,x,y,w,h,conf,-1,-1,-1).")] = None,
    jsonl: Annotated[Path | None, typer.Option(
        help="Per-frame detections as JSON lines (default: OUTPUT with .jsonl).")] = None,
    tracker: Annotated[str, typer.Option(help="bytetrack, botsort, or none (detection only).")] = "bytetrack",
    batch: Annotated[int, typer.Option(help="Frames per inference call.")] = 4,
    backend: Annotated[str, typer.Option(
        help="auto (ONNX Runtime for .onnx, PyTorch for .pt), onnxruntime, pytorch or ultralytics.")] = "auto",
    imgsz: Annotated[int | None, typer.Option(help="Input size (default: the model's; 640 for .pt).")] = None,
    conf: Annotated[float, typer.Option(help="Minimum detection confidence.")] = 0.25,
    fps: Annotated[float, typer.Option(help="Frame rate for image folders (videos keep their own).")] = 30.0,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames (streams run forever).")] = None,
    evaluate: Annotated[Path | None, typer.Option(
        "--gt", help="Ground-truth gt.txt (MOTChallenge) to score the tracks against (MOTA/IDF1).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print one result line (FPS, and MOTA/IDF1 with "
                                        "--gt); the details go to OUTPUT's name + .log.txt.")] = False,
) -> None:
    """Detect and track objects in a video, image folder or stream; write an annotated mp4, tracks and JSONL.

    The mp4 has the input's size, fps and one frame per decoded input frame. A frame that fails to decode is
    reported, skipped and counted. Ends with an FPS summary (and MOTA/IDF1 with --gt).
    """
    from detection.backends import load_backend
    from detection.video import run_video
    from shared.cli_common import show_progress
    from shared.run_log import chatter_to

    trk = None if tracker.lower() == "none" else tracker.lower()
    if evaluate and not trk:
        raise ValueError("--gt needs tracking; drop --tracker none")
    tracks_path = tracks or (output.with_suffix(".tracks.txt") if evaluate else None)
    m = None
    with chatter_to(output.with_name(output.stem + ".log.txt") if quiet else None):
        be = load_backend(model, backend, imgsz=imgsz, batch=batch, conf=conf)
        s = run_video(be, source, output, tracks_path, jsonl, trk, batch, fps, max_frames,
                      progress and show_progress(quiet))
        typer.echo(f"{s.frames_written} frames ({s.width}x{s.height} @ {s.fps_in:g} fps) in {s.seconds:.1f} s: "
                   f"{s.fps:.1f} FPS with {s.backend.get('backend')} {s.backend.get('precision')} "
                   f"batch {s.backend.get('batch', batch)}; time in inference {s.stage_seconds['inference']:.1f} s, "
                   f"tracking {s.stage_seconds['tracking']:.1f} s, drawing+writing "
                   f"{s.stage_seconds['annotate_write']:.1f} s (writer thread, overlapped)")
        if s.skipped:
            typer.secho(f"{len(s.skipped)} frame(s) could not be decoded and were skipped: "
                        + ", ".join(str(k["frame"]) for k in s.skipped[:20]), fg="yellow")
        typer.echo(f"annotated video: {output}")
        if tracks_path:
            typer.echo(f"tracks ({s.tracks} ids): {tracks_path}")
        typer.echo(f"per-frame JSONL: {jsonl or output.with_suffix('.jsonl')}")
        if evaluate:
            from detection.tracking_eval import evaluate_tracks

            m = evaluate_tracks(evaluate, tracks_path)
            typer.echo(f"MOTA {m['mota']:.3f}  IDF1 {m['idf1']:.3f}  ID switches {m['num_switches']}  "
                       f"recall {m['recall']:.3f}  precision {m['precision']:.3f}")
    if quiet:
        typer.echo(f"video -> {output}: {s.frames_written} frames at {s.fps:.1f} FPS ({s.backend.get('backend')} "
                   f"{s.backend.get('precision')}), {s.tracks} track ids"
                   + (f"; MOTA {m['mota']:.3f}, IDF1 {m['idf1']:.3f}, {m['num_switches']} ID switches" if m else "")
                   + (f"; {len(s.skipped)} frames skipped" if s.skipped else ""))


@app.command("track-eval",
             epilog="Example: detection track-eval --gt runs/demo/video/gt.txt --tracks runs/demo/tracks.txt")
@friendly_errors(ValueError)
def track_eval(
    gt: Annotated[Path, typer.Option(help="Ground-truth tracks (MOTChallenge gt.txt).")],
    tracks: Annotated[Path, typer.Option(help="Tracks to score (MOTChallenge, e.g. from `detection video`).")],
    iou: Annotated[float, typer.Option(help="Minimum IoU for a track box to match a ground-truth box.")] = 0.5,
    out: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here too.")] = None,
) -> None:
    """Score tracks against ground truth: MOTA, MOTP, IDF1, ID switches, misses, false positives (motmetrics)."""
    from detection.tracking_eval import evaluate_tracks
    from shared.reporting import write_json

    m = evaluate_tracks(gt, tracks, iou)
    for k, v in m.items():
        typer.echo(f"{k:22s} {v:.4f}" if isinstance(v, float) else f"{k:22s} {v}")
    if out:
        write_json(m, out)
