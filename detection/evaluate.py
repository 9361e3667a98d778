"""Evaluate a detector on a labelled split: mAP (box and mask), per-class AP, and the operating point.

    result = evaluate("runs/train-.../", "scenes/data.yaml", EvalConfig(conf=0.25), out_dir)
    result.metrics["fp_per_image"], result.metrics["recall"], result.per_class  # rows of the AP table

Two views of the same model:
- Ranking quality (Ultralytics' validator, all confidences down to 0.001): mAP50, mAP50-95 for boxes (and
  masks for segmentation models), AP50 and AP50-95 per class.
- The operating point, i.e. what a user of the detector sees at `conf`: predictions at confidence >= conf are
  matched one-to-one to ground truth of the same class at IoU >= 0.5 (`match_to_ground_truth`). A prediction
  without a match is a false positive; a truth object without one is missed. Reported: false positives per
  image, recall, precision, per class, and a confusion matrix (class-agnostic matching at IoU 0.5, so a car
  called a truck shows up off the diagonal; unmatched predictions go to the `background` column).

Writes metrics.json, report.md, per_image.csv and confusion_matrix.png.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detection.datasets import img2label_path, list_images, read_data_yaml
from detection.detections import Detections, match_to_ground_truth


@dataclass
class EvalConfig:
    """Options of `detection evaluate` (configs/detection.yaml `evaluate:` section).

    conf: operating confidence (a prediction at or above it counts); iou_match: IoU for a prediction to match
    a truth object; nms_iou: IoU of non-maximum suppression; rare_classes: class names reported as rare
    (empty: the class with the fewest training instances); split: which split of data.yaml to evaluate.
    """

    conf: float = 0.25
    iou_match: float = 0.5
    nms_iou: float = 0.7
    imgsz: int = 320
    batch: int = 16
    split: str = "val"
    device: str = "cpu"
    rare_classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for k in ("conf", "iou_match", "nms_iou"):
            v = getattr(self, k)
            if not 0 < v < 1:
                raise ValueError(f"evaluate.{k} must be between 0 and 1, got {v}")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"evaluate.imgsz must be a multiple of 32, got {self.imgsz}")


@dataclass
class EvalResult:
    """Metrics (also in metrics.json), the per-class table rows, and where the files went."""

    metrics: dict[str, Any]
    per_class: list[dict[str, Any]]
    confusion: np.ndarray
    files: dict[str, Path]
    curve: FpRecallCurve | None = None


# -------------------------------------------------------------------------------------------- ground truth


def load_truth(image: str | Path, size: tuple[int, int] | None = None) -> Detections:
    """Ground truth of one image from its YOLO label file (no file or empty file: no objects).

    size: (width, height) in pixels; read from the image header when not given.
    """
    label = img2label_path(image)
    if not label.is_file():
        return Detections.empty()
    lines = label.read_text(encoding="utf-8").splitlines()
    if not any(line.strip() for line in lines):
        return Detections.empty()
    if size is None:
        from PIL import Image

        with Image.open(image) as im:
            size = im.size
    return Detections.from_yolo_labels(lines, size[0], size[1])


def predict_images(model, images: list[Path], imgsz: int, conf: float, nms_iou: float = 0.7, batch: int = 16,
                   device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> list[Detections]:
    """Run an Ultralytics YOLO model over image files, `batch` at a time -> one Detections per image."""
    out: list[Detections] = []
    for s in range(0, len(images), batch):
        chunk = [str(p) for p in images[s:s + batch]]
        for r in model.predict(chunk, imgsz=imgsz, conf=conf, iou=nms_iou, device=device, verbose=False,
                               batch=len(chunk), retina_masks=False):
            out.append(Detections.from_ultralytics(r))
        if progress:
            progress(len(out), len(images))
    return out


@dataclass(frozen=True)
class ImageOutcome:
    """Matching result of one image at the operating confidence."""

    image: Path
    predictions: int
    false_positives: int
    fp_confidence: float  # sum of the false positives' confidences (how confidently wrong)
    truths: int
    missed: int
    missed_classes: tuple[int, ...]
    fp_classes: tuple[int, ...]


def match_images(images: Iterable[Path], preds: Iterable[Detections], truths: Iterable[Detections],
                 iou: float = 0.5) -> list[ImageOutcome]:
    """Class-aware one-to-one matching per image (`match_to_ground_truth`), summarised."""
    out = []
    for img, p, t in zip(images, preds, truths, strict=True):
        m = match_to_ground_truth(p, t, iou_threshold=iou)
        fp = ~m.tp
        out.append(ImageOutcome(Path(img), len(p), int(fp.sum()), float(p.confidence[fp].sum()), len(t),
                                int(m.missed.sum()), tuple(int(c) for c in t.class_id[m.missed]),
                                tuple(int(c) for c in p.class_id[fp])))
    return out


def confusion_matrix(preds: Iterable[Detections], truths: Iterable[Detections], nc: int,
                     iou: float = 0.5) -> np.ndarray:
    """[nc + 1, nc + 1] counts, rows = predicted class, columns = true class; index nc is background.

    Matching ignores the class (IoU >= iou, one-to-one, by confidence) so confusions between classes show.
    """
    cm = np.zeros((nc + 1, nc + 1), np.int64)
    for p, t in zip(preds, truths, strict=True):
        m = match_to_ground_truth(p, t, iou_threshold=iou, class_aware=False)
        for i, j in enumerate(m.matched_truth):
            cm[p.class_id[i], t.class_id[j] if j >= 0 else nc] += 1
        for j in np.flatnonzero(m.missed):
            cm[nc, t.class_id[j]] += 1
    return cm


def operating_point(outcomes: list[ImageOutcome], nc: int) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """Overall and per-class false positives per image, recall and precision from matched images."""
    n = max(len(outcomes), 1)
    preds = sum(o.predictions for o in outcomes)
    fps = sum(o.false_positives for o in outcomes)
    truths = sum(o.truths for o in outcomes)
    missed = sum(o.missed for o in outcomes)
    overall = {"images": len(outcomes), "predictions": preds, "false_positives": fps, "fp_per_image": fps / n,
               "truths": truths, "recall": (truths - missed) / truths if truths else float("nan"),
               "precision": (preds - fps) / preds if preds else float("nan"),
               "images_with_fp": sum(o.false_positives > 0 for o in outcomes) / n}
    per: dict[int, dict[str, float]] = {}
    for c in range(nc):
        miss = sum(o.missed_classes.count(c) for o in outcomes)
        fp = sum(o.fp_classes.count(c) for o in outcomes)
        per[c] = {"missed": miss, "fp": fp, "fp_per_image": fp / n}
    return overall, per


CURVE_CONF = 0.01  # predictions down to this confidence feed the false-positive / recall curve


@dataclass(frozen=True)
class FpRecallCurve:
    """False positives per image against recall as the confidence threshold falls (like a miss-rate/FPPI curve).

    conf [K] descending thresholds, recall [K] and fp_per_image [K] of the predictions at or above each.
    """

    conf: np.ndarray
    recall: np.ndarray
    fp_per_image: np.ndarray

    def at_recall(self, recall: float) -> dict[str, float] | None:
        """The lowest false positives per image with recall >= `recall` (None if never reached)."""
        ok = np.flatnonzero(self.recall >= recall - 1e-9)
        if not len(ok):
            return None
        i = int(ok[0])  # fp_per_image only grows as the threshold falls: the first point is the cheapest
        return {"conf": float(self.conf[i]), "recall": float(self.recall[i]), "fp_per_image": float(self.fp_per_image[i])}


def fp_recall_curve(preds: list[Detections], truths: list[Detections], iou: float = 0.5) -> FpRecallCurve:
    """Match every prediction once (greedy by confidence, so each threshold's matches are a prefix) -> curve."""
    confs, tps = [], []
    n_truth = sum(len(t) for t in truths)
    for p, t in zip(preds, truths, strict=True):
        m = match_to_ground_truth(p, t, iou_threshold=iou)
        confs.append(p.confidence)
        tps.append(m.tp)
    conf = np.concatenate(confs) if confs else np.zeros(0, np.float32)
    tp = np.concatenate(tps) if tps else np.zeros(0, bool)
    order = np.argsort(-conf, kind="stable")
    conf, tp = conf[order], tp[order]
    n_img = max(len(preds), 1)
    return FpRecallCurve(conf, np.cumsum(tp) / max(n_truth, 1), np.cumsum(~tp) / n_img)


# -------------------------------------------------------------------------------------------------- main


def rare_class_ids(names: dict[int, str], wanted: list[str], train_counts: dict[int, int] | None) -> list[int]:
    """Class ids of `wanted` names (error names the valid ones), or the least frequent training class."""
    if wanted:
        by_name = {v: k for k, v in names.items()}
        bad = [w for w in wanted if w not in by_name]
        if bad:
            raise ValueError(f"rare class {', '.join(bad)} is not in the data set's names "
                             f"({', '.join(names.values())}); fix rare_classes")
        return [by_name[w] for w in wanted]
    if not train_counts:
        return []
    present = {c: n for c, n in train_counts.items() if n > 0}
    return [min(present, key=lambda c: (present[c], c))] if present else []


def class_counts(images: list[Path]) -> dict[int, int]:
    """Objects per class in the label files of `images`."""
    counts: dict[int, int] = {}
    for img in images:
        label = img2label_path(img)
        if label.is_file():
            for line in label.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    c = int(float(line.split()[0]))
                    counts[c] = counts.get(c, 0) + 1
    return counts


def evaluate(model: str | Path, data_yaml: str | Path, cfg: EvalConfig, out_dir: str | Path | None = None,
             log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate `model` (run directory, .pt) on `cfg.split` of `data_yaml`; write the report into `out_dir`."""
    from detection.backends import resolve_model
    from detection.train import box_mask_metrics, check_training_data
    from shared.offline import yolo
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    weights = resolve_model(model)
    if weights.suffix != ".pt":
        raise ValueError(f"evaluate needs a PyTorch model (a run directory or .pt), got {weights.name}")
    data = check_training_data(data_yaml, "detect", splits=(cfg.split,))
    out = Path(out_dir) if out_dir else new_run_dir(runs_dir(), "evaluate")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    yolo_model = yolo().YOLO(str(weights))
    task = yolo_model.task
    names = {int(k): v for k, v in yolo_model.names.items()}
    if len(names) != len(data.names):
        raise ValueError(f"model {weights} knows {len(names)} classes, {data.file} has {len(data.names)}; "
                         "evaluate on the data set the model was trained for")
    images = list_images(data.splits[cfg.split], [])
    log(f"evaluating {weights} ({task}) on {len(images)} {cfg.split} images at {cfg.imgsz} px")

    val = yolo_model.val(data=str(data.file), split=cfg.split, imgsz=cfg.imgsz, batch=cfg.batch, iou=cfg.nms_iou,
                         device=cfg.device, workers=0, plots=False, verbose=False, project=str(out),
                         name="ultralytics-val", exist_ok=True)
    metrics: dict[str, Any] = {**box_mask_metrics(val, task), "task": task, "split": cfg.split,
                               "conf": cfg.conf, "iou_match": cfg.iou_match, "imgsz": cfg.imgsz}
    ap50 = dict(zip((int(c) for c in val.box.ap_class_index), (float(v) for v in val.box.ap50), strict=True))
    ap = dict(zip((int(c) for c in val.box.ap_class_index), (float(v) for v in val.box.ap), strict=True))
    mask_ap50: dict[int, float] = {}
    if task == "segment":
        mask_ap50 = dict(zip((int(c) for c in val.seg.ap_class_index), (float(v) for v in val.seg.ap50),
                             strict=True))

    def progress(done: int, total: int) -> None:
        if done == total or done % (cfg.batch * 8) == 0:
            log(f"  operating point: {done}/{total} images")

    # one pass at a low confidence: the curve uses all of it, the operating point the part >= conf (greedy
    # matching by confidence makes the two agree exactly)
    low = predict_images(yolo_model, images, cfg.imgsz, min(cfg.conf, CURVE_CONF), cfg.nms_iou, cfg.batch,
                         cfg.device, progress)
    truths = [load_truth(p, None) for p in images]
    curve = fp_recall_curve(low, truths, cfg.iou_match)
    preds = [d[d.confidence >= cfg.conf] for d in low]
    outcomes = match_images(images, preds, truths, cfg.iou_match)
    overall, per = operating_point(outcomes, len(names))
    metrics.update(overall)
    truth_counts = np.bincount(np.concatenate([t.class_id for t in truths] or [np.zeros(0, np.int64)]),
                               minlength=len(names))
    everything, _ = read_data_yaml(data.file)  # the train split (for "rare" = least frequent in training)
    train_images = list_images(everything.splits.get("train", []), []) if everything else []
    rare = rare_class_ids(names, cfg.rare_classes, class_counts(train_images) if train_images else None)
    rows = []
    for c, name in names.items():
        n_truth = int(truth_counts[c])
        row = {"class": name, "instances": n_truth, "ap50": ap50.get(c), "ap50_95": ap.get(c),
               "recall": (n_truth - per[c]["missed"]) / n_truth if n_truth else None,
               "fp_per_image": per[c]["fp_per_image"], "rare": c in rare}
        if task == "segment":
            row["mask_ap50"] = mask_ap50.get(c)
        rows.append(row)
    rare_ap = [ap50.get(c, 0.0) for c in rare]
    rare_recall = [r["recall"] for r in rows if r["rare"] and r["recall"] is not None]
    metrics.update(rare_classes=[names[c] for c in rare],
                   rare_ap50=float(np.mean(rare_ap)) if rare_ap else None,
                   rare_recall=float(np.mean(rare_recall)) if rare_recall else None,
                   per_class={r["class"]: {k: v for k, v in r.items() if k != "class"} for r in rows})
    cm = confusion_matrix(preds, truths, len(names), cfg.iou_match)
    files = write_report(out, metrics, rows, cm, names, outcomes, weights, data.file)
    files["curve"] = out / "fp_recall_curve.csv"
    with open(files["curve"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["conf", "recall", "fp_per_image"])
        step = max(1, len(curve.conf) // 500)
        for i in range(0, len(curve.conf), step):
            w.writerow([f"{curve.conf[i]:.4f}", f"{curve.recall[i]:.4f}", f"{curve.fp_per_image[i]:.4f}"])
    log(f"box mAP50 {metrics['box_map50']:.3f}  mAP50-95 {metrics['box_map50_95']:.3f}  at conf {cfg.conf}: "
        f"{metrics['fp_per_image']:.3f} false positives/image, recall {metrics['recall']:.3f} -> {files['report']}")
    return EvalResult(metrics, rows, cm, files, curve)


def write_report(out: Path, metrics: dict, rows: list[dict], cm: np.ndarray, names: dict[int, str],
                 outcomes: list[ImageOutcome], weights: Path, data_file: Path) -> dict[str, Path]:
    """metrics.json, report.md, per_image.csv and confusion_matrix.png in `out`."""
    from shared.reporting import markdown_table, new_figure, save_figure, write_json

    files = {"metrics": write_json(metrics, out / "metrics.json")}
    cols = ["class", "instances", "ap50", "ap50_95", *(["mask_ap50"] if "mask_map50" in metrics else []),
            "recall", "fp_per_image", "rare"]
    head = [{"metric": k, "value": metrics.get(k)} for k in
            ("box_map50", "box_map50_95", "mask_map50", "mask_map50_95", "fp_per_image", "recall", "precision",
             "images_with_fp", "rare_ap50", "rare_recall") if k in metrics]
    text = (f"# Detection evaluation\n\nmodel: `{weights}`  \ndata: `{data_file}` split `{metrics['split']}` "
            f"({metrics['images']} images, {metrics['truths']} objects), {metrics['imgsz']} px\n\n"
            f"mAP over all confidences (Ultralytics validator); the operating point uses predictions at "
            f"confidence >= {metrics['conf']} matched to ground truth at IoU >= {metrics['iou_match']}.\n\n"
            + markdown_table(head) + "\n## Per class\n\n" + markdown_table(rows, cols)
            + "\n![confusion matrix](confusion_matrix.png)\n")
    files["report"] = out / "report.md"
    files["report"].write_text(text, encoding="utf-8")
    files["per_image"] = out / "per_image.csv"
    with open(files["per_image"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "predictions", "false_positives", "truths", "missed"])
        for o in outcomes:
            w.writerow([o.image, o.predictions, o.false_positives, o.truths, o.missed])
    labels = [names[c] for c in sorted(names)] + ["background"]
    fig, ax = new_figure(1.2 + 0.55 * len(labels), 1.0 + 0.5 * len(labels))
    ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("true class")
    ax.set_ylabel("predicted class")
    ax.set_title(f"confusion at conf >= {metrics['conf']}, IoU >= {metrics['iou_match']}", fontsize=8)
    files["confusion"] = save_figure(fig, out / "confusion_matrix.png")
    return files

