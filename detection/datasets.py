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

import yaml

from detection.label_checks import IMG_FORMATS, Problem, check_image, check_label_file

SPLIT_KEYS = ("train", "val", "test", "minival")  # the split keys Ultralytics itself resolves
# Top-level data.yaml keys that are not splits; any other key whose value is an existing path is a split
# (e.g. `pool:` in the generated driving-scene set).
META_KEYS = frozenset({"path", "names", "nc", "download", "yaml_file", "channels", "kpt_shape", "flip_idx",
                       "validation", "text", "license", "author", "url", "version", "date", "description"})


@dataclass
class DataYaml:
    """A parsed data.yaml: its root folder, class names and each split's sources (folders or .txt lists)."""

    file: Path
    root: Path
    names: dict[int, str]
    splits: dict[str, list[Path]]

    @property
    def nc(self) -> int:
        return len(self.names)


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


# ---------------------------------------------------------------------------------------------- data.yaml


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key in a yaml text (for messages), empty if it does not compose."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def _parse_names(raw, nc_raw, file: str, line: int | None, problems: list[Problem]) -> dict[int, str] | None:
    """`names:` as a list or a {id: name} dict (Ultralytics' `check_class_names`), or `nc:` alone."""
    fix_names = "give `names:` as a list [car, truck, ...] or a dict {0: car, 1: truck, ...}"
    if raw is None:
        if isinstance(nc_raw, int) and nc_raw > 0:
            return {i: f"class_{i}" for i in range(nc_raw)}
        problems.append(Problem("error", "yaml-missing-names", file, line,
                                "data.yaml has no `names:` (and no integer `nc:`)", fix_names))
        return None
    if isinstance(raw, list):
        names = dict(enumerate(raw))
    elif isinstance(raw, dict):
        try:
            names = {int(k): v for k, v in raw.items()}
        except (TypeError, ValueError):
            problems.append(Problem("error", "yaml-bad-names", file, line,
                                    f"`names:` keys must be integer class ids, got {list(raw)[:5]}", fix_names))
            return None
    else:
        problems.append(Problem("error", "yaml-bad-names", file, line,
                                f"`names:` must be a list or a dict, not {type(raw).__name__}", fix_names))
        return None
    names = {k: str(v) for k, v in sorted(names.items())}
    if not names:
        problems.append(Problem("error", "yaml-missing-names", file, line, "`names:` is empty", fix_names))
        return None
    if sorted(names) != list(range(len(names))):
        problems.append(Problem("error", "yaml-bad-names", file, line,
                                f"class ids in `names:` must be 0..{len(names) - 1} without gaps, got "
                                f"{sorted(names)}", "renumber the classes from 0"))
        return None
    if isinstance(nc_raw, int | float) and not isinstance(nc_raw, bool) and int(nc_raw) != len(names):
        problems.append(Problem("error", "yaml-nc-mismatch", file, line,
                                f"`nc: {nc_raw}` does not match the {len(names)} entries in `names:`",
                                "remove `nc:` or make it equal to the number of names"))
    return names


def _resolve_root(raw_path, yaml_file: Path, line: int | None, problems: list[Problem]) -> Path | None:
    """The data set root, as Ultralytics finds it: `path:` (from the working directory) or the yaml's folder."""
    if raw_path is None:
        return yaml_file.parent.resolve()
    if not isinstance(raw_path, str):
        problems.append(Problem("error", "yaml-bad-path", str(yaml_file), line,
                                f"`path:` must be a string, got {type(raw_path).__name__}",
                                "write `path: /absolute/folder/of/the/dataset`"))
        return None
    root = Path(raw_path).expanduser()
    if root.exists():
        if not root.is_absolute():
            problems.append(Problem("warning", "yaml-relative-path", str(yaml_file), line,
                                    f"`path: {raw_path}` is relative, so it only works from this working "
                                    "directory", "make `path:` absolute"))
        return root.resolve()
    beside = (yaml_file.parent / root).resolve()
    if not root.is_absolute() and beside.exists():
        problems.append(Problem("warning", "yaml-relative-path", str(yaml_file), line,
                                f"`path: {raw_path}` exists only relative to the yaml's folder; Ultralytics "
                                "resolves it from the working directory, then from its datasets_dir setting",
                                f"write `path: {beside}`"))
        return beside
    problems.append(Problem("error", "yaml-path-missing", str(yaml_file), line,
                            f"`path: {raw_path}` does not exist", "point `path:` at the data set's root folder"))
    return None


def _resolve_split(value, root: Path) -> list[Path]:
    """A split's sources, joined to the root exactly like `check_det_dataset` (including its `../` retry)."""
    if isinstance(value, str):
        x = (root / value).resolve()
        if not x.exists() and value.startswith("../"):
            x = (root / value[3:]).resolve()
        return [x]
    return [(root / str(v)).resolve() for v in value]


def read_data_yaml(path: str | Path, splits: list[str] | None = None) -> tuple[DataYaml | None, list[Problem]]:
    """Parse data.yaml into a `DataYaml`, or None plus the problems that make it unusable.

    `splits` limits which splits to check; by default train, val, test, minival and any other key whose
    value is an existing folder or .txt list (e.g. `pool:`).
    """
    file = Path(path)
    problems: list[Problem] = []
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist; pass the data set's data.yaml")
    f = str(file)
    text = file.read_text(encoding="utf-8-sig")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem("error", "yaml-unreadable", f, mark.line + 1 if mark else None,
                                f"not valid YAML ({getattr(exc, 'problem', None) or exc})",
                                "fix the YAML syntax (indentation, a missing ':' or quote)"))
        return None, problems
    if not isinstance(raw, dict):
        problems.append(Problem("error", "yaml-unreadable", f, None,
                                f"expected a mapping of keys (path, train, val, names), got {type(raw).__name__}",
                                "see docs/detection-datasets.md for a data.yaml example"))
        return None, problems
    lines = _key_lines(text)
    if "kpt_shape" in raw:
        problems.append(Problem("error", "yaml-unsupported-task", f, lines.get("kpt_shape"),
                                "a pose data set (`kpt_shape:`); this checker handles boxes and polygons only",
                                "validate pose labels with Ultralytics itself"))
        return None, problems
    if "val" not in raw and "validation" in raw:
        problems.append(Problem("warning", "yaml-validation-key", f, lines.get("validation"),
                                "`validation:` is accepted by Ultralytics but renamed to `val:`", "rename it `val:`"))
        raw["val"] = raw.pop("validation")
        lines["val"] = lines.get("validation")
    for key in ("train", "val"):
        if not raw.get(key):
            problems.append(Problem("error", "yaml-missing-key", f, lines.get(key),
                                    f"data.yaml has no `{key}:` (Ultralytics requires train and val)",
                                    f"add `{key}: images/{key}` (a folder, a list of folders or a .txt list)"))
    names = _parse_names(raw.get("names"), raw.get("nc"), f, lines.get("names") or lines.get("nc"), problems)
    root = _resolve_root(raw.get("path"), file, lines.get("path"), problems)
    if names is None or root is None:
        return None, problems

    resolved: dict[str, list[Path]] = {}
    wanted = splits or [k for k in raw if k in SPLIT_KEYS or k not in META_KEYS]
    for key in wanted:
        value = raw.get(key)
        if value is None or value == "" or value == []:
            if splits and key in splits:
                problems.append(Problem("error", "yaml-missing-key", f, None, f"data.yaml has no `{key}:` split",
                                        f"add `{key}:` or leave it out of --splits"))
            continue
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            if key in SPLIT_KEYS:
                problems.append(Problem("error", "yaml-bad-split", f, lines.get(key),
                                        f"`{key}:` must be a folder, a .txt list or a list of them",
                                        f"write `{key}: images/{key}`"))
            continue
        sources = _resolve_split(value, root)
        missing = [s for s in sources if not s.exists()]
        if key not in SPLIT_KEYS and not (splits and key in splits) and missing:
            continue  # an extra key that is not a path (e.g. `license: MIT`): not a split
        for m in missing:
            problems.append(Problem("error", "split-missing", f, lines.get(key),
                                    f"`{key}:` points to {m}, which does not exist",
                                    "fix the path (relative to `path:`) or create the folder"))
        resolved[key] = [s for s in sources if s.exists()]
    return DataYaml(file=file.resolve(), root=root, names=names, splits=resolved), problems


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
