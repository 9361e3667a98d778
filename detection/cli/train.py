"""detection CLI commands: `train`, `evaluate`, `mine`, `augment-preview`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detection.cli import app
from shared.cli_common import QUIET_HELP, ConfigOpt, SetOpt, friendly_errors, show_progress

DataOpt = Annotated[Path, typer.Option(
    "--data", "-d", help="The data set's data.yaml (YOLO layout; python -m data_scripts.make_driving_scenes "
                         "writes one). Checked before any work starts.")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Random seed (default: `seed` of the config file, 0): the same seed gives the same weights "
                   "and metrics.")]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Output folder (default: a new runs/<command>-<time> folder).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "detection.yaml"


def _config(config: Path | None, set_: list[str] | None, seed: int | None):
    """configs/detection.yaml (or --config), then --set overrides, then --seed."""
    from detection.settings import DetectionConfig
    from shared.config import load_config

    path = config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    return load_config(DetectionConfig, path, set_).with_seed(seed)


def _out_dir(out: Path | None, name: str) -> Path:
    """OUT, or a fresh runs/<name>-<time> folder (made now, so a quiet run has somewhere to log)."""
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    return Path(out) if out is not None else new_run_dir(runs_dir(), name)


def _replace(obj, **changes):
    """dataclasses.replace with only the flags the user gave (None = keep the config's value)."""
    import dataclasses

    return dataclasses.replace(obj, **{k: v for k, v in changes.items() if v is not None})


@app.command(epilog=("Example: detection train --data runs/demo/scenes/data.yaml --epochs 5 --imgsz 256 "
                     "--out runs/my-detector"))
@friendly_errors(ValueError)
def train(
    data: DataOpt,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="yolo11n.yaml (boxes), yolo11n-seg.yaml (boxes + masks, needs polygon labels) or a "
                              "local .pt to fine-tune. A .pt name that is not a local file is refused (it would "
                              "need a download).")] = None,
    preset: Annotated[str | None, typer.Option(
        help="Augmentation preset: none, light, road (default), road-strong, road-seg. See "
             "docs/detection-training.md or `detection augment-preview`.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default 30).")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Training image side in pixels, multiple of 32 (default 320).")] = None,
    batch: Annotated[int | None, typer.Option(help="Images per step (default 16).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu (default), or a CUDA device like 0.")] = None,
    out: OutOpt = None,
    seed: SeedOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train a YOLO detector (or detector + masks) offline and write a run directory.

    The run directory holds manifest.json (kind detection-model: config, data fingerprint, metrics, file
    hashes), config.yaml, weights/best.pt, results.csv. Pass it as --model to evaluate, mine, export, video.
    Config keys: the `train:` section of configs/detection.yaml (--set train.lr0=0.005).
    """
    from detection.train import check_training_data, resolve_model_source
    from detection.train import train as run_train
    from shared.run_log import chatter_to

    cfg = _config(config, set_, seed)
    tcfg = _replace(cfg.train, model=model, preset=preset, epochs=epochs, imgsz=imgsz, batch=batch, device=device)
    if quiet:  # bad input fails before a run directory exists
        check_training_data(data, resolve_model_source(tcfg.model)[1])
        out = _out_dir(out, "train")
    with chatter_to(out / "log.txt" if quiet else None):
        result = run_train(data, tcfg, out, log=typer.echo, progress="train" if quiet and show_progress(quiet) else None)
        m = result.metrics
        metrics = (f"box mAP50 {m['box_map50']:.4f}  mAP50-95 {m['box_map50_95']:.4f}"
                   + (f"  mask mAP50 {m['mask_map50']:.4f}  mAP50-95 {m['mask_map50_95']:.4f}"
                      if "mask_map50" in m else ""))
        typer.echo(f"run directory: {result.run_dir}")
        typer.echo(f"{metrics}  ({m['train_images_per_s']} training images/s)")
    if quiet:
        typer.echo(f"detector -> {result.run_dir}: val {metrics} after {m['epochs']} epochs at {tcfg.imgsz} px "
                   f"({m['train_images_per_s']} images/s, {m['wall_seconds']:.0f} s)")


@app.command(epilog=("Example: detection evaluate --model runs/demo/det/base --data "
                     "runs/demo/scenes/data.yaml --imgsz 256"))
@friendly_errors(ValueError)
def evaluate(
    model: Annotated[str, typer.Option(
        "--model", "-m", help="A run directory written by `detection train` (or `mine`), or a local .pt.")],
    data: DataOpt,
    split: Annotated[str | None, typer.Option(help="Split of data.yaml to evaluate (default val).")] = None,
    conf: Annotated[float | None, typer.Option(
        help="Operating confidence for false positives per image, recall and the confusion matrix (default "
             "0.25); mAP always uses every confidence.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Inference image side in pixels (default 320).")] = None,
    rare_class: Annotated[list[str] | None, typer.Option(
        "--rare-class", help="Class name reported as rare (repeatable; default: least frequent in train).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu (default) or a CUDA device like 0.")] = None,
    out: OutOpt = None,
    seed: SeedOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Evaluate a detector: mAP50 and mAP50-95 (box and mask), per-class AP, false positives per image.

    Writes report.md, metrics.json, per_image.csv and confusion_matrix.png. False positives: predictions at
    >= --conf that match no ground truth of their class at IoU 0.5. Config: the `evaluate:` section.
    """
    from detection.evaluate import evaluate as run_evaluate
    from shared.reporting import text_table
    from shared.seeding import seed_everything

    cfg = _config(config, set_, seed)
    seed_everything(cfg.seed)
    ecfg = _replace(cfg.evaluate, split=split, conf=conf, imgsz=imgsz, device=device, rare_classes=rare_class or None)
    result = run_evaluate(model, data, ecfg, out, log=typer.echo)
    cols = ["class", "instances", "ap50", "ap50_95", *(["mask_ap50"] if "mask_map50" in result.metrics else []),
            "recall", "fp_per_image", "rare"]
    typer.echo(text_table(result.per_class, cols))
    typer.echo(f"report: {result.files['report']}")


@app.command(epilog=("Example: detection mine --model runs/demo/det/base --data runs/demo/scenes/data.yaml "
                     "--rounds 1 --epochs 3 --out runs/my-mining"))
@friendly_errors(ValueError)
def mine(
    model: Annotated[str, typer.Option(
        "--model", "-m", help="The current model: a run directory written by `detection train`, or a local .pt.")],
    data: DataOpt,
    pool: Annotated[str, typer.Option(
        help="Mining pool: a split name of data.yaml (default `pool`, labelled) or a folder of images (labelled "
             "in YOLO layout, or background with --pool-is-background). Never the evaluation split.")] = "pool",
    pool_is_background: Annotated[bool, typer.Option(
        "--pool-is-background", help="The pool folder shows none of the classes: every detection in it is a false "
                                     "positive (no labels needed; rare-class misses cannot be mined).")] = False,
    rounds: Annotated[int | None, typer.Option(help="Mining + fine-tuning rounds (default 1).")] = None,
    conf: Annotated[float | None, typer.Option(
        help="Operating confidence of the before/after report (default: evaluate.conf, 0.25).")] = None,
    mine_conf: Annotated[float | None, typer.Option(
        "--mine-conf", help="Confidence at which a pool detection without a match counts as a false positive to "
                            "mine (default: mine.conf, 0.25; lower also mines near misses).")] = None,
    background_share: Annotated[float | None, typer.Option(
        help="Cap on mined false-positive images as a share of the new training set (default 0.1).")] = None,
    rare_oversample: Annotated[int | None, typer.Option(
        help="How many times each rare-class image appears in the new training set (default 3).")] = None,
    rare_class: Annotated[list[str] | None, typer.Option(
        "--rare-class", help="Rare class name (repeatable; default: least frequent in train).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs per round (default 8).")] = None,
    out: OutOpt = None,
    seed: SeedOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Hard-negative mining: mine confident false positives and missed rare objects, fine-tune, compare.

    Prints and writes (report.md, metrics.json) the before/after table on the same validation split: false
    positives per image, recall, mAP, rare-class AP50. Each round's fine-tuned model is a run directory
    (round-N/model). Config: the `mine:` section (mine.finetune.* for the fine-tuning schedule).
    """
    from detection.mining import REPORT_COLUMNS
    from detection.mining import mine as run_mine
    from shared.reporting import text_table

    cfg = _config(config, set_, seed)
    mcfg = _replace(cfg.mine, rounds=rounds, conf=mine_conf, background_share=background_share,
                    rare_oversample=rare_oversample, rare_classes=rare_class or None,
                    finetune=_replace(cfg.mine.finetune, epochs=epochs))
    ecfg = _replace(cfg.evaluate, conf=conf, imgsz=mcfg.finetune.imgsz)
    from shared.run_log import chatter_to

    if quiet:  # bad input fails before a run directory exists
        from detection.train import check_training_data

        check_training_data(data, "detect")
        out = _out_dir(out, "mine")
    with chatter_to(out / "log.txt" if quiet else None):
        result = run_mine(model, data, mcfg, ecfg, pool, pool_is_background, out, log=typer.echo,
                          progress=quiet and show_progress(quiet))
        typer.echo("\n" + text_table(result["table"], REPORT_COLUMNS))
        s = result["summary"]

        def pct(v):
            return "—" if v is None else f"{v:+.1%}"

        typer.echo(f"false positives/image at conf {pct(s['fp_per_image_change'])}, at the base model's recall "
                   f"{pct(s['fp_at_equal_recall_change'])}; recall {s['recall_change'] or 0:+.4f}; rare-class AP50 "
                   f"{s['rare_ap50_change'] or 0:+.4f}")
        typer.echo(f"report: {result['out_dir']}/report.md   final model: {Path(result['final_weights']).parents[1]}")
    if quiet:
        first, last = result["table"][0], result["table"][-1]
        typer.echo(f"mining -> {result['out_dir']}/report.md: mAP50 {first['box_map50']:.3f} -> {last['box_map50']:.3f}, "
                   f"false positives/image {first['fp_per_image']:.2f} -> {last['fp_per_image']:.2f} at conf "
                   f"{result['conf']:g}" + (f" ({pct(s['fp_at_equal_recall_change'])} at the base model's recall)"
                                            if s["fp_at_equal_recall_change"] is not None else "")
                   + f", recall {first['recall']:.3f} -> {last['recall']:.3f}")


@app.command("augment-preview",
             epilog=("Example: detection augment-preview --data runs/demo/scenes/data.yaml --preset "
                     "road-strong --out preview.png"))
@friendly_errors(ValueError)
def augment_preview(
    data: DataOpt,
    preset: Annotated[str, typer.Option(
        help="Augmentation preset to preview: none, light, road, road-strong, road-seg.")] = "road",
    n: Annotated[int, typer.Option("--n", help="Number of augmented samples in the grid.")] = 8,
    imgsz: Annotated[int, typer.Option(help="Training image side in pixels (as in training).")] = 320,
    split: Annotated[str, typer.Option(help="Split of data.yaml to draw samples from.")] = "train",
    seg: Annotated[bool, typer.Option(
        "--seg", help="Preview as a segmentation model sees it (polygon labels: masks and copy-paste).")] = False,
    augment: Annotated[list[str] | None, typer.Option(
        "--augment", help="Override one hyperparameter of the preset, e.g. --augment degrees=5 (repeatable).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("augment-preview.png"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed draws the same grid.")] = 0,
) -> None:
    """Write a PNG grid of augmented training samples with their labels drawn: see what a preset does."""
    from detection.augment import get_preset, preview_grid
    from detection.train import check_training_data
    from shared.config import parse_override

    overrides = dict(parse_override(a) for a in augment or [])
    chosen = get_preset(preset, overrides)
    checked = check_training_data(data, "segment" if seg else "detect", splits=(split,))
    path = preview_grid(checked.file, chosen, out, n=n, imgsz=imgsz, seed=seed, split=split,
                        task="segment" if seg else "detect")
    typer.echo(f"wrote {path} ({n} samples, preset {chosen.name})")


@app.command(epilog=("Example: detection transfer --data runs/demo/scenes/data.yaml --budget 300 --out "
                     "runs/my-transfer"))
@friendly_errors(ValueError)
def transfer(
    data: DataOpt,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="CPU seconds for scene generation + pre-training + fine-tuning together (default: "
                         "transfer.cpu_budget_s; 0 trains each stage's epochs).")] = None,
    scenes: Annotated[int | None, typer.Option(help="Synthetic training images (default 600).")] = None,
    freeze_epochs: Annotated[int | None, typer.Option(
        "--freeze-epochs", help="Fine-tuning epochs with the backbone frozen (default 0; -1 the whole run).")] = None,
    class_map: Annotated[str | None, typer.Option(
        "--class-map", help="Generator class -> target class, e.g. 'cyclist=motorbike,pedestrian=person' (on top "
                            "of the automatic match by name). Generator classes: car, truck, pedestrian, cyclist, "
                            "traffic_light, stop_sign, bus, motorbike.")] = None,
    out: OutOpt = None,
    seed: SeedOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Synthetic pre-training, then fine-tuning on a small real data set, within one CPU budget.

    Generates domain-randomised road scenes labelled with the target's class names (pedestrian -> person,
    cyclist and motorbike -> motorbike, ...), pre-trains from yolo11n.yaml on them, then fine-tunes on the real
    train split with the fine-tuning recipe (transfer.finetune.*: freeze_backbone_epochs, backbone_lr_scale,
    cos_lr, AdamW + weight_decay). The output folder is a normal run directory (pass it to evaluate, mine,
    explain, export, video); scenes and the pre-trained model are kept in OUT/pretrain-stage.
    """
    import dataclasses

    from detection.cli.data import _parse_class_map
    from detection.transfer import transfer as run_transfer
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    cfg = _config(config, set_, seed).transfer
    mapping = {k: v for k, v in (_parse_class_map(class_map) or {}).items() if v}
    ft = _replace(cfg.finetune, freeze_backbone_epochs=freeze_epochs)
    cfg = dataclasses.replace(_replace(cfg, cpu_budget_s=budget, scenes=scenes), finetune=ft,
                              class_map={**cfg.class_map, **mapping})
    result = run_transfer(data, cfg, out or new_run_dir(runs_dir(), "transfer"), log=typer.echo)
    m = result.finetune_metrics
    typer.echo(f"run directory: {result.run_dir}")
    typer.echo(f"box mAP50 {m['box_map50']:.4f}  mAP50-95 {m['box_map50_95']:.4f} (the data set's val split);  CPU "
               f"seconds: scenes {result.cpu['scenes_s']:.0f}, pre-training {result.cpu['pretrain_s']:.0f}, "
               f"fine-tuning {result.cpu['finetune_s']:.0f}")
