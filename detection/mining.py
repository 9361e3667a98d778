"""Hard-negative mining rounds: find what the detector gets wrong in a pool of images, then fine-tune on it.

One round (`mine_round`):
1. Run the current model over the mining pool at the mining confidence.
2. Keep pool images with confident false positives (a prediction >= conf that matches no ground truth of its
   class at IoU >= 0.5) and images where a rare-class object is missed (labelled pools only).
3. De-duplicate them (64-bit difference hash of the grey image: near-identical frames, e.g. consecutive
   video frames, count once) and drop images mined in earlier rounds.
4. Build a new training set: the original training images, rare-class images (training images holding a rare
   class, plus the mined ones) repeated `rare_oversample` times, and the false-positive images, most
   confidently wrong first, capped so they are at most `background_share` of the set. A false-positive image
   keeps its labels (its real objects stay positives; the look-alike that fooled the model is unlabelled and so
   becomes a negative); images from a pool declared background get an empty label file.
5. Fine-tune from the current weights (lower learning rate, `light` augmentation by default).

The pool must be separate from the validation set the before/after report uses: nothing is chosen on val.
The set is materialised as symlinks (`<round>/data/images/train/000042_<name>.jpg`) with copied labels, so
oversampled copies are distinct files and Ultralytics' label cache lands in the round folder, not in the data.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detection.datasets import DataYaml, img2label_path, list_images, read_data_yaml
from detection.detections import Detections
from detection.evaluate import (
    EvalConfig,
    ImageOutcome,
    class_counts,
    evaluate,
    load_truth,
    match_images,
    predict_images,
    rare_class_ids,
)
from detection.train import TrainConfig, TrainingInputError, train


def _finetune_default() -> TrainConfig:
    # an explicit optimizer: with optimizer=auto Ultralytics ignores lr0 and picks its own (AdamW 0.001 here)
    return TrainConfig(epochs=8, optimizer="AdamW", lr0=0.0005, warmup_epochs=0.0, close_mosaic=2, preset="light")


@dataclass
class MineConfig:
    """Options of `detection mine` (configs/detection.yaml `mine:` section).

    rounds: mining + fine-tuning rounds; conf: a prediction at or above it without a match is a confident
    false positive; iou_match: IoU needed for a match; min_false_positives: per image, to mine it;
    rare_classes: class names whose misses are mined and whose images are oversampled (empty: the least
    frequent training class); background_share: at most this share of the new training set are mined
    false-positive images; rare_oversample: how many times each rare-class image appears; dedupe_distance:
    difference-hash bits two images may differ by and still count as duplicates; finetune: the fine-tuning
    schedule (its `model` is replaced by the current weights each round).
    """

    rounds: int = 1
    conf: float = 0.25
    iou_match: float = 0.5
    min_false_positives: int = 1
    rare_classes: list[str] = field(default_factory=list)
    background_share: float = 0.1
    rare_oversample: int = 3
    dedupe_distance: int = 4
    finetune: TrainConfig = field(default_factory=_finetune_default)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"mine.rounds must be at least 1, got {self.rounds}")
        if not 0 < self.conf < 1 or not 0 < self.iou_match < 1:
            raise ValueError(f"mine.conf and mine.iou_match must be in (0, 1), got {self.conf}, {self.iou_match}")
        if not 0 <= self.background_share < 1:
            raise ValueError(f"mine.background_share must be in [0, 1), got {self.background_share}")
        if self.rare_oversample < 1 or self.min_false_positives < 1 or self.dedupe_distance < 0:
            raise ValueError("mine.rare_oversample and mine.min_false_positives must be >= 1, "
                             "mine.dedupe_distance >= 0")


@dataclass(frozen=True)
class Pool:
    """The mining pool: image paths and whether their labels are known (background pools: none expected)."""

    images: list[Path]
    labelled: bool
    source: str


@dataclass
class RoundResult:
    """What one round found and produced."""

    round: int
    fp_images: list[Path]
    rare_images: list[Path]
    used_fp_images: list[Path]
    duplicates: int
    train_list: list[tuple[Path, Path | None]]
    data_yaml: Path
    weights: Path
    stats: dict[str, Any]


# --------------------------------------------------------------------------------------------------- pool


def resolve_pool(data: DataYaml, pool: str | Path, pool_is_background: bool = False) -> Pool:
    """The pool as a split name of data.yaml (labelled) or a folder of images (labelled or background)."""
    name = str(pool)
    if name in data.splits:
        images = list_images(data.splits[name], [])
        if not images:
            raise TrainingInputError(f"split {name!r} of {data.file} holds no images to mine")
        return Pool(images, labelled=not pool_is_background, source=f"split {name}")
    path = Path(name).expanduser()
    if not path.is_dir():
        splits = ", ".join(sorted(data.splits)) or "(none)"
        raise TrainingInputError(f"--pool {name!r} is neither a split of {data.file} (it has: {splits}) nor an "
                                 "existing folder of images")
    images = list_images([path.resolve()], [])
    if not images:
        raise TrainingInputError(f"pool folder {path} holds no images (jpg, png, ...)")
    if pool_is_background:
        return Pool(images, labelled=False, source=f"background folder {path}")
    unlabelled = [p for p in images if not img2label_path(p).is_file()]
    if unlabelled:
        raise TrainingInputError(
            f"pool folder {path}: {len(unlabelled)} of {len(images)} images have no label file (e.g. "
            f"{unlabelled[0].name} needs {img2label_path(unlabelled[0])}). Label them in YOLO format, or pass "
            "--pool-is-background if the folder shows none of the classes (then every detection is a false "
            "positive; missed rare-class objects cannot be mined without labels).")
    return Pool(images, labelled=True, source=f"labelled folder {path}")


# ------------------------------------------------------------------------------------------------ dedupe


def dhash(image: str | Path, size: int = 8) -> int:
    """64-bit difference hash: signs of horizontal gradients of the grey image shrunk to (size+1) x size."""
    import cv2

    img = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise FileNotFoundError(f"cannot read image {image}; it is missing or not an image")
    small = cv2.resize(img, (size + 1, size), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1)
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def dedupe(images: list[Path], max_distance: int = 4, seen: list[int] | None = None) -> tuple[list[Path], list[int]]:
    """Keep the first of every group of near-identical images (hash distance <= max_distance), in order.

    `seen`: hashes of images kept earlier (other lists, earlier rounds); they count as already present.
    Returns (kept images, hashes of everything kept including `seen`).
    """
    kept, hashes = [], list(seen or [])
    for img in images:
        h = dhash(img)
        if any(bin(h ^ o).count("1") <= max_distance for o in hashes):
            continue
        kept.append(img)
        hashes.append(h)
    return kept, hashes


# ------------------------------------------------------------------------------------------------ mining


def find_hard_examples(outcomes: list[ImageOutcome], rare: list[int], min_false_positives: int = 1
                       ) -> tuple[list[ImageOutcome], list[ImageOutcome]]:
    """(images with confident false positives, most confidently wrong first; images with missed rare objects)."""
    fps = sorted((o for o in outcomes if o.false_positives >= min_false_positives),
                 key=lambda o: (-o.fp_confidence, str(o.image)))
    rare_missed = [o for o in outcomes if any(c in rare for c in o.missed_classes)]
    return fps, rare_missed


def build_training_list(train_images: list[Path], rare_train: list[Path], rare_mined: list[Path],
                        fp_mined: list[Path], cfg: MineConfig, labelled_pool: bool
                        ) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """The new training set as (image, label file or None for empty) pairs, and the FP images used.

    Rare-class images appear `rare_oversample` times; false-positive images fill at most `background_share`
    of the final list (n_fp <= share / (1 - share) * n_other).
    """
    k = cfg.rare_oversample
    rows: list[tuple[Path, Path | None]] = [(p, img2label_path(p)) for p in train_images]
    rows += [(p, img2label_path(p)) for p in rare_train for _ in range(k - 1)]
    rows += [(p, img2label_path(p)) for p in rare_mined for _ in range(k)]
    in_rare = set(rare_mined)
    cap = int(np.floor(cfg.background_share / (1 - cfg.background_share) * len(rows)))
    used = [p for p in fp_mined if p not in in_rare][:cap]
    rows += [(p, img2label_path(p) if labelled_pool else None) for p in used]
    return rows, used


def materialise(rows: list[tuple[Path, Path | None]], root: Path, val_sources: list[Path],
                names: dict[int, str]) -> Path:
    """Write `root/images/train` (symlinks), `root/labels/train` (label copies) and `root/data.yaml`."""
    img_dir, lab_dir = root / "images" / "train", root / "labels" / "train"
    for d in (img_dir, lab_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    for i, (img, label) in enumerate(rows):
        name = f"{i:06d}_{img.name}"
        link = img_dir / name
        try:
            os.symlink(img.resolve(), link)
        except OSError:  # file systems without symlinks: copy instead
            shutil.copyfile(img, link)
        dst = lab_dir / (Path(name).stem + ".txt")
        if label is not None and label.is_file():
            shutil.copyfile(label, dst)
        else:
            dst.write_text("", encoding="utf-8")
    import yaml

    spec = {"path": str(root.resolve()), "train": "images/train",
            "val": [str(v) for v in val_sources] if len(val_sources) > 1 else str(val_sources[0]),
            "names": {int(k): v for k, v in names.items()}}
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return data_yaml


def images_with_classes(images: list[Path], classes: list[int]) -> list[Path]:
    """Images whose label file holds at least one object of `classes`."""
    wanted = set(classes)
    out = []
    for img in images:
        label = img2label_path(img)
        if label.is_file() and any(line.split() and int(float(line.split()[0])) in wanted
                                   for line in label.read_text(encoding="utf-8").splitlines()):
            out.append(img)
    return out


def mine_round(weights: Path, data: DataYaml, pool: Pool, cfg: MineConfig, rare: list[int], round_dir: Path,
               already: list[int], log: Callable[[str], None] = print, progress: bool = False) -> RoundResult:
    """One mining round from `weights`: mine the pool, build the set, fine-tune; returns what happened
    (`progress`: bars on stderr over the pool predictions and the fine-tuning batches)."""
    from shared.offline import yolo

    ft = cfg.finetune
    model = yolo().YOLO(str(weights))
    log(f"mining {len(pool.images)} pool images ({pool.source}) at conf {cfg.conf}")

    bar = _bar("mine pool", len(pool.images)) if progress else None

    def predicted(done: int, total: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh()
        if done == total or done % (ft.batch * 8) == 0:
            log(f"  predicted {done}/{total}")

    preds = predict_images(model, pool.images, ft.imgsz, cfg.conf, batch=ft.batch, device=ft.device,
                           progress=predicted)
    if bar is not None:
        bar.close()
    truths = [load_truth(p) if pool.labelled else Detections.empty() for p in pool.images]
    outcomes = match_images(pool.images, preds, truths, cfg.iou_match)
    fp_out, rare_out = find_hard_examples(outcomes, rare, cfg.min_false_positives)
    rare_kept, hashes = dedupe([o.image for o in rare_out], cfg.dedupe_distance, already)
    # an image that is also a rare-class image is already in the set (with its labels): not a second time
    in_rare = set(rare_kept)
    fp_new = [o.image for o in fp_out if o.image not in in_rare]
    fp_kept, hashes = dedupe(fp_new, cfg.dedupe_distance, hashes)
    duplicates = len(rare_out) - len(rare_kept) + len(fp_new) - len(fp_kept)
    already[:] = hashes
    train_images = list_images(data.splits["train"], [])
    rare_train = images_with_classes(train_images, rare)
    rows, used_fp = build_training_list(train_images, rare_train, rare_kept, fp_kept, cfg, pool.labelled)
    stats = {"pool_images": len(pool.images), "pool_fp_per_image": sum(o.false_positives for o in outcomes)
             / max(len(outcomes), 1), "fp_images_found": len(fp_out), "rare_missed_images_found": len(rare_out),
             "fp_images_also_rare": len(fp_out) - len(fp_new),
             "duplicates_dropped": duplicates, "fp_images_kept": len(fp_kept), "fp_images_used": len(used_fp),
             "rare_images_mined": len(rare_kept), "rare_train_images": len(rare_train),
             "train_list": len(rows), "fp_share": len(used_fp) / max(len(rows), 1)}
    log(f"  {len(fp_out)} images with confident false positives ({len(fp_out) - len(fp_new)} of them also rare-class "
        f"images), {len(rare_out)} with missed rare objects, {duplicates} duplicates dropped; new set: {len(rows)} images ({len(used_fp)} false-positive images, "
        f"{stats['fp_share']:.1%}; rare images x{cfg.rare_oversample})")
    data_yaml = materialise(rows, round_dir / "data", data.splits["val"], data.names)
    ft_cfg = dataclasses.replace(ft, model=str(weights))
    result = train(data_yaml, ft_cfg, round_dir / "model", log=log, progress="fine-tune" if progress else None)
    stats["finetune_images_per_s"] = result.metrics.get("train_images_per_s")
    stats["finetune_seconds"] = result.metrics.get("train_seconds")
    return RoundResult(round=0, fp_images=[o.image for o in fp_out], rare_images=rare_kept, used_fp_images=used_fp,
                       duplicates=duplicates, train_list=rows, data_yaml=data_yaml, weights=result.weights,
                       stats=stats)


REPORT_COLUMNS = ["model", "fp_per_image", "recall", "precision", "fp_at_base_recall", "box_map50", "box_map50_95",
                  "rare_ap50", "rare_recall"]


def table_row(name: str, result, base_recall: float | None) -> dict[str, Any]:
    """One before/after row: the operating point at conf, plus false positives per image read off the model's
    FP/recall curve at the recall the base model reaches at conf ("at equal recall")."""
    at = result.curve.at_recall(base_recall) if result.curve is not None and base_recall is not None else None
    row = {"model": name, **{k: result.metrics.get(k) for k in REPORT_COLUMNS[1:] if k != "fp_at_base_recall"}}
    row["fp_at_base_recall"] = at["fp_per_image"] if at else None
    row["conf_at_base_recall"] = at["conf"] if at else None
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Changes from the first row (before) to the last (after) and whether the targets are met."""
    first, final = rows[0], rows[-1]
    fp_change = _relative(first["fp_per_image"], final["fp_per_image"])
    fp_eq = _relative(first["fp_at_base_recall"], final["fp_at_base_recall"])
    recall_change = _delta(first["recall"], final["recall"])
    return {"fp_per_image_change": fp_change, "fp_at_equal_recall_change": fp_eq, "recall_change": recall_change,
            "rare_ap50_change": _delta(first["rare_ap50"], final["rare_ap50"]),
            "target_fp_cut_30pct_at_conf": bool(fp_change is not None and fp_change <= -0.30
                                                and (recall_change or 0) >= 0),
            "target_fp_cut_30pct_at_equal_recall": bool(fp_eq is not None and fp_eq <= -0.30),
            "rare_ap50_raised": bool((final["rare_ap50"] or 0) > (first["rare_ap50"] or 0))}


def mine(model: str | Path, data_yaml: str | Path, cfg: MineConfig, eval_cfg: EvalConfig, pool: str | Path = "pool",
         pool_is_background: bool = False, out_dir: str | Path | None = None,
         log: Callable[[str], None] = print, progress: bool = False) -> dict[str, Any]:
    """Run `cfg.rounds` mining rounds from `model`; evaluate before and after each on the same split.

    Writes `out_dir/report.md` + `metrics.json` (the before/after table) and one folder per round holding the
    mined training set and the fine-tuned run directory (`round-1/model` is a normal `detection train` run).
    """
    from detection.backends import resolve_model
    from detection.train import check_training_data
    from shared.paths import runs_dir
    from shared.reporting import markdown_table, write_json
    from shared.runs import new_run_dir

    weights = resolve_model(model)
    if weights.suffix != ".pt":
        raise ValueError(f"mining fine-tunes a PyTorch model (run directory or .pt), got {weights.name}")
    check_training_data(data_yaml, "detect")
    data, _ = read_data_yaml(data_yaml)
    pool_spec = resolve_pool(data, pool, pool_is_background)
    if pool_spec.labelled and str(pool) == eval_cfg.split:
        raise TrainingInputError(f"--pool {pool} is the split the report evaluates on; mine a separate pool, "
                                 "otherwise the before/after comparison leaks")
    rare = rare_class_ids(data.names, cfg.rare_classes, class_counts(list_images(data.splits["train"], [])))
    eval_cfg = dataclasses.replace(eval_cfg, rare_classes=[data.names[c] for c in rare])
    out = Path(out_dir) if out_dir else new_run_dir(runs_dir(), "mine")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    log(f"hard-negative mining: {cfg.rounds} round(s), rare classes {[data.names[c] for c in rare]} -> {out}")
    before = evaluate(weights, data.file, eval_cfg, out / "eval-before", log=log)
    base_recall = before.metrics.get("recall")
    rows = [table_row("before", before, base_recall)]
    rounds, already, current = [], [], weights
    for r in range(1, cfg.rounds + 1):
        res = mine_round(current, data, pool_spec, cfg, rare, out / f"round-{r}", already, log, progress)
        res.round = r
        after = evaluate(res.weights, data.file, eval_cfg, out / f"round-{r}" / "eval", log=log)
        rows.append(table_row(f"round {r}", after, base_recall))
        rounds.append({"round": r, **res.stats, "weights": str(res.weights), "metrics": after.metrics})
        current = res.weights
    summary = summarise(rows)
    result = {"model": str(weights), "data": str(data.file), "pool": pool_spec.source, "split": eval_cfg.split,
              "conf": eval_cfg.conf, "rare_classes": [data.names[c] for c in rare], "config": dataclasses.asdict(cfg),
              "table": rows, "rounds": rounds, "summary": summary, "final_weights": str(current)}
    write_json(result, out / "metrics.json")
    text = (f"# Hard-negative mining\n\nmodel `{weights}`, pool: {pool_spec.source} ({len(pool_spec.images)} "
            f"images), evaluated on split `{eval_cfg.split}` of `{data.file}` at conf {eval_cfg.conf} (IoU "
            f"{eval_cfg.iou_match}); pool false positives mined at conf {cfg.conf}, at most "
            f"{cfg.background_share:.0%} of the new set; rare: {', '.join(result['rare_classes'])} "
            f"(x{cfg.rare_oversample}).\n\n"
            + markdown_table(rows, REPORT_COLUMNS) + "\n"
            + f"False positives per image at conf {eval_cfg.conf}: {_pct(summary['fp_per_image_change'])}, at the "
              f"base model's recall: {_pct(summary['fp_at_equal_recall_change'])}; recall at conf "
              f"{_signed(summary['recall_change'])}; rare-class AP50 {_signed(summary['rare_ap50_change'])}.\n\n"
            + "`fp_at_base_recall`: false positives per image read off each model's FP/recall curve on the same "
              "split at the recall the base model reaches at conf (evaluation only: no threshold is chosen "
              "from it).\n\n"
            + "## Rounds\n\n" + markdown_table([{k: v for k, v in r.items() if k not in ("metrics", "weights")}
                                                for r in rounds]) + f"\nfinal weights: `{current}`\n")
    (out / "report.md").write_text(text, encoding="utf-8")
    result["out_dir"] = str(out)
    return result


def _bar(label: str, total: int):
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="img", leave=False, file=sys.stderr, dynamic_ncols=True)


def _relative(a, b) -> float | None:
    return None if a is None or b is None or not a else (b - a) / a


def _delta(a, b) -> float | None:
    return None if a is None or b is None else b - a


def _pct(v) -> str:
    return "—" if v is None else f"{v:+.1%}"


def _signed(v) -> str:
    return "—" if v is None else f"{v:+.4f}"
