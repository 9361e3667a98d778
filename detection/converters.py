"""Convert KITTI, Pascal VOC and COCO annotations to an Ultralytics YOLO data set, counting what is dropped.

Every converter writes the same layout and returns a `ConversionReport`:

    OUT/images/<split>/<name>.<ext>    copied (or linked) source images
    OUT/labels/<split>/<name>.txt      one object per line: `class xc yc w h` (or `class x1 y1 ... xn yn`),
                                       normalised to [0, 1]; an empty file is a background image
    OUT/data.yaml                      absolute `path:`, one key per split, `names:` in class-id order

Class names go through a `ClassMap`: source name -> output name, or dropped on purpose. A source class that
the map does not know is never dropped silently: it is counted in `report.unknown` and printed, so you can
add it (`--class-map Tram=car`) or accept the loss. Images go to one split (`split="train"`), or are divided
with a seeded `val_fraction` (`split="auto"`). Converting into an existing OUT adds splits to its data.yaml,
so separate train and val annotation files make one data set.

KITTI and VOC live here; COCO (boxes, polygons, RLE) is in `detection.coco`.
"""

from __future__ import annotations

import os
import random
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from detection.label_checks import IMG_FORMATS

# KITTI object classes -> the project's road-scene classes. Tram and Misc are left out on purpose: they are
# reported as unknown (map them with --class-map Tram=car if you want them).
KITTI_CLASS_MAP: dict[str, str | None] = {
    "Car": "car", "Van": "car", "Truck": "truck", "Pedestrian": "pedestrian", "Person_sitting": "pedestrian",
    "Cyclist": "cyclist", "DontCare": None,
}
IMAGE_MODES = ("copy", "symlink", "hardlink")


class ConversionError(ValueError):
    """Input that cannot be converted at all (wrong folder, unreadable file, contradictory options)."""


@dataclass
class ClassMap:
    """Source class name -> output class id. `names` fixes the output classes and their order.

    `rename[source]` is the output name, or None to drop that class on purpose (counted as dropped, not
    unknown). With `strict=True` a source name missing from `rename` is unknown; otherwise it keeps its
    name. An output name not in `names` is unknown too. With `names=None` output classes are added in
    the order they are first seen, which is why converters pre-scan the sources.
    """

    rename: dict[str, str | None] = field(default_factory=dict)
    names: list[str] | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        self._fixed = self.names is not None
        self.names = list(self.names or [])

    def target(self, source: str) -> str | None:
        """The output class name for `source`, or None when it is dropped on purpose."""
        if source in self.rename:
            return self.rename[source] or None
        return "" if self.strict else source  # "" marks unknown

    def lookup(self, source: str, report: ConversionReport) -> int | None:
        """Class id for `source`, or None (and the reason counted in `report`) when the object is skipped."""
        name = self.target(source)
        if name is None:
            report.dropped[f"class {source} (dropped by the class map)"] += 1
            return None
        if name in self.names:
            return self.names.index(name)
        if name and not self._fixed:
            self.names.append(name)
            return len(self.names) - 1
        report.unknown[source] += 1
        return None


@dataclass
class ConversionReport:
    """What a conversion wrote and what it skipped, and why (nothing is dropped without a count)."""

    source_format: str
    out_dir: Path
    data_yaml: Path | None = None
    names: list[str] = field(default_factory=list)
    images: Counter = field(default_factory=Counter)  # split -> images written
    background: int = 0  # images written with an empty label file
    instances: Counter = field(default_factory=Counter)  # output class name -> objects written
    unknown: Counter = field(default_factory=Counter)  # source class name -> objects not in the class map
    dropped: Counter = field(default_factory=Counter)  # reason -> objects or images skipped on purpose
    converted: Counter = field(default_factory=Counter)  # how objects were transformed (e.g. RLE traced)
    notes: list[str] = field(default_factory=list)  # per-file problems in the source (file:line: ...)

    def to_dict(self) -> dict:
        return {"format": self.source_format, "out_dir": str(self.out_dir), "data_yaml": str(self.data_yaml),
                "names": self.names, "images": dict(self.images), "background_images": self.background,
                "instances": dict(self.instances), "unknown_classes": dict(self.unknown),
                "dropped": dict(self.dropped), "converted": dict(self.converted), "notes": self.notes}

    def summary(self, max_notes: int = 10) -> str:
        """Human-readable lines: written, skipped on purpose, unknown classes (with how to map them)."""
        per_split = ", ".join(f"{s} {n}" for s, n in self.images.items()) or "none"
        lines = [f"converted {self.source_format} -> {self.data_yaml}",
                 f"images: {sum(self.images.values())} ({per_split}); background (no objects): {self.background}",
                 "instances: " + (", ".join(f"{k} {v}" for k, v in self.instances.most_common()) or "none")]
        if self.dropped:
            lines.append("skipped on purpose: " + ", ".join(f"{k}: {v}" for k, v in self.dropped.most_common()))
        if self.converted:
            lines.append("converted: " + ", ".join(f"{k}: {v}" for k, v in self.converted.most_common()))
        if self.unknown:
            lines.append("UNKNOWN classes, not converted: "
                         + ", ".join(f"{k} {v}" for k, v in self.unknown.most_common())
                         + "; map them with --class-map NAME=class (or NAME= to drop them quietly)")
        lines += self.notes[:max_notes]
        if len(self.notes) > max_notes:
            lines.append(f"... and {len(self.notes) - max_notes} more notes (all in conversion.json)")
        return "\n".join(lines)


class YoloWriter:
    """Writes images and label files into the YOLO layout and merges splits into OUT/data.yaml."""

    def __init__(self, out_dir: str | Path, report: ConversionReport, images: str = "copy") -> None:
        if images not in IMAGE_MODES:
            raise ConversionError(f"--images must be one of {', '.join(IMAGE_MODES)}, not {images!r}")
        self.out = Path(out_dir).resolve()
        self.mode = images
        self.report = report

    def add(self, split: str, image: Path, rel: str, lines: list[str]) -> None:
        """Place `image` at images/<split>/<rel> and write its label lines (empty list: background)."""
        dst = self.out / "images" / split / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        try:
            if self.mode == "symlink":
                dst.symlink_to(image.resolve())
            elif self.mode == "hardlink":
                os.link(image, dst)
            else:
                shutil.copy2(image, dst)
        except OSError as exc:  # e.g. a hard link across file systems, or a full disk
            raise ConversionError(f"cannot {self.mode} {image} to {dst} ({exc}); try --image-mode copy") from exc
        label = (self.out / "labels" / split / rel).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        self.report.images[split] += 1
        self.report.background += not lines

    def finish(self, names: list[str]) -> Path:
        """Write OUT/data.yaml (keeping splits an earlier conversion into OUT wrote) and conversion.json."""
        from shared.reporting import write_json

        yml = self.out / "data.yaml"
        data: dict = {}
        if yml.exists():
            data = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
            old = data.get("names")
            old = list(old.values()) if isinstance(old, dict) else old
            if old and names[: len(old)] != old:
                raise ConversionError(f"{yml} already lists classes {old}, this conversion has {names}; pass "
                                      f"--names {','.join(old)} or convert into a new folder")
        splits = {k: v for k, v in data.items() if k not in {"path", "names", "nc"}}
        for split in self.report.images:
            splits[split] = f"images/{split}"
        out = {"path": str(self.out), **splits, "names": list(names)}
        yml.write_text(yaml.safe_dump(out, sort_keys=False), encoding="utf-8")
        self.report.data_yaml, self.report.names = yml, list(names)
        write_json(self.report.to_dict(), self.out / f"conversion-{self.report.source_format}.json")
        return yml


def output_names(out_dir: str | Path, found: list[str]) -> list[str]:
    """Class order for a conversion without --names: the classes of an existing OUT/data.yaml first (their ids
    must not change when a second split is added), then the newly found ones."""
    yml = Path(out_dir) / "data.yaml"
    old = (yaml.safe_load(yml.read_text(encoding="utf-8")) or {}).get("names") if yml.is_file() else None
    old = [str(v) for v in (old.values() if isinstance(old, dict) else old or [])]
    return old + [n for n in found if n not in old]


def assign_splits(keys: list[str], split: str, val_fraction: float, seed: int) -> dict[str, str]:
    """Each key's split: all `split`, or with split='auto' a seeded `val_fraction` to val, the rest to train."""
    if split != "auto":
        return dict.fromkeys(keys, split)
    if not 0 <= val_fraction < 1:
        raise ConversionError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)  # both splits non-empty: Ultralytics needs train and val
    val = set(order[:n_val])
    return {k: "val" if k in val else "train" for k in keys}


def box_line(cls: int, x0: float, y0: float, x1: float, y1: float, w: float, h: float) -> str | None:
    """`cls xc yc bw bh` for a pixel box [x0, y0, x1, y1] clipped to a w x h image; None if nothing is left."""
    x0, x1 = max(0.0, min(x0, w)), max(0.0, min(x1, w))
    y0, y1 = max(0.0, min(y0, h)), max(0.0, min(y1, h))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return f"{cls} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # PIL raises several types for a broken file
        raise ConversionError(f"cannot read image {path} ({exc}); fix or remove it") from exc


def _images_by_stem(images_dir: Path) -> dict[str, Path]:
    if not images_dir.is_dir():
        raise ConversionError(f"images folder {images_dir} does not exist")
    found = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix[1:].lower() in IMG_FORMATS}
    if not found:
        raise ConversionError(f"no images ({', '.join(sorted(IMG_FORMATS))}) in {images_dir}")
    return found


# ------------------------------------------------------------------------------------------------- KITTI


def _read_kitti(path: Path, report: ConversionReport) -> list[tuple[str, list[float]]]:
    """(type, [left, top, right, bottom]) for each well-formed line of a KITTI label file."""
    objects = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) not in (15, 16):  # 16 = a result file with a score column
            report.notes.append(f"{path}:{n}: {len(f)} fields, KITTI has 15 "
                                "(type truncated occluded alpha left top right bottom h w l x y z rotation_y); skipped")
            report.dropped["malformed KITTI line"] += 1
            continue
        try:
            objects.append((f[0], [float(v) for v in f[4:8]]))
        except ValueError:
            report.notes.append(f"{path}:{n}: bbox fields 5-8 are not numbers ({' '.join(f[4:8])}); skipped")
            report.dropped["malformed KITTI line"] += 1
    return objects


def convert_kitti(images_dir: str | Path, labels_dir: str | Path, out_dir: str | Path,
                  class_map: dict[str, str | None] | None = None, names: list[str] | None = None,
                  split: str = "auto", val_fraction: float = 0.2, seed: int = 0,
                  images: str = "copy") -> ConversionReport:
    """KITTI object labels (`label_2/000123.txt` beside `image_2/000123.png`) -> YOLO boxes.

    `class_map` updates `KITTI_CLASS_MAP` (a value of None or "" drops that class); DontCare regions are
    dropped and counted. Images without a label file are skipped (unlabelled is not the same as empty).
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    report = ConversionReport("kitti", Path(out_dir))
    rename = {**KITTI_CLASS_MAP, **(class_map or {})}
    default_names = list(dict.fromkeys(v for v in rename.values() if v))
    cmap = ClassMap(rename, names or output_names(out_dir, default_names), strict=True)
    by_stem = _images_by_stem(images_dir)
    if not labels_dir.is_dir():
        raise ConversionError(f"labels folder {labels_dir} does not exist (KITTI keeps them in training/label_2)")
    labels = {p.stem: p for p in sorted(labels_dir.glob("*.txt"))}
    for stem in sorted(set(labels) - set(by_stem)):
        report.notes.append(f"{labels[stem]}: no image named {stem}.* in {images_dir}; skipped")
        report.dropped["label file without image"] += 1
    report.dropped["image without label file"] += len(set(by_stem) - set(labels))
    stems = sorted(set(by_stem) & set(labels))
    where = assign_splits(stems, split, val_fraction, seed)
    writer = YoloWriter(out_dir, report, images)
    for stem in stems:
        w, h = image_size(by_stem[stem])
        lines = []
        for kind, (left, top, right, bottom) in _read_kitti(labels[stem], report):
            if kind == "DontCare":
                report.dropped["DontCare"] += 1
                continue
            cls = cmap.lookup(kind, report)
            if cls is None:
                continue
            line = box_line(cls, left, top, right, bottom, w, h)
            if line is None:
                report.dropped["zero-size box after clipping"] += 1
                continue
            lines.append(line)
            report.instances[cmap.names[cls]] += 1
        writer.add(where[stem], by_stem[stem], by_stem[stem].name, lines)
    report.dropped = +report.dropped  # drop zero counts
    writer.finish(cmap.names)
    return report


# --------------------------------------------------------------------------------------------- Pascal VOC


def _voc_objects(xml_file: Path) -> tuple[ET.Element, list[ET.Element]]:
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as exc:
        raise ConversionError(f"{xml_file}:{exc.position[0]}: not valid XML ({exc}); fix or remove it") from exc
    return root, root.findall("object")


def convert_voc(images_dir: str | Path, annotations_dir: str | Path, out_dir: str | Path,
                class_map: dict[str, str | None] | None = None, names: list[str] | None = None,
                keep_difficult: bool = False, split: str = "auto", val_fraction: float = 0.2, seed: int = 0,
                images: str = "copy", files: Iterable[str] | None = None) -> ConversionReport:
    """Pascal VOC XML (`Annotations/*.xml`, images in `JPEGImages/`) -> YOLO boxes.

    VOC corners are 1-based pixel indices, so a box xmin..xmax covers [xmin - 1, xmax] in pixel space
    (xmin=1, xmax=W is the whole image). Objects flagged `<difficult>1` are dropped and counted unless
    `keep_difficult`. `files` limits the conversion to these annotation stems (e.g. ImageSets/Main/val.txt).
    Without `names`, classes are the sorted set of names found (after `class_map`).
    """
    images_dir, ann_dir = Path(images_dir), Path(annotations_dir)
    report = ConversionReport("voc", Path(out_dir))
    if not ann_dir.is_dir():
        raise ConversionError(f"annotations folder {ann_dir} does not exist (VOC keeps them in Annotations/)")
    xmls = sorted(ann_dir.glob("*.xml"))
    if files is not None:
        wanted = {s.strip() for s in files if s.strip()}
        xmls = [x for x in xmls if x.stem in wanted]
    if not xmls:
        raise ConversionError(f"no .xml annotation files in {ann_dir}")
    parsed = {x: _voc_objects(x) for x in xmls}
    cmap = ClassMap(class_map or {}, names)
    if names is None:  # a fixed, sorted class order, independent of which file happens to come first
        found = {cmap.target((o.findtext("name") or "").strip()) for _, objs in parsed.values() for o in objs}
        cmap = ClassMap(class_map or {}, output_names(out_dir, sorted(n for n in found if n)))
    located = {}
    for x, (root, _) in parsed.items():
        fname = (root.findtext("filename") or "").strip()
        candidates = [images_dir / fname] if fname else []
        candidates += [images_dir / f"{x.stem}.{e}" for e in ("jpg", "jpeg", "png", "JPG", "PNG")]
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            report.notes.append(f"{x}: image {fname or x.stem + '.*'} not found in {images_dir}; skipped")
            report.dropped["annotation without image"] += 1
        else:
            located[x] = image
    where = assign_splits([x.stem for x in located], split, val_fraction, seed)
    writer = YoloWriter(out_dir, report, images)
    for x, image in located.items():
        root, objects = parsed[x]
        w, h = image_size(image)
        xml_w, xml_h = root.findtext("size/width"), root.findtext("size/height")
        if xml_w and xml_h and (int(float(xml_w)), int(float(xml_h))) not in {(w, h), (0, 0)}:
            report.notes.append(f"{x}: <size> says {xml_w}x{xml_h} but {image.name} is {w}x{h}; used the image")
        lines = []
        for obj in objects:
            name = (obj.findtext("name") or "").strip()
            if obj.findtext("difficult", "0").strip() == "1" and not keep_difficult:
                report.dropped["difficult"] += 1
                continue
            cls = cmap.lookup(name, report)
            if cls is None:
                continue
            try:
                x0, y0, x1, y1 = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                report.notes.append(f"{x}: object {name!r} has no numeric <bndbox>; skipped")
                report.dropped["object without bndbox"] += 1
                continue
            line = box_line(cls, x0 - 1, y0 - 1, x1, y1, w, h)
            if line is None:
                report.dropped["zero-size box after clipping"] += 1
                continue
            lines.append(line)
            report.instances[cmap.names[cls]] += 1
        writer.add(where[x.stem], image, image.name, lines)
    writer.finish(cmap.names)
    return report
