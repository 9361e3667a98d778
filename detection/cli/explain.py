"""detection CLI command: `explain` (EigenCAM heatmaps with the detections, or with the false positives)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detection.cli import app
from shared.cli_common import SeedOpt, friendly_errors


def _images(source: Path) -> list[Path]:
    from detection.datasets import list_images

    if source.is_file() and source.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
        return [source]
    if not source.exists():
        raise FileNotFoundError(f"--source {source} does not exist; pass an image, a folder of images or a .txt list")
    images = sorted(list_images([source.resolve()], []))
    if not images:
        raise FileNotFoundError(f"--source {source} holds no images (jpg, png, ...)")
    return images


@app.command(epilog=("Example: detection explain --model runs/demo/det/base --source "
                     "runs/demo/scenes/images/val --out runs/my-explain --false-positives"))
@friendly_errors(ValueError, ImportError)
def explain(
    model: Annotated[str, typer.Option(
        "--model", "-m", help="A run directory written by `detection train` / `transfer` / `mine`, or a local .pt.")],
    source: Annotated[Path, typer.Option(help="An image, a folder of images or a .txt list of image paths.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the heatmap images and explain.json.")],
    false_positives: Annotated[bool, typer.Option(
        "--false-positives", help="The images are labelled (YOLO layout): write only images with false positives "
                                  "(most confidently wrong first), FP red, TP green, missed yellow.")] = False,
    imgsz: Annotated[int, typer.Option(help="Network input side in pixels (multiple of 32).")] = 320,
    conf: Annotated[float, typer.Option(help="Detections drawn (and matched) at or above this confidence.")] = 0.25,
    layer: Annotated[list[int] | None, typer.Option(
        "--layer", help="Model layer whose activations EigenCAM uses (repeatable; default: the Detect head's "
                        "inputs, 16, 19, 22 for yolo11n).")] = None,
    max_images: Annotated[int, typer.Option(help="Write at most this many images.")] = 100,
    seed: SeedOpt = 0,
) -> None:
    """Write EigenCAM heatmaps blended over each image with the detections drawn (docs/detection-explain.md).

    EigenCAM (pytorch-grad-cam) is gradient-free: the first principal component of the activations the
    detection head reads, projected back onto the image, at the image's own size. With --false-positives it
    shows what fooled the model: the same criterion hard-negative mining uses.
    """
    from detection.explain import ExplainConfig, explain_images
    from shared.seeding import seed_everything

    seed_everything(seed)
    cfg = ExplainConfig(imgsz=imgsz, conf=conf, layers=list(layer or []), max_images=max_images)
    records = explain_images(model, _images(source), out, cfg, false_positives, log=typer.echo)
    if false_positives:
        total = sum(r["false_positives"] for r in records)
        typer.echo(f"{len(records)} images with false positives ({total} false positives) -> {out}")
