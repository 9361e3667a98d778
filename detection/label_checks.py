"""Check single files of a YOLO data set: is an image readable, does every label line parse and fit?

Each check returns `Problem`s that name the file and the 1-based line, say what is wrong and how to fix it.
`detection.datasets.check_dataset` runs these over every split; use them directly to check one file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

# Copied from ultralytics 8.4 `ultralytics/data/utils.py` (importing it would pull in torch for a file check).
IMG_FORMATS = frozenset({"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff",
                         "webp"})
# Ultralytics accepts coordinates up to 1% outside [0, 1] (and clips them); beyond that the file is corrupt.
COORD_TOLERANCE = 0.01
MIN_IMAGE_SIDE = 10  # Ultralytics rejects images smaller than 10 px on a side


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data set: where it is, what is wrong, and how to fix it.

    `line` is 1-based (a line of a label file, an image list or data.yaml) or None for a whole file.
    `kind` is a short stable tag (e.g. "class-out-of-range") that tests and scripts can match on.
    """

    level: str  # "error" (Ultralytics drops the image or cannot start) or "warning" (accepted, but suspicious)
    kind: str
    file: str
    line: int | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.message}; fix: {self.fix}"

    def to_dict(self) -> dict:
        return {"level": self.level, "kind": self.kind, "file": self.file, "line": self.line,
                "message": self.message, "fix": self.fix}


def check_image(path: Path, decode: bool = True) -> tuple[tuple[int, int] | None, list[Problem]]:
    """(width, height) of a readable image, or None and an error; `decode` reads every pixel, not just the header."""
    from PIL import Image

    f = str(path)
    fix = "re-export the image, or delete it together with its label file"
    try:
        with Image.open(path) as im:
            im.verify()
            fmt = (im.format or "").lower()
        with Image.open(path) as im:
            size = im.size
            if decode:
                im.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError...) for a broken file
        return None, [Problem("error", "image-corrupt", f, None, f"image cannot be read ({exc})", fix)]
    problems = []
    if min(size) < MIN_IMAGE_SIDE:
        problems.append(Problem("error", "image-too-small", f, None,
                                f"image is {size[0]}x{size[1]} px; Ultralytics rejects sides under {MIN_IMAGE_SIDE}", fix))
    if fmt not in IMG_FORMATS | {"jpeg2000"}:
        problems.append(Problem("error", "image-format", f, None,
                                f"file content is {fmt or 'unknown'}, not one of Ultralytics' image formats",
                                "convert it to JPEG or PNG"))
    if fmt in {"jpeg", "jpg"}:
        with open(path, "rb") as fh:
            fh.seek(-2, 2)
            if fh.read() != b"\xff\xd9":
                problems.append(Problem("warning", "image-jpeg-truncated", f, None,
                                        "JPEG has no end marker; Ultralytics will rewrite this file in place when "
                                        "it first reads it", "re-save the image"))
    return (None if any(p.level == "error" for p in problems) else size), problems


@dataclass
class LabelFile:
    """A parsed label file: one class id per object, and whether objects are boxes, polygons or both."""

    classes: list[int]
    sizes: list[tuple[float, float]] = field(default_factory=list)  # (width, height) per object, normalised
    boxes: int = 0
    polygons: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(p.level == "error" for p in self.problems)


def _polygon_area(xy: list[float]) -> float:
    xs, ys = xy[0::2], xy[1::2]
    return 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))


def check_label_file(path: Path, names: dict[int, str]) -> LabelFile:
    """Parse a YOLO label file line by line; every bad line becomes a `Problem` naming the file and line."""
    f, nc = str(path), len(names)
    out = LabelFile(classes=[])
    add = out.problems.append
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        add(Problem("error", "label-unreadable", f, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                    "re-export the labels as plain UTF-8 text"))
        return out
    parsed: list[tuple[int, int, list[float]]] = []  # (line number, class, coordinates)
    seen: dict[tuple, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        tokens = raw.split()
        if not tokens:
            continue
        k = len(tokens)
        if k < 5 or k == 6 or (k > 6 and (k - 1) % 2):
            if k < 5 and k >= 3 and (k - 1) % 2 == 0:
                msg = (f"polygon with only {(k - 1) // 2} point(s); polygons need at least 3 x,y points "
                       f"(and a box needs 4 numbers after the class)")
                kind = "polygon-too-few-points"
            elif k > 6:
                msg = f"polygon has an odd number of coordinates ({k - 1}); points must be x,y pairs"
                kind = "polygon-odd-coordinates"
            elif k == 6:
                msg = ("6 values: a box has 5 (class x y w h) and a polygon at least 7; an extra column such "
                       "as a confidence from `save_conf` is not allowed")
                kind = "label-malformed"
            else:
                msg = f"{k} value(s); expected `class x_center y_center width height` or `class x1 y1 x2 y2 x3 y3 ...`"
                kind = "label-malformed"
            add(Problem("error", kind, f, n, msg, "rewrite the line in YOLO format or delete it"))
            continue
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            bad = next((i, t) for i, t in enumerate(tokens, 1) if not _is_number(t))
            add(Problem("error", "label-not-a-number", f, n, f"value {bad[1]!r} in column {bad[0]} is not a number",
                        "fix the value; labels hold only numbers"))
            continue
        if not all(math.isfinite(v) for v in values):
            add(Problem("error", "label-not-finite", f, n, "line holds nan or inf", "fix the converter that wrote it"))
            continue
        cls, xy = values[0], values[1:]
        if cls != int(cls):
            add(Problem("error", "class-not-integer", f, n, f"class id {tokens[0]} is not an integer",
                        f"use an integer class id 0..{nc - 1}"))
            continue
        if not 0 <= cls < nc:
            shown = ", ".join(f"{i}={names[i]}" for i in list(names)[:8]) + (", ..." if nc > 8 else "")
            add(Problem("error", "class-out-of-range", f, n,
                        f"class id {int(cls)} is out of range: data.yaml has {nc} classes (0..{nc - 1}: {shown})",
                        "fix the id, or add the class to `names:` in data.yaml"))
            continue
        lo, hi = min(xy), max(xy)
        if lo < -COORD_TOLERANCE or hi > 1 + COORD_TOLERANCE:
            add(Problem("error", "coordinate-out-of-range", f, n,
                        f"coordinate {lo if lo < -COORD_TOLERANCE else hi:g} is outside [0, 1]",
                        "divide pixel coordinates by the image width (x) and height (y)"))
            continue
        if lo < 0 or hi > 1:
            add(Problem("warning", "coordinate-clipped", f, n,
                        f"coordinate {lo if lo < 0 else hi:g} is slightly outside [0, 1]; Ultralytics clips it",
                        "clip coordinates to [0, 1] when converting"))
        if k == 5:
            x, y, w, h = xy
            if w <= 0 or h <= 0:
                add(Problem("error", "box-empty", f, n, f"box width {w:g} / height {h:g} must be > 0",
                            "drop zero-size boxes or fix their corners"))
                continue
            edge = min(x - w / 2, y - h / 2, 1 - x - w / 2, 1 - y - h / 2)
            if edge < -COORD_TOLERANCE:
                add(Problem("warning", "box-past-edge", f, n,
                            f"box reaches {-edge:.3g} past the image edge (x,y are the box centre)",
                            "clip the box to the image before converting to centre/size"))
        elif _polygon_area(xy) <= 1e-8:
            add(Problem("warning", "polygon-degenerate", f, n, "polygon has zero area (points on one line)",
                        "drop it or fix its points"))
        key = (int(cls), *xy)
        if key in seen:
            add(Problem("warning", "label-duplicate", f, n, f"duplicates line {seen[key]}; Ultralytics drops it",
                        "remove the duplicate line"))
            continue
        seen[key] = n
        parsed.append((n, int(cls), xy))

    polygon_lines = [n for n, _, xy in parsed if len(xy) > 4]
    for n, cls, xy in parsed:
        if polygon_lines and len(xy) == 4:
            add(Problem("error", "label-mixed", f, n,
                        f"box line (or a 2-point polygon) in a file of polygons (e.g. line {polygon_lines[0]}); "
                        "Ultralytics rejects files that mix them, and polygons need at least 3 points",
                        "write every object of the file as a polygon of >= 3 points"))
            continue
        out.classes.append(cls)
        xs, ys = xy[0::2], xy[1::2]
        out.sizes.append((xy[2], xy[3]) if len(xy) == 4 else (max(xs) - min(xs), max(ys) - min(ys)))
        if len(xy) == 4:
            out.boxes += 1
        else:
            out.polygons += 1
    return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True

