"""Fine-tuning recipes do what their keys say: the backbone is frozen for exactly the first epochs, backbone
learning rates are scaled, the CPU budget cuts the schedule, and contradictory keys are refused."""

import hashlib

import pytest
import torch

from detection.budget import CpuBudget, cpu_seconds
from detection.recipes import attach_recipe, backbone_layers
from detection.train import TrainConfig, train
from shared.offline import yolo
from tests.fixtures.toy_scenes import make_toy_scenes


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_scenes(tmp_path_factory.mktemp("toy"), n_train=8, n_val=4, width=128, height=96, seed=5)


def _digest(module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        if v.dtype.is_floating_point:
            h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def test_backbone_frozen_for_the_first_epoch_only_and_its_rate_scaled(toy, tmp_path):
    model = yolo().YOLO("yolo11n.yaml")
    n = backbone_layers(model)
    assert n == 11
    cfg = TrainConfig(freeze_backbone_epochs=1, backbone_lr_scale=0.1, epochs=2)
    recipe = attach_recipe(model, cfg, log=lambda s: None)
    seen = []

    def record(trainer):
        net = trainer.model
        seen.append({"backbone": _digest(torch.nn.Sequential(*net.model[:n])),
                     "head": _digest(torch.nn.Sequential(*net.model[n:])),
                     "lrs": {g["param_group"]: g["lr"] for g in trainer.optimizer.param_groups}})

    model.add_callback("on_train_start", record)
    model.add_callback("on_train_epoch_end", record)
    model.train(data=str(toy), epochs=2, imgsz=64, batch=4, workers=0, optimizer="AdamW", lr0=0.01,
                warmup_epochs=0, val=False, plots=False, project=str(tmp_path), name="r", exist_ok=True,
                verbose=False, amp=False, **recipe["train_args"])
    start, first, second = seen
    assert first["backbone"] == start["backbone"], "the backbone changed while frozen"
    assert first["head"] != start["head"], "the head must train from the first epoch"
    assert second["backbone"] != first["backbone"], "the backbone must train after unfreezing"
    lrs = second["lrs"]
    assert lrs["weight_backbone"] == pytest.approx(0.1 * lrs["weight"], rel=1e-6)
    assert lrs["bias_backbone"] == pytest.approx(0.1 * lrs["bias"], rel=1e-6)


def test_cpu_budget_cuts_the_schedule_and_is_recorded(toy, tmp_path):
    r = train(toy, TrainConfig(epochs=50, imgsz=64, batch=4, cpu_budget_s=0.5, amp=True), tmp_path / "b",
              log=lambda s: None)
    m = r.metrics
    assert m["epochs"] == 1, "a budget smaller than one epoch still trains the minimum of one epoch"
    assert m["cpu_budget_s"] == 0.5 and m["cpu_train_s"] > 0
    assert m["amp_effective"] is False, "mixed precision cannot run on a CPU and must say so"


def test_budget_counts_earlier_stages_and_refuses_an_overspent_one():
    b = CpuBudget(100, spent_before=40)
    assert b.remaining == 60
    with pytest.raises(ValueError, match="already used"):
        CpuBudget(100, spent_before=120)
    t = cpu_seconds()
    sum(i * i for i in range(200_000))
    assert cpu_seconds() > t


def test_contradictory_recipe_keys_are_refused():
    with pytest.raises(ValueError, match="freeze_backbone_epochs"):
        TrainConfig(epochs=3, freeze_backbone_epochs=3)
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        TrainConfig(backbone_lr_scale=0)
    with pytest.raises(ValueError, match="nominal_batch"):
        TrainConfig(nominal_batch=0)
    TrainConfig(epochs=3, freeze_backbone_epochs=-1)  # frozen for the whole run is allowed
