"""Offline-safe YOLO training (boxes, or boxes plus masks) that writes a verifiable run directory.

    cfg = TrainConfig(model="yolo11n.yaml", preset="road", epochs=30, imgsz=320, seed=0)
    result = train("scenes/data.yaml", cfg, out_dir)          # TrainResult: run_dir, weights, metrics
    manifest, best = load_run(result.run_dir)                   # re-hashes best.pt before anyone loads it

Run directory (what `detection export`, `video` and `evaluate` accept as --model):

    manifest.json      kind "detection-model": config, data fingerprint, metrics, sha256 of every file
    config.yaml        the final TrainConfig
    weights/best.pt    Ultralytics checkpoint (the weights after the last epoch, validated once)
    results.csv        Ultralytics' per-epoch losses (and metrics when validated)
    args.yaml          every argument Ultralytics trained with

The model is built from a yaml (`yolo11n.yaml` detect, `yolo11n-seg.yaml` segment: boxes and masks predicted
jointly from the same polygon labels) or fine-tuned from a local `.pt`. A `.pt` *name* that does not exist on
disk is refused: Ultralytics would try to download it. `.pt` checkpoints are pickles, so a run's best.pt is
only loaded after its hash matches the manifest.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detection.augment import get_preset
from detection.datasets import DataYaml, check_dataset, img2label_path, list_images
from shared.config import save_config, to_dict
from shared.runs import Manifest, load_manifest, sha256_file, write_manifest

KIND = "detection-model"
TASKS = ("detect", "segment")
_YAML_NAME = re.compile(r"^(yolo(?:v\d+|\d+))([nslmx])?(-seg|-pose|-cls|-obb|-p6)?\.yaml$")


class TrainingInputError(ValueError):
    """A model name, weights file or data set that training cannot use; the message says how to fix it."""


@dataclass
class TrainConfig:
    """Everything `detection train` needs besides the data (configs/detection.yaml `train:` section).

    epochs: passes over the training images; imgsz: square training side in pixels (multiple of 32);
    batch: images per step; lr0/lrf: first and final-fraction learning rate (with optimizer "auto" Ultralytics
    ignores lr0 and chooses; name an optimizer, e.g. AdamW or SGD, to set it); warmup_epochs: linear warm-up;
    close_mosaic: last epochs trained without mosaic (sharper boxes at the end); patience: early stop after
    that many epochs without improvement (0 = never); cls_pw: class weighting power (0 = off, 1 = inverse
    frequency, an alternative to oversampling rare classes); val_every_epoch: validate each epoch (slower;
    otherwise only after the last); augment: per-hyperparameter overrides of the preset.

    Fine-tuning recipe keys (docs/detection-transfer.md; each off by default, i.e. Ultralytics' behaviour):
    freeze_backbone_epochs: freeze the backbone (the model yaml's `backbone:` layers, or the first
        `freeze_layers`) for the first N epochs, then train everything; -1 keeps it frozen for the whole run.
        Use when fine-tuning a pre-trained model on a few hundred images: the new head and neck settle before
        their gradients reach, and wreck, the pre-trained features. Pointless from scratch.
    freeze_layers: how many first layers count as "backbone" for freezing and discriminative rates (0: the
        yaml's backbone, 11 for yolo11n).
    backbone_lr_scale: discriminative learning rates: the backbone trains at this multiple of lr0 (e.g. 0.1)
        and the neck and head at lr0. Use when fine-tuning: early layers hold generic features that need less
        change than the task-specific head. 1.0 = one rate for all.
    cos_lr: cosine decay from lr0 to lr0*lrf instead of Ultralytics' linear decay (warm-up is
        `warmup_epochs`, linear, either way). Use on short fine-tuning runs: it keeps the rate high longer and
        lands softly.
    weight_decay: L2 / decoupled (AdamW) weight decay of the conv weights (Ultralytics scales it by
        batch x accumulation / nominal_batch). Raise it (1e-3 .. 5e-2 with AdamW) on small data sets to
        fight over-fitting.
    nominal_batch: Ultralytics accumulates gradients up to this many images per optimizer step (its `nbs`,
        64). On a few hundred images that is only a handful of steps per epoch; set it to `batch` so every
        batch is a step when the compute budget is small.
    amp: mixed precision (fp16 autocast + gradient scaling). Only CUDA supports it: on a CPU device
        Ultralytics trains in fp32 whatever this says (the manifest records `amp_effective`). Use on GPUs.
    cpu_budget_s: train until this many CPU seconds are spent instead of for `epochs` (then the maximum);
        the schedule is fitted to the epochs that fit (detection.budget). 0 = off.
    """

    model: str = "yolo11n.yaml"
    preset: str = "road"
    augment: dict[str, float] = field(default_factory=dict)
    epochs: int = 30
    imgsz: int = 320
    batch: int = 16
    lr0: float = 0.01
    lrf: float = 0.01
    warmup_epochs: float = 3.0
    close_mosaic: int = 5
    optimizer: str = "auto"
    patience: int = 0
    cls_pw: float = 0.0
    val_every_epoch: bool = False
    cache: bool = False
    device: str = "cpu"
    seed: int = 0
    freeze_backbone_epochs: int = 0
    freeze_layers: int = 0
    backbone_lr_scale: float = 1.0
    cos_lr: bool = False
    weight_decay: float = 0.0005
    nominal_batch: int = 64
    amp: bool = False
    cpu_budget_s: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be at least 1, got {self.epochs}")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"train.imgsz must be a multiple of 32 (the network stride), got {self.imgsz}")
        if self.batch < 1:
            raise ValueError(f"train.batch must be at least 1, got {self.batch}")
        if not (self.lr0 > 0 and 0 < self.lrf <= 1):
            raise ValueError(f"train.lr0 must be > 0 and train.lrf in (0, 1], got lr0={self.lr0}, lrf={self.lrf}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.freeze_backbone_epochs < -1 or self.freeze_layers < 0:
            raise ValueError("train.freeze_backbone_epochs must be -1 (whole run), 0 (off) or a number of epochs, "
                             f"and train.freeze_layers >= 0; got {self.freeze_backbone_epochs}, {self.freeze_layers}")
        if not 0 < self.backbone_lr_scale <= 10:
            raise ValueError(f"train.backbone_lr_scale must be in (0, 10], got {self.backbone_lr_scale}; "
                             "freeze the backbone with train.freeze_backbone_epochs instead of a zero rate")
        if self.weight_decay < 0 or self.nominal_batch < 1 or self.cpu_budget_s < 0:
            raise ValueError("train.weight_decay and train.cpu_budget_s must be >= 0 and train.nominal_batch >= 1; got "
                             f"{self.weight_decay}, {self.cpu_budget_s}, {self.nominal_batch}")
        if self.freeze_backbone_epochs > 0 and self.cpu_budget_s == 0 and self.freeze_backbone_epochs >= self.epochs:
            raise ValueError(f"train.freeze_backbone_epochs={self.freeze_backbone_epochs} leaves no epoch of the "
                             f"{self.epochs} with the backbone training; use -1 to freeze it for the whole run")
        get_preset(self.preset, self.augment)  # unknown preset or hyperparameter fails here, before any work


@dataclass
class TrainResult:
    """What a training run produced: its directory, the weights, metrics and speed."""

    run_dir: Path
    weights: Path
    task: str
    metrics: dict[str, Any]


# ------------------------------------------------------------------------------------------ input checks


def resolve_model_source(model: str | Path) -> tuple[str, str]:
    """Check a model argument and return (what to pass to YOLO(), task) without downloading anything.

    Accepted: an Ultralytics architecture yaml shipped with the package (`yolo11n.yaml`, `yolo11s-seg.yaml`),
    a local architecture yaml, or a local `.pt` checkpoint of a detect or segment model.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.suffix == ".pt":
        if not path.is_file():
            raise TrainingInputError(
                f"weights {text} are not a local file. Ultralytics would try to download them, and this project "
                f"runs offline. Either train from an architecture yaml (--model yolo11n.yaml, or yolo11n-seg.yaml "
                f"for masks), or copy the .pt onto this machine and pass its path (e.g. --model "
                f"/data/weights/{path.name}).")
        return str(path.resolve()), _task_of_checkpoint(path)
    if path.suffix in (".yaml", ".yml"):
        if path.is_file():
            return str(path.resolve()), "segment" if "-seg" in path.stem else "detect"
        m = _YAML_NAME.match(path.name)
        if m and m.group(3) in (None, "-seg", "-p6") and _shipped_yaml(m.group(1), m.group(3)):
            return path.name, "segment" if m.group(3) == "-seg" else "detect"
        if m and m.group(3) in ("-pose", "-cls", "-obb"):
            raise TrainingInputError(f"model {text} is a {m.group(3)[1:]} model; detection trains detect or "
                                     "segment models: use e.g. yolo11n.yaml or yolo11n-seg.yaml")
        raise TrainingInputError(f"unknown model {text!r}: not a local file and not an architecture shipped with "
                                 "Ultralytics. Use e.g. yolo11n.yaml (boxes) or yolo11n-seg.yaml (boxes + masks), "
                                 "or pass the path of a local .yaml or .pt")
    raise TrainingInputError(f"unknown model {text!r}: pass an architecture yaml (yolo11n.yaml, yolo11n-seg.yaml) "
                             "or a local .pt checkpoint")


def _shipped_yaml(family: str, suffix: str | None) -> bool:
    """True when Ultralytics ships the architecture (found on disk without importing ultralytics)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise TrainingInputError("ultralytics is not installed; install the project with `pip install -e .`")
    root = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"
    name = f"{family}{suffix or ''}.yaml"
    return any(root.rglob(name))


def _task_of_checkpoint(path: Path) -> str:
    from shared.offline import yolo

    try:
        task = yolo().YOLO(str(path)).task
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        raise TrainingInputError(f"{path} is not a readable Ultralytics checkpoint ({exc}); pass a .pt written by "
                                 "`detection train` or Ultralytics") from exc
    if task not in TASKS:
        raise TrainingInputError(f"{path} is a {task} model; detection trains detect or segment models")
    return task


def check_training_data(data_yaml: str | Path, task: str = "detect", splits: tuple[str, ...] = ("train", "val"),
                        max_listed: int = 5) -> DataYaml:
    """Validate a data set before training (headers only: fast); raise one error listing its first problems."""
    data_yaml = Path(data_yaml)
    if data_yaml.is_dir():
        data_yaml = data_yaml / "data.yaml"
    if not data_yaml.is_file():
        raise FileNotFoundError(f"data set file {data_yaml} does not exist; pass the data set's data.yaml "
                                "(python -m data_scripts.make_driving_scenes writes one)")
    check = check_dataset(data_yaml, splits=list(splits), decode_images=False)
    if not check.ok or check.data is None:
        listed = "\n".join(f"  - {p}" for p in check.errors[:max_listed])
        more = f"\n  ... and {len(check.errors) - max_listed} more" if len(check.errors) > max_listed else ""
        raise TrainingInputError(f"{data_yaml} cannot be trained on ({len(check.errors)} errors):\n{listed}{more}\n"
                                 f"Run `detection check-data {data_yaml}` for the full report.")
    train_stats = check.splits.get("train")
    if task == "segment" and train_stats and train_stats.polygon_files == 0:
        raise TrainingInputError(f"{data_yaml}: a segmentation model needs polygon labels, but the train split has "
                                 "only boxes. Use the polygon data set (data-seg.yaml) or a detect model "
                                 "(yolo11n.yaml).")
    return check.data


def fingerprint_dataset(data: DataYaml, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Any]:
    """What identifies the training data: data.yaml's hash, and per split the image count and a content hash.

    The split hash covers every image's path, byte size and label file contents, so relabelling or adding an
    image changes it (image pixels are not re-read: the size catches most replacements, and it stays fast).
    """
    out: dict[str, Any] = {"data_yaml": str(data.file), "data_yaml_sha256": sha256_file(data.file), "splits": {}}
    for split in splits:
        images = list_images(data.splits.get(split, []), [])
        h = hashlib.sha256()
        for img in images:
            label = img2label_path(img)
            h.update(f"{img}\0{img.stat().st_size}\0".encode())
            h.update(label.read_bytes() if label.is_file() else b"<no label>")
        out["splits"][split] = {"images": len(images), "sha256": h.hexdigest()}
    return out


# ----------------------------------------------------------------------------------------------- training


def train(data_yaml: str | Path, cfg: TrainConfig, out_dir: str | Path | None = None,
          log: Callable[[str], None] = print, cpu_spent_before: float = 0.0,
          manifest_extra: dict[str, Any] | None = None, progress: str | None = None) -> TrainResult:
    """Train (or fine-tune from a local .pt) with the preset's augmentation; write and return the run directory.

    cpu_spent_before: CPU seconds earlier stages of the same recipe used (pre-training); they count against
    `cfg.cpu_budget_s`. manifest_extra: more entries for the manifest (e.g. how the start weights were made).
    progress: label of a progress bar over the training batches on stderr (None: none; Ultralytics draws its own
    on stdout unless that goes to a log file).
    """
    from detection.budget import CpuBudget
    from detection.recipes import attach_recipe
    from shared.offline import yolo
    from shared.paths import runs_dir
    from shared.runs import new_run_dir
    from shared.seeding import seed_everything

    source, task = resolve_model_source(cfg.model)
    data = check_training_data(data_yaml, task)
    preset = get_preset(cfg.preset, cfg.augment)
    run_dir = Path(out_dir) if out_dir else new_run_dir(runs_dir(), "train")
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir.resolve()
    save_config(cfg, run_dir / "config.yaml")
    seed_everything(cfg.seed)

    model = yolo().YOLO(source)
    if model.task != task:
        raise TrainingInputError(f"model {cfg.model} builds a {model.task} model, expected {task}")
    timer = _EpochTimer()
    model.add_callback("on_train_epoch_start", timer.start)
    model.add_callback("on_train_epoch_end", timer.end)
    budget = CpuBudget(cfg.cpu_budget_s, cpu_spent_before).attach(model) if cfg.cpu_budget_s else None
    recipe = attach_recipe(model, cfg, log)
    if progress:
        _attach_progress_bar(model, progress)
    amp_effective = bool(cfg.amp and not str(cfg.device).lower().startswith(("cpu", "mps")))
    if cfg.amp and not amp_effective:
        log(f"train.amp: mixed precision needs a CUDA device; on {cfg.device} training runs in fp32")
    log(f"training {cfg.model} ({task}) on {data.file} for {cfg.epochs} epochs at {cfg.imgsz} px, preset "
        f"{preset.name}, seed {cfg.seed} -> {run_dir}")
    work = run_dir / "ultralytics"
    t0 = time.perf_counter()
    metrics = model.train(
        data=str(data.file), task=task, epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch, lr0=cfg.lr0, lrf=cfg.lrf,
        warmup_epochs=cfg.warmup_epochs, close_mosaic=min(cfg.close_mosaic, cfg.epochs), optimizer=cfg.optimizer,
        patience=cfg.patience or max(cfg.epochs + 1, 100), cls_pw=cfg.cls_pw, val=cfg.val_every_epoch,
        cache="ram" if cfg.cache else False, device=cfg.device, seed=cfg.seed, deterministic=True, workers=0,
        project=str(run_dir), name=work.name, exist_ok=True, plots=False, verbose=False, amp=amp_effective,
        cos_lr=cfg.cos_lr, weight_decay=cfg.weight_decay, nbs=cfg.nominal_batch, **recipe["train_args"],
        **preset.to_ultralytics())
    wall = time.perf_counter() - t0
    if not timer.finite:
        raise FloatingPointError(f"training stopped: non-finite loss {timer.last_loss} in "
                                 f"epoch {timer.epochs}; lower train.lr0 or check the labels")

    weights = run_dir / "weights" / "best.pt"
    weights.parent.mkdir(exist_ok=True)
    best = work / "weights" / "best.pt"
    if not best.is_file():
        best = work / "weights" / "last.pt"
    shutil.move(str(best), weights)
    for name in ("results.csv", "args.yaml"):
        if (work / name).is_file():
            shutil.move(str(work / name), run_dir / name)
    shutil.rmtree(work, ignore_errors=True)

    out = {**box_mask_metrics(metrics, task), "train_images": timer.images, "epochs": timer.epochs,
           "train_seconds": round(timer.seconds, 2), "wall_seconds": round(wall, 2),
           "train_images_per_s": round(timer.images * timer.epochs / timer.seconds, 2) if timer.seconds else None,
           **(budget.summary() if budget else {}), "amp_effective": amp_effective, "recipe": recipe["applied"]}
    files = ["weights/best.pt", "config.yaml"] + [n for n in ("results.csv", "args.yaml") if (run_dir / n).is_file()]
    write_manifest(run_dir, KIND, config=to_dict(cfg), files=files, metrics=out,
                   data=fingerprint_dataset(data), extra={"task": task, "names": data.names, "preset": preset.name,
                                                          "augment": preset.to_ultralytics(),
                                                          **(manifest_extra or {})})
    log(f"done in {wall:.0f} s ({out['train_images_per_s']} training images/s): mAP50 {out['box_map50']:.3f}, "
        f"mAP50-95 {out['box_map50_95']:.3f} -> {weights}")
    return TrainResult(run_dir=run_dir, weights=weights, task=task, metrics=out)


def _attach_progress_bar(model, label: str) -> None:
    """A tqdm bar over every training batch of every epoch (stderr), driven by Ultralytics' callbacks."""
    import sys

    from tqdm import tqdm

    bar = tqdm(desc=label, unit="batch", leave=False, file=sys.stderr, dynamic_ncols=True)
    model.add_callback("on_train_start", lambda t: bar.reset(total=t.epochs * len(t.train_loader)))
    model.add_callback("on_train_batch_end", lambda t: bar.update())
    model.add_callback("on_train_end", lambda t: bar.close())


class _EpochTimer:
    """Times the training part of every epoch (validation excluded) and watches the loss for NaN/inf."""

    def __init__(self) -> None:
        self.seconds, self.epochs, self.images = 0.0, 0, 0
        self.finite, self.last_loss, self.loss_names = True, None, ()
        self._t = 0.0

    def start(self, trainer) -> None:
        self._t = time.perf_counter()

    def end(self, trainer) -> None:
        self.seconds += time.perf_counter() - self._t
        self.epochs += 1
        self.images = len(trainer.train_loader.dataset)
        loss = getattr(trainer, "tloss", None)  # {loss name: running mean} in Ultralytics 8.4
        if loss is not None:
            items = loss.items() if isinstance(loss, dict) else enumerate(loss.reshape(-1))
            values = {str(k): float(v) for k, v in items}
            self.last_loss, self.loss_names = values, tuple(values)
            if not all(math.isfinite(v) for v in values.values()):
                self.finite = False
                trainer.stop = True  # stop loudly after this epoch instead of training on garbage


def box_mask_metrics(metrics, task: str) -> dict[str, float]:
    """mAP50 / mAP50-95 of an Ultralytics DetMetrics or SegmentMetrics (mask metrics for segment models)."""
    out = {"box_map50": float(metrics.box.map50), "box_map50_95": float(metrics.box.map)}
    if task == "segment" and getattr(metrics, "seg", None) is not None:
        out.update(mask_map50=float(metrics.seg.map50), mask_map50_95=float(metrics.seg.map))
    return out


def load_run(run_dir: str | Path) -> tuple[Manifest, Path]:
    """Verify a run directory (kind, every file's hash) and return (manifest, path of weights/best.pt)."""
    run_dir = Path(run_dir)
    m = load_manifest(run_dir, kind=KIND)
    weights = run_dir / "weights" / "best.pt"
    if "weights/best.pt" not in m.files:
        raise FileNotFoundError(f"{run_dir}'s manifest lists no weights/best.pt; retrain with `detection train`")
    return m, weights
