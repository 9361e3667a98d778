"""`detection`: the road-scene object-detection case study's command line (thin: parses, calls, prints)."""

from __future__ import annotations

import typer

from shared.cli_common import print_environment

app = typer.Typer(
    help="Object detection and tracking for driving scenes on Ultralytics YOLO, fully offline.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Run `detection COMMAND --help` for the options of each command."""


@app.command(epilog="Example: detection info")
def info() -> None:
    """Print library versions, the offline Ultralytics settings and where runs and caches go."""
    from shared.offline import configure_offline

    cfg = configure_offline()
    print_environment(("dl-case-studies", "torch", "torchvision", "ultralytics-opencv-headless",
                       "opencv-python-headless", "onnx", "onnxruntime", "onnxslim", "lap"))
    typer.echo(f"{'YOLO_CONFIG_DIR':32s} {cfg}")


# Each area registers its commands on `app` in its own module (one owner per file, no merge fights).
from detection.cli import data, train, explain, deploy  # noqa: E402,F401,I001  (help lists commands in workflow order)

if __name__ == "__main__":
    app()
