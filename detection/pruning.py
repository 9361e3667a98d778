"""Structured channel pruning of a YOLO detector (L1 norm), then fine-tuning: fewer channels, really faster.

    pruned = prune_model("best.pt", ratio=0.3, imgsz=320)          # PyTorch module + before/after counts
    best = fine_tune(pruned.net, "data.yaml", epochs=10, imgsz=320, project=out)

Whole output channels (conv filter + its BatchNorm entry + every input slice that reads it) are removed, so
the result is a smaller dense network: fewer parameters and FLOPs, lower latency on any backend. Channels are
ranked per dependency group by the L1 norm of their weights (Torch-Pruning's DepGraph finds which layers must
lose the same channels: residual adds, concatenations, the head's branches).

Two things Ultralytics' graph needs first (`prepare_for_pruning`):
- C3k2/C2f and C2PSA split one conv's output in two halves (`chunk`/`split`); DepGraph cannot keep the
  halves consistent, so that conv becomes two convs (`cv1a`, `cv1b`) with the same weights: the network
  computes exactly the same function (tested), and each half can now lose channels independently.
- Attention's q/k/v layout depends on head sizes, and the head's last convs define the output format
  (4 x reg_max box bins, nc classes), so those layers keep their channels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from shared.offline import yolo

yolo()  # the classes below subclass Ultralytics modules: import it offline first
from ultralytics.nn.modules import C2PSA, Attention, C2f, Detect  # noqa: E402


def _split_conv(conv: nn.Module, lo: int, hi: int) -> nn.Module:
    """Output channels [lo, hi) of an Ultralytics Conv (conv + BN + activation) as a new Conv."""
    new = copy.deepcopy(conv)
    c, bn = conv.conv, conv.bn
    new.conv = nn.Conv2d(c.in_channels, hi - lo, c.kernel_size, c.stride, c.padding, c.dilation, c.groups,
                         c.bias is not None)
    new.conv.weight.data = c.weight.data[lo:hi].clone()
    if c.bias is not None:
        new.conv.bias.data = c.bias.data[lo:hi].clone()
    new.bn = nn.BatchNorm2d(hi - lo, bn.eps, bn.momentum)
    for k in ("weight", "bias", "running_mean", "running_var"):
        getattr(new.bn, k).data = getattr(bn, k).data[lo:hi].clone()
    new.conv.train(c.training)
    new.bn.train(bn.training)
    return new


class C2fSplit(C2f):
    """C2f / C3k2 with its first conv split in two (same function, prunable halves)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1a(x), self.cv1b(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))

    forward_split = forward  # Ultralytics' exporter swaps C2f.forward for forward_split (which reads cv1)


class C2PSASplit(C2PSA):
    """C2PSA with its first conv split in two (same function, prunable halves)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1a(x), self.cv1b(x)
        return self.cv2(torch.cat((a, self.m(b)), 1))


def prepare_for_pruning(net: nn.Module) -> nn.Module:
    """Replace every chunk/split-after-conv block by its two-conv equivalent, in place; returns `net`."""
    for mod in net.modules():
        if isinstance(mod, C2f | C2PSA) and hasattr(mod, "cv1") and not hasattr(mod, "cv1a"):
            mod.cv1a, mod.cv1b = _split_conv(mod.cv1, 0, mod.c), _split_conv(mod.cv1, mod.c, 2 * mod.c)
            del mod.cv1
            mod.__class__ = C2fSplit if isinstance(mod, C2f) else C2PSASplit
    return net


def count(net: nn.Module, imgsz: int) -> tuple[int, float]:
    """(parameters, GFLOPs) of one forward pass at imgsz x imgsz (FLOPs = 2 x multiply-accumulates)."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(net, torch.zeros(1, 3, imgsz, imgsz))
    return int(params), 2 * macs / 1e9


@dataclass
class PruneResult:
    net: nn.Module
    params_before: int
    params_after: int
    gflops_before: float
    gflops_after: float


def prune_model(weights: str | Path, ratio: float = 0.3, imgsz: int = 320) -> PruneResult:
    """Load `weights`, remove `ratio` of the prunable channels in every group by L1 norm; return the network."""
    import torch_pruning as tp

    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be between 0 and 1 (share of channels removed), got {ratio}")
    net = yolo().YOLO(str(weights)).model.float().eval()
    prepare_for_pruning(net)
    for p in net.parameters():
        p.requires_grad_(True)
    head = next(m for m in net.modules() if isinstance(m, Detect))
    keep = [seq[-1] for seq in (*head.cv2, *head.cv3)] + [head.dfl]
    keep += [layer for m in net.modules() if isinstance(m, Attention) for layer in (m.qkv, m.pe, m.proj)]
    params0, gflops0 = count(net, imgsz)
    example = torch.zeros(1, 3, imgsz, imgsz)
    pruner = tp.pruner.MagnitudePruner(net, example, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                       pruning_ratio=ratio, ignored_layers=keep, round_to=8)
    pruner.step()
    params1, gflops1 = count(net, imgsz)
    return PruneResult(net, params0, params1, gflops0, gflops1)


def fine_tune(net: nn.Module, data: str | Path, epochs: int, imgsz: int, project: str | Path, seed: int = 0,
              batch: int = 16, lr0: float = 0.001) -> Path:
    """Train the pruned `net` (its own structure, not rebuilt from yaml) with Ultralytics; returns best.pt.

    AdamW at `lr0` without warm-up (Ultralytics' optimizer=auto would ignore lr0): the weights are trained
    already, only the channels that were removed need compensating.
    """
    ul = yolo()
    from ultralytics.models.yolo.detect import DetectionTrainer

    class PrunedTrainer(DetectionTrainer):
        def get_model(self, cfg=None, weights=None, verbose=True):
            return net

    model = ul.YOLO("yolo11n.yaml")
    model.train(trainer=PrunedTrainer, data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, workers=0,
                seed=seed, device="cpu", project=str(Path(project).resolve()), name="finetune", exist_ok=True,
                plots=False, verbose=False, amp=False, optimizer="AdamW", lr0=lr0, warmup_epochs=0,
                close_mosaic=max(1, epochs // 3), patience=0)
    return Path(project).resolve() / "finetune" / "weights" / "best.pt"


def torch_latency_ms(nets: dict[str, nn.Module], imgsz: int, repeats: int = 20, batch: int = 1) -> dict[str, float]:
    """Median forward latency (ms, PyTorch CPU) of each network, measured interleaved (A, B, A, B...).

    Interleaving makes the ratio fair when other jobs share the CPU: every network sees the same load.
    """
    import time

    x = torch.rand(batch, 3, imgsz, imgsz)
    times: dict[str, list[float]] = {k: [] for k in nets}
    with torch.inference_mode():
        for net in nets.values():
            net(x)  # warm-up: first call allocates
        for _ in range(repeats):
            for k, net in nets.items():
                t = time.perf_counter()
                net(x)
                times[k].append((time.perf_counter() - t) * 1000)
    return {k: float(torch.tensor(v).median()) for k, v in times.items()}


@dataclass
class PruneReport:
    """Before/after table of one prune + fine-tune run (rows: 'before', 'after')."""

    rows: list[dict]
    weights: Path
    ratio: float
    epochs: int
    imgsz: int


def evaluate_weights(weights: str | Path, data: str | Path, imgsz: int, limit: int | None = None,
                     seed: int = 0) -> dict[str, float]:
    """mAP50 / mAP50-95 of a .pt on the validation split (our letterbox, conf 0.001)."""
    from detection.backends import TorchBackend
    from detection.parity import evaluate_backend, load_split

    _, images, truths = load_split(data, "val", limit, seed)
    return evaluate_backend(TorchBackend(weights, imgsz=imgsz, batch=8), images, truths)


def prune_and_finetune(weights: str | Path, data: str | Path, out_dir: str | Path, ratio: float = 0.3,
                       epochs: int = 10, imgsz: int = 320, seed: int = 0, batch: int = 16, lr0: float = 0.001,
                       val_images: int | None = None, log=print) -> PruneReport:
    """Prune `weights` by L1 norm, fine-tune on `data`, and write a run directory `out_dir` export reads.

    `out_dir` gets `weights/best.pt` (the fine-tuned pruned network), `prune.json` / `prune.md` (the table)
    and `manifest.json` (kind 'detection-model', hashes of both). Rows: parameters, GFLOPs at imgsz, PyTorch
    CPU latency (batch 1, median, interleaved), mAP50 and mAP50-95 on the validation split, before and after.
    """
    from shared.reporting import markdown_table, write_json
    from shared.runs import write_manifest
    from shared.seeding import seed_everything

    seed_everything(seed)
    out_dir = Path(out_dir)
    (out_dir / "weights").mkdir(parents=True, exist_ok=True)
    log(f"pruning {ratio:.0%} of the channels of {weights} (L1 norm per dependency group)")
    pruned = prune_model(weights, ratio, imgsz)
    log(f"params {pruned.params_before:,} -> {pruned.params_after:,}, GFLOPs {pruned.gflops_before:.2f} -> "
        f"{pruned.gflops_after:.2f}; fine-tuning {epochs} epochs on {data}")
    best = fine_tune(pruned.net, data, epochs, imgsz, out_dir / "_train", seed, batch, lr0)
    dest = out_dir / "weights" / "best.pt"
    dest.write_bytes(best.read_bytes())
    log("measuring mAP and latency before and after")
    before_net = yolo().YOLO(str(weights)).model.float().eval().fuse()
    after_net = yolo().YOLO(str(dest)).model.float().eval().fuse()
    latency = torch_latency_ms({"before": before_net, "after": after_net}, imgsz)
    rows = []
    for name, w, params, gflops in (("before", weights, pruned.params_before, pruned.gflops_before),
                                    ("after", dest, pruned.params_after, pruned.gflops_after)):
        m = evaluate_weights(w, data, imgsz, val_images, seed)
        rows.append({"model": name, "params": params, "gflops": gflops, "latency_ms_torch": latency[name], **m})
    cfg = {"source": str(Path(weights).resolve()), "data": str(data), "ratio": ratio, "epochs": epochs,
           "imgsz": imgsz, "seed": seed, "batch": batch, "lr0": lr0}
    write_json({"config": cfg, "rows": rows}, out_dir / "prune.json")
    (out_dir / "prune.md").write_text(
        f"# Structured pruning ({ratio:.0%} of channels, L1) + {epochs} epochs fine-tuning at {imgsz} px\n\n"
        + markdown_table(rows) + "\n")
    import shutil

    shutil.rmtree(out_dir / "_train", ignore_errors=True)
    write_manifest(out_dir, "detection-model", cfg, files=["weights/best.pt", "prune.json", "prune.md"],
                   metrics={"pruning": rows}, extra={"pruned": True})
    return PruneReport(rows, dest, ratio, epochs, imgsz)
