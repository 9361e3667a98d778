"""Synthetic pre-training, then fine-tuning on a small real set: one call, one CPU budget for both stages.

    cfg = TransferConfig(cpu_budget_s=600, seed=0)
    result = transfer("highway/data.yaml", cfg, "runs/transfer")   # TransferResult: weights, cpu, metrics
    # runs/transfer/            the fine-tuned model: a `detection train` run directory (manifest.json, ...)
    # runs/transfer/scenes/     the generated scenes (classes mapped onto the target's names)
    # runs/transfer/pretrain/   the pre-trained model (run directory)

Steps:
1. Class map: every target class is matched to the generator classes that can stand for it (`car` <- car,
   `person` <- pedestrian, `motorbike` <- motorbike + cyclist, ...; `class_map` overrides). The scenes are
   written with the target's names in the target's order, so the pre-trained head already has the target's
   classes and fine-tuning starts from a complete model. Target classes without a source are logged.
2. Scenes: `data_scripts.make_driving_scenes` with domain randomisation (`domain: randomised`): random camera
   height and lens, texture, colour, exposure, defocus, resolution loss and JPEG quality.
3. Pre-train from the architecture yaml on the scenes (`pretrain`, a TrainConfig).
4. Fine-tune from the pre-trained weights on the real training split (`finetune`: the recipe keys of
   TrainConfig: freeze_backbone_epochs, backbone_lr_scale, cos_lr, AdamW + weight_decay, amp).

Budget: with `cpu_budget_s` > 0, scene generation and pre-training together get `pretrain_share` of it and
fine-tuning what is left (detection.budget: CPU seconds of this process and its children). The manifest of the
fine-tuned run records all three stages' CPU seconds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detection.train import TrainConfig, TrainingInputError, check_training_data, train

# Generator classes that can stand for a target class name (lower case, spaces and dashes as underscores).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "car": ("car",), "cars": ("car",), "vehicle": ("car",), "van": ("car",),
    "truck": ("truck",), "trucks": ("truck",), "lorry": ("truck",),
    "bus": ("bus",), "buses": ("bus",),
    "person": ("pedestrian",), "people": ("pedestrian",), "pedestrian": ("pedestrian",),
    "motorbike": ("motorbike", "cyclist"), "motorcycle": ("motorbike", "cyclist"), "scooter": ("motorbike",),
    "cyclist": ("cyclist",), "bicycle": ("cyclist",), "bike": ("cyclist",), "rider": ("cyclist",),
    "traffic_light": ("traffic_light",), "stop_sign": ("stop_sign",),
}


def _pretrain_default() -> TrainConfig:
    # 192 px: the scenes' shapes are simple, and a smaller side buys more pre-training epochs per CPU second
    return TrainConfig(epochs=30, imgsz=192, preset="road", optimizer="AdamW", lr0=0.002, nominal_batch=16,
                       cos_lr=True, warmup_epochs=1.0, close_mosaic=2)


def _finetune_default() -> TrainConfig:
    return TrainConfig(epochs=30, imgsz=256, preset="road", optimizer="AdamW", lr0=0.0015, nominal_batch=16,
                       cos_lr=True, warmup_epochs=1.0, close_mosaic=3, backbone_lr_scale=0.5,
                       freeze_backbone_epochs=0)


@dataclass
class TransferConfig:
    """Options of `detection transfer` (configs/detection.yaml `transfer:` section).

    cpu_budget_s: CPU seconds for the whole recipe (0: train the `epochs` of each stage); pretrain_share: the
    part of it scene generation + pre-training may use; scenes: synthetic training images (plus
    `scenes // 10` validation images); scene_width/scene_height: their size in pixels; domain: "randomised"
    (for real targets) or "dashcam"; class_map: generator class -> target class name, overriding the automatic
    map (SYNONYMS); pretrain / finetune: the two stages' TrainConfig (their `model`, `cpu_budget_s` and
    `seed` are set here).
    """

    cpu_budget_s: float = 0.0
    pretrain_share: float = 0.4
    scenes: int = 600
    scene_width: int = 384
    scene_height: int = 288
    domain: str = "randomised"
    class_map: dict[str, str] = field(default_factory=dict)
    pretrain: TrainConfig = field(default_factory=_pretrain_default)
    finetune: TrainConfig = field(default_factory=_finetune_default)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cpu_budget_s < 0 or not 0 < self.pretrain_share < 1:
            raise ValueError(f"transfer.cpu_budget_s must be >= 0 and transfer.pretrain_share in (0, 1), got "
                             f"{self.cpu_budget_s}, {self.pretrain_share}")
        if self.scenes < 16:
            raise ValueError(f"transfer.scenes must be at least 16 synthetic images, got {self.scenes}")

    @classmethod
    def default(cls, budget: float, seed: int = 0, imgsz: int = 256, freeze: bool = False) -> TransferConfig:
        """The documented recipe at `budget` CPU seconds (freeze: backbone frozen for 2 fine-tuning epochs)."""
        ft = dataclasses.replace(_finetune_default(), imgsz=imgsz, freeze_backbone_epochs=2 if freeze else 0)
        return cls(cpu_budget_s=budget, seed=seed, finetune=ft)


@dataclass
class TransferResult:
    """The fine-tuned run directory and weights, both stages' metrics and the CPU seconds of every stage."""

    run_dir: Path
    weights: Path
    class_map: dict[str, str]
    cpu: dict[str, float]
    pretrain_metrics: dict[str, Any]
    finetune_metrics: dict[str, Any]


def auto_class_map(target_names: dict[int, str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Generator class -> target class name for the target's names (SYNONYMS), then `overrides` on top.

    Raises TrainingInputError when no target class has a synthetic counterpart (pre-training would teach
    nothing about the target's classes).
    """
    from data_scripts.road_render import NAMES

    out: dict[str, str] = {}
    for name in target_names.values():
        for gen in SYNONYMS.get(name.strip().lower().replace(" ", "_").replace("-", "_"), ()):
            out.setdefault(gen, name)
    for gen, name in (overrides or {}).items():
        if gen not in NAMES:
            raise TrainingInputError(f"transfer.class_map: {gen!r} is not a generator class; use one of "
                                     f"{', '.join(NAMES)}")
        if name not in target_names.values():
            raise TrainingInputError(f"transfer.class_map: {gen} -> {name!r}, but the target's classes are "
                                     f"{', '.join(target_names.values())}")
        out[gen] = name
    if not out:
        raise TrainingInputError(f"none of the target classes ({', '.join(target_names.values())}) has a synthetic "
                                 "counterpart; set transfer.class_map, e.g. car=vehicle,pedestrian=person")
    return out


def make_scenes(target_names: dict[int, str], cfg: TransferConfig, out_dir: Path) -> tuple[Path, dict[str, str]]:
    """Generate the pre-training scenes with the target's class names; returns (data.yaml, class map)."""
    from data_scripts.make_driving_scenes import generate
    from data_scripts.scene_sampling import SceneConfig

    class_map = auto_class_map(target_names, cfg.class_map)
    names = tuple(target_names[k] for k in sorted(target_names))
    scene_cfg = SceneConfig(n_train=cfg.scenes, n_val=max(8, cfg.scenes // 10), n_pool=0, width=cfg.scene_width,
                            height=cfg.scene_height, seed=cfg.seed, class_map=class_map, names=names,
                            domain=cfg.domain, distractor_rate=0.3, eval_distractor_rate=0.3)
    return generate(scene_cfg, out_dir, progress=False), class_map


def transfer(data_yaml: str | Path, cfg: TransferConfig, out_dir: str | Path,
             log: Callable[[str], None] = print, pretrain_dir: str | Path | None = None) -> TransferResult:
    """Generate scenes, pre-train, fine-tune on `data_yaml`'s train split; the fine-tuned run is `out_dir`.

    pretrain_dir: where the scenes and the pre-trained model go (default out_dir/pretrain-stage). When it
    already holds a finished pre-training of the same settings (its `stage.json`), that is reused and its
    recorded CPU seconds are charged again, so two fine-tuning recipes can share one pre-training fairly.
    """
    from detection.budget import cpu_seconds
    from shared.config import to_dict

    target = check_training_data(data_yaml, "detect")
    out = Path(out_dir).resolve()
    stage_dir = Path(pretrain_dir).resolve() if pretrain_dir else out / "pretrain-stage"
    budget = cfg.cpu_budget_s
    pre_budget = budget * cfg.pretrain_share
    key = {"scenes": cfg.scenes, "size": [cfg.scene_width, cfg.scene_height], "domain": cfg.domain,
           "class_map": cfg.class_map, "pretrain": to_dict(cfg.pretrain), "budget": pre_budget, "seed": cfg.seed,
           "names": target.names}
    stage_file = stage_dir / "stage.json"
    if stage_file.is_file() and json.loads(stage_file.read_text())["key"] == json.loads(json.dumps(key)):
        stage = json.loads(stage_file.read_text())
        log(f"reusing the pre-training in {stage_dir} ({stage['cpu']['scenes_s'] + stage['cpu']['pretrain_s']:.0f} "
            "CPU seconds charged)")
    else:
        c0 = cpu_seconds()
        scenes_yaml, class_map = make_scenes(target.names, cfg, stage_dir / "scenes")
        scenes_s = cpu_seconds() - c0
        log(f"generated {cfg.scenes} {cfg.domain} scenes in {scenes_s:.0f} CPU s, class map {class_map}")
        missing = sorted(set(target.names.values()) - set(class_map.values()))
        if missing:
            log(f"note: no synthetic examples for {', '.join(missing)}: fine-tuning alone must teach them")
        pre_cfg = dataclasses.replace(cfg.pretrain, seed=cfg.seed, cpu_budget_s=pre_budget)
        pre = train(scenes_yaml, pre_cfg, stage_dir / "pretrain", log=log, cpu_spent_before=scenes_s)
        stage = {"key": key, "class_map": class_map, "weights": str(pre.weights), "metrics": pre.metrics,
                 "cpu": {"scenes_s": round(scenes_s, 1), "pretrain_s": round(cpu_seconds() - c0 - scenes_s, 1)}}
        stage_file.write_text(json.dumps(stage, indent=2, default=str) + "\n")
    spent = stage["cpu"]["scenes_s"] + stage["cpu"]["pretrain_s"]
    if budget and spent >= budget:
        raise TrainingInputError(f"scene generation and pre-training used {spent:.0f} of the {budget:.0f} CPU "
                                 "seconds; lower transfer.pretrain_share or transfer.scenes")
    ft_cfg = dataclasses.replace(cfg.finetune, model=stage["weights"], seed=cfg.seed, cpu_budget_s=budget)
    c1 = cpu_seconds()
    extra = {"transfer": {"class_map": stage["class_map"], "scenes": cfg.scenes, "domain": cfg.domain,
                          "pretrain_metrics": stage["metrics"], "cpu": stage["cpu"],
                          "config": to_dict(cfg)}}
    ft = train(data_yaml, ft_cfg, out, log=log, cpu_spent_before=spent, manifest_extra=extra)
    cpu = {**stage["cpu"], "finetune_s": round(cpu_seconds() - c1, 1)}
    cpu["total_s"] = round(spent + ft.metrics.get("cpu_train_s", cpu["finetune_s"]), 1)
    return TransferResult(run_dir=ft.run_dir, weights=ft.weights, class_map=stage["class_map"], cpu=cpu,
                          pretrain_metrics=stage["metrics"], finetune_metrics=ft.metrics)
