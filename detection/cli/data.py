"""detection CLI commands: `check-data`, `convert` (dataset validation and converters)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detection.cli import app
from shared.cli_common import friendly_errors


@app.command("check-data", epilog=("Example: detection check-data runs/demo/scenes/data.yaml --out "
                                   "runs/my-check"))
@friendly_errors()
def check_data(
    data_yaml: Annotated[Path, typer.Argument(
        help="The data set's data.yaml (Ultralytics YOLO layout), or its folder if it holds data.yaml.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for report.md, check.json, problems.txt and class_counts.png "
                            "(default: runs/check-data-<time>).")] = None,
    splits: Annotated[str | None, typer.Option(
        help="Comma-separated splits to check, e.g. 'train,val' (default: every split in data.yaml).")] = None,
    decode: Annotated[bool, typer.Option(
        "--decode/--headers-only", help="Decode every image fully (finds truncated pixel data) or only read "
                                        "headers (faster).")] = True,
    workers: Annotated[int, typer.Option(help="Threads that read images.")] = 2,
    show: Annotated[int, typer.Option(help="How many problems to print (all are written to problems.txt).")] = 30,
    strict: Annotated[bool, typer.Option(help="Fail (exit 1) on warnings too, not only on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the OK/FAILED line and the report's path "
                                        "only (every problem is in problems.txt).")] = False,
) -> None:
    """Validate a YOLO data set and report per-split, per-class counts, background share and class imbalance.

    Every image is opened and every label line parsed; each problem names the file and line and says how to
    fix it. Exit status: 0 when there are no errors (warnings allowed unless --strict), 1 when the data set
    has errors, 2 when data.yaml itself is missing.
    """
    from detection.dataset_report import summary_line, text_report, write_report
    from detection.datasets import check_dataset
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    if data_yaml.is_dir():
        yamls = [data_yaml / "data.yaml"] if (data_yaml / "data.yaml").is_file() else sorted(data_yaml.glob("*.yaml"))
        if len(yamls) != 1:
            raise FileNotFoundError(f"{data_yaml} holds {len(yamls)} .yaml files and no data.yaml; "
                                    f"pass one of them: {', '.join(p.name for p in yamls) or '(none)'}")
        data_yaml = yamls[0]
    wanted = [s.strip() for s in splits.split(",") if s.strip()] if splits else None
    check = check_dataset(data_yaml, splits=wanted, decode_images=decode, workers=workers)
    if not quiet:
        typer.echo(text_report(check, max_problems=show))
    out_dir = out or new_run_dir(runs_dir(), "check-data")
    paths = write_report(check, out_dir)
    if quiet:
        typer.echo(f"{summary_line(check)} -> {paths['markdown']}")
    else:
        typer.echo(f"report: {paths['markdown']}  figure: {paths['figure']}  json: {paths['json']}")
    if not check.ok or (strict and check.warnings):
        raise typer.Exit(1)


def _parse_class_map(value: str | None) -> dict[str, str | None] | None:
    """`Car=car,Van=car,Tram=` or a YAML file {Car: car, Tram: null} -> {source: target or None}."""
    if not value:
        return None
    path = Path(value)
    if path.is_file():
        import yaml

        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise typer.BadParameter(f"{path} must hold a mapping `SourceName: target` per line")
        return {str(k): (str(v) if v else None) for k, v in raw.items()}
    pairs = {}
    for item in value.split(","):
        if "=" not in item:
            raise typer.BadParameter(f"--class-map entry {item!r} has no '='; write SOURCE=target (or SOURCE= to drop)")
        k, v = item.split("=", 1)
        pairs[k.strip()] = v.strip() or None
    return pairs


@app.command(epilog=("Example: detection convert --from kitti --images kitti/training/image_2 --labels "
                     "kitti/training/label_2 --out kitti-yolo"))
@friendly_errors()
def convert(
    source_format: Annotated[str, typer.Option(
        "--from", help="Source annotation format: kitti, voc or coco.", case_sensitive=False)],
    images: Annotated[Path, typer.Option(
        help="Folder of source images (KITTI image_2/, VOC JPEGImages/, COCO: the folder `file_name` is in).")],
    labels: Annotated[Path, typer.Option(
        help="Source annotations: KITTI label_2/ folder, VOC Annotations/ folder, or a COCO instances .json.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for images/, labels/ and data.yaml.")],
    split: Annotated[str, typer.Option(
        help="Split to write: 'auto' divides images into train/val by --val-fraction; any other name (train, "
             "val, test, pool) puts all images there and adds that split to an existing data.yaml.")] = "auto",
    val_fraction: Annotated[float, typer.Option(help="Share of images that go to val with --split auto.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --split auto shuffle.")] = 0,
    class_map: Annotated[str | None, typer.Option(
        help="Rename or drop source classes: 'Car=car,Van=car,Tram=' (empty target drops quietly) or a YAML "
             "file. For KITTI it extends the default map (Car/Van->car, Truck->truck, Pedestrian/"
             "Person_sitting->pedestrian, Cyclist->cyclist).")] = None,
    names: Annotated[str | None, typer.Option(
        help="Output classes in id order, comma-separated, e.g. 'car,truck,pedestrian,cyclist,traffic_light,"
             "stop_sign' to match the synthetic set; objects of other classes are counted as unknown.")] = None,
    segments: Annotated[bool, typer.Option(
        help="COCO only: write polygon labels from `segmentation` (for -seg models) instead of boxes.")] = False,
    keep_difficult: Annotated[bool, typer.Option(
        help="VOC only: keep objects flagged <difficult>1 (dropped and counted by default).")] = False,
    image_set: Annotated[Path | None, typer.Option(
        help="VOC only: convert only the stems listed in this file (e.g. ImageSets/Main/val.txt).")] = None,
    image_mode: Annotated[str, typer.Option(
        "--image-mode", help="How images reach the output: copy, symlink or hardlink.")] = "copy",
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Validate the written data set (as check-data does) when done.")] = True,
) -> None:
    """Convert KITTI, Pascal VOC or COCO annotations into an Ultralytics YOLO data set with a data.yaml.

    Prints what was written and, with counts, everything skipped: DontCare regions, difficult objects,
    crowd regions, and classes the class map does not know (never dropped silently). Exit status 1 when
    the written data set fails validation, 2 for unusable input.
    """
    from detection.converters import ConversionError, convert_kitti, convert_voc

    try:
        fmt = source_format.lower()
        common = {"class_map": _parse_class_map(class_map),
                  "names": [n.strip() for n in names.split(",") if n.strip()] if names else None,
                  "split": split, "val_fraction": val_fraction, "seed": seed, "images": image_mode}
        if fmt == "kitti":
            report = convert_kitti(images, labels, out, **common)
        elif fmt == "voc":
            stems = image_set.read_text(encoding="utf-8").split() if image_set else None
            report = convert_voc(images, labels, out, keep_difficult=keep_difficult, files=stems, **common)
        elif fmt == "coco":
            from detection.coco import convert_coco

            report = convert_coco(images, labels, out, segments=segments, **common)
        else:
            raise ConversionError(f"--from must be kitti, voc or coco, not {source_format!r}")
    except ConversionError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(report.summary())
    if not check:
        return
    import yaml

    present = yaml.safe_load(report.data_yaml.read_text(encoding="utf-8"))
    if not (present.get("train") and present.get("val")):
        typer.echo(f"note: {report.data_yaml} has no {'val' if present.get('train') else 'train'} split yet; "
                   "convert the other annotations into the same --out with --split val (or train)")
        return
    from detection.dataset_report import summary_line
    from detection.datasets import check_dataset

    result = check_dataset(report.data_yaml)
    for p in (result.errors + result.warnings)[:10]:
        typer.echo(str(p))
    typer.echo(summary_line(result))
    if not result.ok:
        raise typer.Exit(1)
