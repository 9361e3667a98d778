"""Named augmentation presets for driving scenes, mapped onto Ultralytics hyperparameters, and a preview grid.

    preset = get_preset("road")                      # a frozen AugmentPreset
    model.train(..., **preset.to_ultralytics())      # hsv_v, degrees, translate, scale, mosaic, ...
    preview_grid("data.yaml", preset, "preview.png") # what training really sees, labels drawn

Every preset keeps `flipud = 0`: road scenes have sky on top and road below, and an upside-down street
teaches the detector nothing it will meet. Horizontal flips are fine (traffic on either side).

Ultralytics hyperparameters used (all applied on the fly, per training sample):
- hsv_h, hsv_s, hsv_v: random hue / saturation / brightness gain (fractions); hsv_v is brightness, the
  main lever for dusk, glare and tunnel exits.
- degrees: random rotation +-degrees (camera roll); translate: shift +- a share of the image side;
  scale: zoom gain +- (objects nearer / farther); shear: +- degrees; perspective: projective warp
  coefficient (camera pitch; keep it below ~0.001).
- fliplr: probability of a horizontal flip; flipud: probability of a vertical flip (always 0 here);
  bgr: probability of swapping colour channels (0: a road camera never does that).
- mosaic: probability of a 2x2 mosaic of four images (more small objects and context per sample);
  mixup: probability of blending two images; copy_paste: probability of pasting object instances with
  their masks into another image (segmentation labels only; box-only labels ignore it); cutmix: probability
  of pasting a rectangular patch of another image (0 in every preset, listed so Ultralytics' default is
  never used silently).
"""

from __future__ import annotations

import dataclasses
import difflib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Fields of AugmentPreset that are Ultralytics training arguments of the same name.
HYPERPARAMETERS = ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective",
                   "flipud", "fliplr", "bgr", "mosaic", "mixup", "cutmix", "copy_paste")
_PROBABILITIES = ("flipud", "fliplr", "bgr", "mosaic", "mixup", "cutmix", "copy_paste", "hsv_h", "hsv_s", "hsv_v", "translate")


@dataclass(frozen=True)
class AugmentPreset:
    """One named set of augmentation hyperparameters and a sentence on when to use it.

    Units: hsv_* are gains (fractions), degrees and shear in degrees, translate a share of the image side,
    scale a zoom gain (+-), perspective a projective coefficient, the rest probabilities in [0, 1].
    """

    name: str
    when: str
    hsv_h: float = 0.0
    hsv_s: float = 0.0
    hsv_v: float = 0.0
    degrees: float = 0.0
    translate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    perspective: float = 0.0
    flipud: float = 0.0
    fliplr: float = 0.0
    bgr: float = 0.0
    mosaic: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    copy_paste: float = 0.0

    def __post_init__(self) -> None:
        for k in HYPERPARAMETERS:
            v = getattr(self, k)
            if not isinstance(v, int | float) or isinstance(v, bool) or not np.isfinite(v) or v < 0:
                raise ValueError(f"augmentation {self.name}: {k} must be a non-negative number, got {v!r}")
        for k in _PROBABILITIES:
            if getattr(self, k) > 1:
                raise ValueError(f"augmentation {self.name}: {k} must be in [0, 1], got {getattr(self, k)}")
        if self.flipud:
            raise ValueError(f"augmentation {self.name}: flipud={self.flipud}, but vertical flips put the road "
                             "in the sky; road-scene presets keep flipud=0")
        if self.degrees > 45 or self.shear > 45:
            raise ValueError(f"augmentation {self.name}: degrees/shear above 45 turn road scenes sideways "
                             f"(got degrees={self.degrees}, shear={self.shear})")
        if self.perspective > 0.001:
            raise ValueError(f"augmentation {self.name}: perspective={self.perspective} warps images beyond "
                             "recognition; Ultralytics' useful range is 0 to 0.001")

    def to_ultralytics(self) -> dict[str, float]:
        """The keyword arguments for `YOLO.train` (every hyperparameter set, so no Ultralytics default leaks)."""
        return {k: float(getattr(self, k)) for k in HYPERPARAMETERS}

    def with_overrides(self, overrides: dict[str, float] | None) -> AugmentPreset:
        """A copy with some hyperparameters replaced (e.g. {'degrees': 3}); unknown names fail with a hint."""
        if not overrides:
            return self
        for k in overrides:
            if k not in HYPERPARAMETERS:
                close = difflib.get_close_matches(k, HYPERPARAMETERS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown augmentation hyperparameter {k!r}{hint} Valid: {', '.join(HYPERPARAMETERS)}")
        return dataclasses.replace(self, name=f"{self.name}+custom", **{k: float(v) for k, v in overrides.items()})


PRESETS: dict[str, AugmentPreset] = {p.name: p for p in (
    AugmentPreset(
        "none", "debugging labels, overfitting a handful of images on purpose, or measuring what augmentation "
                "buys (the ablation baseline)."),
    AugmentPreset(
        "light", "fine-tuning an already trained detector (mining rounds) or large data sets: keeps images "
                 "close to the real distribution so a short schedule does not forget.",
        hsv_h=0.01, hsv_s=0.3, hsv_v=0.25, translate=0.05, scale=0.25, fliplr=0.5, mosaic=0.5),
    AugmentPreset(
        "road", "the default for training on driving scenes from scratch: brightness changes, slight camera "
                "roll and pitch, objects at other distances, mosaic for many small objects.",
        hsv_h=0.015, hsv_s=0.5, hsv_v=0.4, degrees=2.0, translate=0.1, scale=0.5, perspective=0.0002,
        fliplr=0.5, mosaic=1.0),
    AugmentPreset(
        "road-strong", "small data sets (a few hundred images) or long schedules that overfit, and strong "
                       "lighting variation (night, glare): more of everything plus mixup.",
        hsv_h=0.02, hsv_s=0.7, hsv_v=0.6, degrees=5.0, translate=0.2, scale=0.7, shear=2.0, perspective=0.0005,
        fliplr=0.5, mosaic=1.0, mixup=0.15),
    AugmentPreset(
        "road-seg", "segmentation models (yolo11n-seg) on polygon labels: `road` plus copy-paste of object "
                    "instances with their masks, which multiplies rare objects; box-only labels ignore it.",
        hsv_h=0.015, hsv_s=0.5, hsv_v=0.4, degrees=2.0, translate=0.1, scale=0.5, perspective=0.0002,
        fliplr=0.5, mosaic=1.0, copy_paste=0.3),
)}


def get_preset(name: str, overrides: dict[str, float] | None = None) -> AugmentPreset:
    """The preset called `name` (see PRESETS), with optional per-hyperparameter overrides."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown augmentation preset {name!r}{hint} Choose one of: {', '.join(PRESETS)}")
    return PRESETS[name].with_overrides(overrides)


def presets_table() -> list[dict]:
    """One row per preset: its name, every hyperparameter and when to use it (for docs and `--help`)."""
    return [{"preset": p.name, **{k: getattr(p, k) for k in HYPERPARAMETERS if k not in ("flipud", "bgr", "cutmix")},
             "when": p.when}
            for p in PRESETS.values()]


# ------------------------------------------------------------------------------------------------ preview


def _palette(c: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(c * 7919 + 13)
    return tuple(int(x) for x in rng.integers(40, 255, 3))


def _draw_sample(img: np.ndarray, boxes_xywhn: np.ndarray, classes: np.ndarray, names: dict[int, str],
                 masks: np.ndarray | None = None) -> np.ndarray:
    """Draw normalised xywh boxes (and masks, [K, h, w]) with class names on an RGB image [H, W, 3]."""
    import cv2

    img = np.ascontiguousarray(img).copy()
    h, w = img.shape[:2]
    if masks is not None and len(masks):
        overlay = img.copy()
        for k, m in enumerate(masks):
            m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            overlay[m] = _palette(int(k) + 101)
        img = cv2.addWeighted(img, 0.6, overlay, 0.4, 0)
    for (cx, cy, bw, bh), c in zip(boxes_xywhn, classes, strict=True):
        x1, y1 = int((cx - bw / 2) * w), int((cy - bh / 2) * h)
        x2, y2 = int((cx + bw / 2) * w), int((cy + bh / 2) * h)
        colour = _palette(int(c))
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 1)
        cv2.putText(img, names.get(int(c), str(int(c))), (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                    colour, 1, cv2.LINE_AA)
    return img


def augmented_samples(data_yaml: str | Path, preset: AugmentPreset, n: int = 8, imgsz: int = 320,
                      seed: int = 0, split: str = "train", task: str = "detect") -> list[dict]:
    """`n` training samples exactly as Ultralytics' training pipeline builds them under `preset`.

    Each sample: {"img": RGB uint8 [imgsz, imgsz, 3], "bboxes": normalised xywh [K, 4], "cls": [K],
    "masks": [K', h, w] or None, "file": source image}. Same seed, same samples.
    """
    import torch

    from shared.offline import yolo

    yolo()
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(data_yaml))
    cfg = get_cfg(overrides={"imgsz": imgsz, "task": task, "cache": False, "fraction": 1.0, **preset.to_ultralytics()})
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = build_yolo_dataset(cfg, data[split], batch=16, data=data, mode="train", stride=32)
    if len(dataset) == 0:
        raise ValueError(f"split {split!r} of {data_yaml} has no images to preview")
    rng = np.random.default_rng(seed)
    # Mosaic and mixup draw partners from the images loaded so far (Ultralytics' buffer); fill it first, as
    # training has after its first batches, or early tiles would repeat one image.
    for i in rng.choice(len(dataset), size=min(64, len(dataset)), replace=False):
        dataset.load_image(int(i))
    picks = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    out = []
    for i in picks:
        s = dataset[int(i)]
        img = s["img"].numpy().transpose(1, 2, 0)  # CHW RGB (Ultralytics' Format flips BGR->RGB)
        masks = s.get("masks")
        if masks is not None and task == "segment":
            masks = masks.numpy()
        else:
            masks = None
        out.append({"img": img, "bboxes": s["bboxes"].numpy().reshape(-1, 4), "cls": s["cls"].numpy().reshape(-1),
                    "masks": masks, "file": s.get("im_file")})
    return out


def preview_grid(data_yaml: str | Path, preset: AugmentPreset, out_png: str | Path, n: int = 8, imgsz: int = 320,
                 seed: int = 0, split: str = "train", task: str = "detect", columns: int = 4) -> Path:
    """Write a PNG grid of `n` augmented training samples with their (augmented) labels drawn."""
    import cv2

    from detection.datasets import read_data_yaml

    data, _ = read_data_yaml(data_yaml)
    names = data.names if data else {}
    samples = augmented_samples(data_yaml, preset, n, imgsz, seed, split, task)
    tiles = []
    for s in samples:
        if task == "segment" and s["masks"] is not None and len(s["masks"]) != len(s["cls"]):
            # Ultralytics packs overlapping masks into one index map; draw it as instance masks
            m = s["masks"]
            ids = np.unique(m[m > 0]) if m.ndim == 3 else []
            s["masks"] = np.stack([(m[0] == k) for k in ids]) if len(ids) else None
        tile = _draw_sample(s["img"], s["bboxes"], s["cls"], names, s["masks"])
        tiles.append(cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    columns = max(1, min(columns, len(tiles)))
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)]
    grid = np.vstack(rows)
    header = np.full((18, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(header, f"preset {preset.name}  seed {seed}  imgsz {imgsz}", (4, 13), cv2.FONT_HERSHEY_SIMPLEX,
                0.4, (0, 0, 0), 1, cv2.LINE_AA)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), cv2.cvtColor(np.vstack([header, grid]), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {out_png}; check the folder is writable")
    return out_png
