"""Fine-tuning recipes on top of Ultralytics training: timed backbone freezing and discriminative learning rates.

    applied = attach_recipe(model, cfg, log)   # before model.train(...); returns what will happen, for the manifest

Both are callbacks on the Ultralytics YOLO model (no trainer subclass, nothing patched):

- Backbone freezing for the first `freeze_backbone_epochs` epochs. Ultralytics' own `freeze=N` freezes the
  first N layers for the whole run (`requires_grad=False`, BatchNorm statistics kept in eval mode). At the
  start of epoch `freeze_backbone_epochs` the callback unfreezes them (gradients on, BatchNorm training
  again). Frozen parameters are already in the optimizer with no gradient, so they are skipped, not decayed.
- Discriminative learning rates: after Ultralytics has built its optimizer (groups: weights with decay, norm
  weights, biases), every group is split into backbone and head parameters and the backbone copy gets
  `backbone_lr_scale` x the learning rate. The scheduler is rebuilt so warm-up and decay act on each group's
  own starting rate.

The backbone is the model yaml's `backbone:` list: layers 0..10 of yolo11n (`model.0.` to `model.10.`), the
feature extractor a pre-trained model brings; the neck and the detection head (layers 11..23) are what a new
data set most needs to change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def backbone_layers(model) -> int:
    """Number of layers in the model yaml's `backbone:` (11 for yolo11n): indices 0..n-1 are the backbone."""
    net = getattr(model, "model", model)
    spec = getattr(net, "yaml", None) or {}
    n = len(spec.get("backbone", []))
    if n == 0:
        raise ValueError("the model has no `backbone:` section in its yaml; set train.freeze_layers explicitly")
    return n


def attach_recipe(model, cfg, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Register the recipe's callbacks on an Ultralytics YOLO `model` for TrainConfig `cfg`.

    Returns the Ultralytics keyword arguments the recipe adds (`freeze`) under "train_args" and a summary of
    what was applied under "applied".
    """
    n_layers = cfg.freeze_layers or backbone_layers(model)
    applied: dict[str, Any] = {"backbone_layers": n_layers}
    train_args: dict[str, Any] = {}
    if cfg.freeze_backbone_epochs:
        train_args["freeze"] = n_layers
        applied["freeze_backbone_epochs"] = cfg.freeze_backbone_epochs
        if cfg.freeze_backbone_epochs > 0:
            model.add_callback("on_train_epoch_start", _unfreezer(cfg.freeze_backbone_epochs, log))
    if cfg.backbone_lr_scale != 1.0:
        model.add_callback("on_pretrain_routine_end", _discriminative_lr(n_layers, cfg.backbone_lr_scale, log))
        applied["backbone_lr_scale"] = cfg.backbone_lr_scale
    return {"train_args": train_args, "applied": applied}


def _is_backbone(name: str, n_layers: int) -> bool:
    parts = name.split(".")
    return len(parts) > 1 and parts[0] == "model" and parts[1].isdigit() and int(parts[1]) < n_layers


def _unfreezer(epochs: int, log: Callable[[str], None]):
    def unfreeze(trainer) -> None:
        if trainer.epoch != epochs:
            return
        from ultralytics.utils.torch_utils import unwrap_model

        count = 0
        for name, p in unwrap_model(trainer.model).named_parameters():
            if ".dfl" in name or not p.dtype.is_floating_point:
                continue  # Ultralytics keeps the DFL projection fixed in every run
            if not p.requires_grad:
                p.requires_grad = True
                count += 1
        trainer.freeze_layer_names = [".dfl"]  # BatchNorm of the backbone trains again from this epoch
        log(f"epoch {epochs + 1}: backbone unfrozen ({count} parameter tensors train from now on)")

    return unfreeze


def _discriminative_lr(n_layers: int, scale: float, log: Callable[[str], None]):
    def split_groups(trainer) -> None:
        from ultralytics.utils.torch_utils import unwrap_model

        opt = trainer.optimizer
        backbone = {id(p) for name, p in unwrap_model(trainer.model).named_parameters() if _is_backbone(name, n_layers)}
        new_groups = []
        for group in opt.param_groups:
            mine = [p for p in group["params"] if id(p) in backbone]
            if not mine:
                continue
            group["params"] = [p for p in group["params"] if id(p) not in backbone]
            lr = group.get("initial_lr", group["lr"]) * scale
            new_groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": mine, "lr": lr,
                               "initial_lr": lr, "param_group": f"{group.get('param_group', 'group')}_backbone"})
        for g in new_groups:
            opt.add_param_group(g)
        # LambdaLR holds one lambda per group: rebuild it so the new groups follow warm-up and decay too
        trainer._setup_scheduler()
        trainer.scheduler.last_epoch = trainer.start_epoch - 1
        log(f"discriminative learning rates: backbone (layers 0-{n_layers - 1}) at {scale:g} x lr0 in "
            f"{len(new_groups)} extra parameter groups")

    return split_groups
