"""detection CLI commands: `check-data`, `convert` (issue 7: dataset validation and converters)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detection.cli import app
from shared.cli_common import friendly_errors


@app.command("check-data")
@friendly_errors()
def check_data(
    data_yaml: Annotated[Path, typer.Argument(help="The data set's data.yaml (Ultralytics YOLO layout).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for report.md, check.json, problems.txt and class_counts.png "
                            "[default: runs/check-data-<time>].")] = None,
    splits: Annotated[str | None, typer.Option(
        help="Comma-separated splits to check, e.g. 'train,val' [default: every split in data.yaml].")] = None,
    decode: Annotated[bool, typer.Option(
        "--decode/--headers-only", help="Decode every image fully (finds truncated pixel data) or only read "
                                        "headers (faster).")] = True,
    workers: Annotated[int, typer.Option(help="Threads that read images.")] = 2,
    show: Annotated[int, typer.Option(help="How many problems to print (all are written to problems.txt).")] = 30,
    strict: Annotated[bool, typer.Option(help="Fail (exit 1) on warnings too, not only on errors.")] = False,
) -> None:
    """Validate a YOLO data set and report per-split, per-class counts, background share and class imbalance.

    Every image is opened and every label line parsed; each problem names the file and line and says how to
    fix it. Exit status: 0 when there are no errors (warnings allowed unless --strict), 1 when the data set
    has errors, 2 when data.yaml itself is missing.
    """
    from detection.dataset_report import text_report, write_report
    from detection.datasets import check_dataset
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    wanted = [s.strip() for s in splits.split(",") if s.strip()] if splits else None
    check = check_dataset(data_yaml, splits=wanted, decode_images=decode, workers=workers)
    typer.echo(text_report(check, max_problems=show))
    out_dir = out or new_run_dir(runs_dir(), "check-data")
    paths = write_report(check, out_dir)
    typer.echo(f"report: {paths['markdown']}  figure: {paths['figure']}  json: {paths['json']}")
    if not check.ok or (strict and check.warnings):
        raise typer.Exit(1)
