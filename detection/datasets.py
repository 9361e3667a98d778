"""Check a YOLO data set the way Ultralytics will read it, and collect every problem with its file and line.

`check_dataset("data.yaml")` reads the yaml, lists each split's images with Ultralytics' own rules, finds
each image's label file (the last `/images/` in the path replaced by `/labels/`, suffix `.txt`), opens every
image and parses every label line. It never stops at the first problem: it returns a `DatasetCheck` with all
`Problem`s (errors and warnings) plus per-split, per-class counts. `detection.dataset_report` turns that into
tables, report.md, JSON and a bar chart.

Label formats (one object per line, coordinates normalised to [0, 1] by image width and height):

    box:      class x_center y_center width height            (5 values)
    polygon:  class x1 y1 x2 y2 x3 y3 ...                      (1 + 2k values, k >= 3 points)

Ultralytics treats a label file with a bad line as corrupt and drops the whole image from training, so an
"error" here almost always costs you that image (a few, like zero-size boxes or 1-point polygons inside a
polygon file, it accepts silently, but they are still wrong). "Warning" problems are accepted (often fixed
quietly: duplicates removed, slightly out-of-range values clipped) but usually point at a converter bug.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from detection.data_yaml import (  # noqa: F401  (re-exported: detection.datasets is the public entry point)
    META_KEYS,
    SPLIT_KEYS,
    DataYaml,
    read_data_yaml,
)
from detection.label_checks import IMG_FORMATS, Problem, check_image, check_label_file


@dataclass
class SplitStats:
    """Counts for one split. `instances[c]` objects of class c; `images_with[c]` images that contain c."""

    name: str
    images: int = 0
    background: int = 0  # images whose label file is empty or missing (Ultralytics trains them as background)
    missing_labels: int = 0
    # images with an unreadable image or a label error; Ultralytics drops almost all of them (it silently
    # accepts a few errors, e.g. zero-size boxes), and their objects are not counted in `instances` here
    with_errors: int = 0
    box_files: int = 0
    polygon_files: int = 0
    instances: Counter = field(default_factory=Counter)
    images_with: Counter = field(default_factory=Counter)
    # objects by pixel size sqrt(w * h), COCO's buckets: small < 32 px <= medium < 96 px <= large
    object_sizes: Counter = field(default_factory=Counter)
    image_sizes: Counter = field(default_factory=Counter)  # (width, height) in pixels -> images

    @property
    def total_instances(self) -> int:
        return sum(self.instances.values())

    @property
    def small_share(self) -> float:
        """Share of objects under 32 x 32 px (hard for a detector at the native image size)."""
        n = sum(self.object_sizes.values())
        return self.object_sizes["small"] / n if n else float("nan")

    @property
    def background_share(self) -> float:
        return self.background / self.images if self.images else float("nan")


@dataclass
class DatasetCheck:
    """Everything `check_dataset` found: the parsed yaml (None if unusable), per-split counts and problems."""

    yaml_file: Path
    data: DataYaml | None
    splits: dict[str, SplitStats]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings do not fail a data set)."""
        return not self.errors

    def names(self) -> dict[int, str]:
        return self.data.names if self.data else {}


def img2label_path(image: str | Path) -> Path:
    """The label file Ultralytics reads for `image`: last `/images/` -> `/labels/`, extension -> `.txt`.

    Same string rule as `ultralytics.data.utils.img2label_paths`: an image path without an `/images/`
    folder gets its label file right beside it.
    """
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(os.fspath(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def list_images(sources: list[Path], problems: list[Problem]) -> list[Path]:
    """A split's image files, found like Ultralytics' `get_img_files` (recursive folders, .txt lists)."""
    found: list[str] = []
    for src in sources:
        if src.is_dir():
            found += glob.glob(str(Path(glob.escape(str(src))) / "**" / "*.*"), recursive=True)
            continue
        parent = str(src.parent) + os.sep
        listed = src.read_text(encoding="utf-8-sig").splitlines()
        for n, entry in enumerate(listed, 1):
            entry = entry.strip()
            if not entry:
                continue
            p = entry.replace("./", parent, 1) if entry.startswith("./") else entry
            if p.rpartition(".")[-1].lower() in IMG_FORMATS and not Path(p).is_file():
                problems.append(Problem("error", "listed-image-missing", str(src), n,
                                        f"image {p} is listed but does not exist",
                                        "remove the line or restore the image (paths not starting with './' "
                                        "are relative to the working directory)"))
            else:
                found.append(p)
    return sorted({Path(x) for x in found if x.rpartition(".")[-1].lower() in IMG_FORMATS})


# ------------------------------------------------------------------------------------------ whole data set


def check_dataset(data_yaml: str | Path, splits: list[str] | None = None, decode_images: bool = True,
                  workers: int = 2) -> DatasetCheck:
    """Check every split of a YOLO data set; all problems are collected, none raises (except a missing yaml).

    `decode_images=False` only reads image headers (much faster, misses truncated pixel data);
    `workers` threads read images in parallel.
    """
    data, problems = read_data_yaml(data_yaml, splits)
    check = DatasetCheck(yaml_file=Path(data_yaml), data=data, splits={}, problems=problems)
    if data is None:
        return check
    expected_labels: set[Path] = set()
    label_dirs: set[Path] = set()
    first_split: dict[Path, str] = {}
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        for split, sources in data.splits.items():
            if not sources:
                continue  # every source is missing: already reported as split-missing
            stats = SplitStats(split)
            check.splits[split] = stats
            images = list_images(sources, problems)
            for src in sources:
                if src.is_dir():
                    label_dirs.add(img2label_path(str(src) + os.sep + "x.x").parent)
            if not images:
                problems.append(Problem("error", "split-empty", str(data.file), None,
                                        f"split `{split}` has no images in {', '.join(map(str, sources)) or '(nothing)'}",
                                        f"put images ({', '.join(sorted(IMG_FORMATS)[:6])}, ...) there or fix `{split}:`"))
                continue
            results = pool.map(lambda p: check_image(p, decode_images), images)
            for image, (size, image_problems) in zip(images, results, strict=True):
                problems.extend(image_problems)
                _count_image(image, size, split, data, stats, problems, expected_labels, label_dirs, first_split)
    finally:
        pool.shutdown()
    _orphan_labels(label_dirs, expected_labels, problems)
    for stats in check.splits.values():
        absent = [name for c, name in data.names.items() if not stats.instances.get(c)]
        if stats.images and absent:
            problems.append(Problem("warning", "class-absent", str(data.file), None,
                                    f"split `{stats.name}` has no instances of {', '.join(absent)}",
                                    "add examples of those classes, or drop them from `names:` if unused"))
    return check


def _count_image(image: Path, size, split: str, data: DataYaml, stats: SplitStats, problems: list[Problem],
                 expected_labels: set[Path], label_dirs: set[Path], first_split: dict[Path, str]) -> None:
    stats.images += 1
    if size:
        stats.image_sizes[size] += 1
    if image in first_split and first_split[image] != split:
        problems.append(Problem("warning", "image-in-two-splits", str(image), None,
                                f"image is in both `{first_split[image]}` and `{split}`; "
                                "evaluation on a split that overlaps training overstates accuracy",
                                "keep each image in one split"))
    first_split.setdefault(image, split)
    label = img2label_path(image)
    expected_labels.add(label)
    label_dirs.add(label.parent)
    bad = size is None
    if not label.is_file():
        stats.missing_labels += 1
        stats.background += 1
        problems.append(Problem("warning", "label-missing", str(image), None,
                                f"image has no label file {label}; Ultralytics trains it as background",
                                "label it, or create an empty .txt if it really shows no objects"))
        stats.with_errors += bad
        return
    parsed = check_label_file(label, data.names)
    problems.extend(parsed.problems)
    bad = bad or parsed.has_errors
    stats.with_errors += bad
    if bad:
        return
    if not parsed.classes:
        stats.background += 1
    stats.box_files += parsed.boxes > 0
    stats.polygon_files += parsed.polygons > 0
    stats.instances.update(parsed.classes)
    stats.images_with.update(set(parsed.classes))
    for w, h in parsed.sizes:
        side = (w * size[0] * h * size[1]) ** 0.5
        stats.object_sizes["small" if side < 32 else "medium" if side < 96 else "large"] += 1


def _orphan_labels(label_dirs: set[Path], expected: set[Path], problems: list[Problem]) -> None:
    """Warn about label files that no image in any checked split uses (often a renamed or deleted image)."""
    seen: set[Path] = set()
    for d in sorted(label_dirs):
        if not d.is_dir():
            continue
        for txt in sorted(d.rglob("*.txt")):
            if txt in expected or txt in seen:
                continue
            seen.add(txt)
            problems.append(Problem("warning", "label-without-image", str(txt), None,
                                    "label file has no image in any checked split (Ultralytics ignores it)",
                                    "restore or re-list its image, or delete the label file"))
