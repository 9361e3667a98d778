"""COCO JSON (boxes, polygons, RLE masks) -> an Ultralytics YOLO data set (layout: `detection.converters`).

COCO annotation fields used, all in pixels of the image's `width` x `height`:

    bbox          [x_left, y_top, width, height]
    segmentation  polygons: [[x1, y1, x2, y2, ...], ...] (one object may have several parts)
                  or RLE: {"size": [h, w], "counts": [run lengths] or "compressed string"}
    iscrowd       1 marks a region of many objects (always RLE)

Choices (documented in docs/detection-datasets.md):
- `iscrowd: 1` annotations are skipped and counted: a crowd region is not one object, and training it as
  one teaches wrong boxes (Ultralytics' own COCO converter skips them too).
- With `segments=True` each object becomes one YOLO polygon. Several polygon parts are joined into one
  outline with zero-width bridges between nearest points; an RLE mask (not crowd) is decoded and traced
  with OpenCV. An object with no usable outline is skipped and counted (a polygon file must not mix in boxes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detection.converters import (
    ClassMap,
    ConversionError,
    ConversionReport,
    YoloWriter,
    assign_splits,
    box_line,
    output_names,
)


def rle_counts(counts: list[int] | str) -> list[int]:
    """Run lengths of a COCO RLE: a list as is, or decoded from the compressed string (pycocotools' rleFrString)."""
    if isinstance(counts, list):
        return [int(c) for c in counts]
    out: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)  # sign-extend the last chunk
        if len(out) > 2:
            x += out[-2]  # counts after the second are stored as differences to the one two back
        out.append(x)
    return out


def rle_to_mask(rle: dict) -> np.ndarray:
    """A [height, width] uint8 mask from a COCO RLE (runs alternate 0s and 1s, column-major order)."""
    h, w = rle["size"]
    flat = np.zeros(h * w, dtype=np.uint8)
    pos, value = 0, 0
    for run in rle_counts(rle["counts"]):
        if value:
            flat[pos:pos + run] = 1
        pos += run
        value ^= 1
    return flat.reshape(w, h).T


def mask_to_parts(mask: np.ndarray) -> list[np.ndarray]:
    """Outer contours of a binary mask as [k, 2] pixel arrays (x, y), largest first, tiny specks dropped."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = [c.reshape(-1, 2).astype(np.float64) for c in contours if len(c) >= 3]
    return sorted(parts, key=lambda c: -abs(cv2.contourArea(c.astype(np.float32))))


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One outline [k, 2] from several polygon parts, each joined at its nearest point by a zero-width bridge.

    The result walks part A to the bridge point a, jumps to B's nearest point b, goes all the way round B
    back to b, returns to a and continues round A: filled, it covers exactly the union of the parts.
    """
    merged = parts[0]
    for part in parts[1:]:
        d = ((merged[:, None, :] - part[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(d.argmin()), d.shape)
        loop = np.roll(part, -j, axis=0)
        merged = np.concatenate([merged[: i + 1], loop, loop[:1], merged[i:]])
    return merged


def _outline(ann: dict, report: ConversionReport) -> np.ndarray | None:
    seg = ann.get("segmentation")
    if isinstance(seg, list):
        parts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6 and len(p) % 2 == 0]
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        parts = mask_to_parts(rle_to_mask(seg))
        report.converted["RLE mask traced to a polygon"] += 1
    else:
        parts = []
    if not parts:
        return None
    if len(parts) > 1:
        report.converted["multi-part outline joined into one polygon"] += 1
    return merge_parts(parts)


def convert_coco(images_dir: str | Path, annotations: str | Path, out_dir: str | Path,
                 segments: bool = False, class_map: dict[str, str | None] | None = None,
                 names: list[str] | None = None, split: str = "auto", val_fraction: float = 0.2, seed: int = 0,
                 images: str = "copy") -> ConversionReport:
    """A COCO instances JSON -> YOLO boxes (or polygons with `segments=True`); `file_name` is under `images_dir`.

    Without `names`, classes are the JSON's categories in id order (renamed by `class_map`), so COCO's
    sparse ids 1..90 become contiguous YOLO ids 0..n-1. Images with no annotations become background.
    """
    images_dir, ann_file = Path(images_dir), Path(annotations)
    report = ConversionReport("coco-seg" if segments else "coco", Path(out_dir))
    try:
        coco = json.loads(ann_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"COCO annotation file {ann_file} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{ann_file}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    missing = [k for k in ("images", "annotations", "categories") if k not in coco]
    if missing:
        raise ConversionError(f"{ann_file} has no {', '.join(missing)}: expected a COCO instances file")
    categories = {c["id"]: c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])}
    cmap = ClassMap(class_map or {}, names)
    if names is None:
        found = list(dict.fromkeys(t for t in map(cmap.target, categories.values()) if t))
        cmap = ClassMap(class_map or {}, output_names(out_dir, found))
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    known_ids = {im["id"] for im in coco["images"]}
    orphans = sum(len(v) for k, v in by_image.items() if k not in known_ids)
    if orphans:
        report.dropped["annotation of an image id not in images"] += orphans

    located = []
    for im in coco["images"]:
        path = images_dir / im["file_name"]
        if path.is_file():
            located.append((im, path))
        else:
            report.notes.append(f"{ann_file}: image id {im['id']} file {path} not found; skipped")
            report.dropped["image file missing"] += 1
    where = assign_splits([im["file_name"] for im, _ in located], split, val_fraction, seed)
    writer = YoloWriter(out_dir, report, images)
    for im, path in located:
        w, h = float(im["width"]), float(im["height"])
        lines = []
        for ann in by_image.get(im["id"], []):
            if ann.get("iscrowd", 0):
                report.dropped["iscrowd (crowd region)"] += 1
                continue
            source = categories.get(ann["category_id"])
            if source is None:
                report.unknown[f"category_id {ann['category_id']}"] += 1
                continue
            cls = cmap.lookup(source, report)
            if cls is None:
                continue
            if segments:
                outline = _outline(ann, report)
                if outline is None:
                    report.dropped["object without a polygon or RLE mask"] += 1
                    continue
                xy = np.clip(outline / [w, h], 0.0, 1.0).reshape(-1)
                line = f"{cls} " + " ".join(f"{v:.6f}" for v in xy)
            else:
                x, y, bw, bh = (float(v) for v in ann["bbox"])
                line = box_line(cls, x, y, x + bw, y + bh, w, h)
                if line is None:
                    report.dropped["zero-size box after clipping"] += 1
                    continue
            lines.append(line)
            report.instances[cmap.names[cls]] += 1
        writer.add(where[im["file_name"]], path, im["file_name"], lines)
    writer.finish(cmap.names)
    return report
