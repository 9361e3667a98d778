"""Real-road accuracy at an equal CPU budget: stock Ultralytics vs the project's recipes vs synthetic pre-training.

    python -m benchmarks.bench_detection_transfer --data /work/shared/data/highway/data.yaml --budget 600
    python -m benchmarks.bench_detection_transfer --variant stock --budget 600      # one variant (parallel runs)
    python -m benchmarks.bench_detection_transfer --table                          # only collect and print

The data.yaml is copied with an absolute `path:` (the highway set says `path: .`, which Ultralytics reads from
the working directory), then `detection.holdout.make_dev_split` holds 25 % of the training images out as the
development split (seed 0). Every variant trains on the remaining training images until its CPU budget is
spent (detection.budget: CPU seconds of the process, pre-training and scene generation included), then is
evaluated on the development split (where settings are chosen) and on the data set's own val split (reported).

Variants:
- stock:         Ultralytics from yolo11n.yaml with its defaults (workers=0 so the budget sees data loading)
- scratch-road:  `detection train` defaults (preset road)
- scratch-tuned: preset road + AdamW, every batch an optimizer step (nominal_batch = batch), cosine decay
- synth-ft:      synthetic scenes (classes mapped onto the target's) -> pre-train -> fine-tune, no freezing
- synth-ft-freeze: the same pre-trained model, backbone frozen for the first fine-tuning epochs

Writes OUT/results/<variant>-<budget>.json per run and OUT/bench_detection_transfer.json (all runs + table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("stock", "scratch-road", "scratch-tuned", "synth-ft", "synth-ft-freeze")
COLUMNS = ["variant", "budget_cpu_s", "cpu_total_s", "pretrain_cpu_s", "epochs", "dev_map50", "dev_map50_95",
           "val_map50", "val_map50_95", "val_x_stock"]


def _resolved_copy(data_yaml: Path, out: Path) -> Path:
    """data.yaml with an absolute `path:` (what a user has to write for a `path: .` data set)."""
    import yaml

    raw = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    raw["path"] = str((data_yaml.parent / str(raw.get("path") or ".")).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


def _evaluate(weights, data: Path, out: Path, imgsz: int) -> dict:
    from detection.evaluate import EvalConfig, evaluate

    res = {}
    for name, split in (("dev", "val"), ("val", "test")):
        r = evaluate(weights, data, EvalConfig(split=split, imgsz=imgsz), out / f"eval-{name}", log=lambda s: None)
        res[f"{name}_map50"] = r.metrics["box_map50"]
        res[f"{name}_map50_95"] = r.metrics["box_map50_95"]
        res[f"{name}_fp_per_image"] = r.metrics.get("fp_per_image")
        res[f"{name}_recall"] = r.metrics.get("recall")
    return res


def run_stock(data: Path, out: Path, budget: float, seed: int, imgsz: int) -> dict:
    from detection.budget import CpuBudget, cpu_seconds
    from shared.offline import yolo

    c0 = cpu_seconds()
    model = yolo().YOLO("yolo11n.yaml")
    b = CpuBudget(budget).attach(model)
    model.train(data=str(data), epochs=100, imgsz=imgsz, batch=16, workers=0, seed=seed, project=str(out),
                name="ultralytics", exist_ok=True, plots=False, verbose=False)
    weights = out / "ultralytics" / "weights" / "best.pt"
    return {**b.summary(), "cpu_process_s": round(cpu_seconds() - c0, 1), "weights": str(weights),
            "config": "YOLO('yolo11n.yaml').train(imgsz, batch=16, workers=0, seed) + CPU budget"}


def _train_cfg(variant: str, budget: float, seed: int, imgsz: int):
    from detection.train import TrainConfig

    if variant == "scratch-road":
        return TrainConfig(epochs=100, imgsz=imgsz, cpu_budget_s=budget, seed=seed)
    if variant == "scratch-tuned":
        return TrainConfig(epochs=100, imgsz=imgsz, cpu_budget_s=budget, seed=seed, optimizer="AdamW", lr0=0.0015,
                           nominal_batch=16, cos_lr=True, warmup_epochs=2.0, close_mosaic=3)
    raise ValueError(variant)


def run_scratch(variant: str, data: Path, out: Path, budget: float, seed: int, imgsz: int) -> dict:
    import dataclasses

    from detection.train import train

    cfg = _train_cfg(variant, budget, seed, imgsz)
    r = train(data, cfg, out / "model")
    return {**{k: r.metrics.get(k) for k in ("cpu_budget_s", "cpu_total_s", "cpu_train_s", "epochs")},
            "weights": str(r.weights), "config": dataclasses.asdict(cfg)}


def run_synthetic(variant: str, data: Path, out: Path, budget: float, seed: int, imgsz: int) -> dict:
    import dataclasses

    from detection.transfer import TransferConfig, transfer

    cfg = TransferConfig.default(budget, seed=seed, imgsz=imgsz, freeze=variant == "synth-ft-freeze")
    # both synthetic variants share one pre-training run (same scenes, same seed): its CPU is charged to each
    shared = out.parent / f"synth-pretrain-{int(budget)}"
    r = transfer(data, cfg, out / "model", pretrain_dir=shared)
    return {"cpu_budget_s": budget, "cpu_total_s": r.cpu["total_s"], "pretrain_cpu_s": r.cpu["pretrain_s"],
            "scenes_cpu_s": r.cpu["scenes_s"], "epochs": r.finetune_metrics.get("epochs"),
            "pretrain_epochs": r.pretrain_metrics.get("epochs"), "weights": str(r.weights),
            "config": dataclasses.asdict(cfg)}


def run_one(variant: str, data: Path, out_root: Path, budget: float, seed: int, imgsz: int) -> dict:
    out = out_root / f"{variant}-{int(budget)}"
    out.mkdir(parents=True, exist_ok=True)
    t0, load0 = time.perf_counter(), os.getloadavg()
    if variant == "stock":
        rec = run_stock(data, out, budget, seed, imgsz)
    elif variant.startswith("scratch"):
        rec = run_scratch(variant, data, out, budget, seed, imgsz)
    else:
        rec = run_synthetic(variant, data, out, budget, seed, imgsz)
    rec.update(_evaluate(Path(rec["weights"]), data, out, imgsz))
    rec.update(variant=variant, budget_cpu_s=budget, seed=seed, imgsz=imgsz,
               wall_s=round(time.perf_counter() - t0, 1), load_avg_start=[round(x, 2) for x in load0],
               load_avg_end=[round(x, 2) for x in os.getloadavg()])
    path = out_root / "results" / f"{variant}-{int(budget)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2, default=str) + "\n", encoding="utf-8")
    return rec


def collect(out_root: Path) -> list[dict]:
    rows = [json.loads(p.read_text()) for p in sorted((out_root / "results").glob("*.json"))]
    stock = {r["budget_cpu_s"]: r["val_map50"] for r in rows if r["variant"] == "stock"}
    for r in rows:
        s = stock.get(r["budget_cpu_s"])
        r["val_x_stock"] = round(r["val_map50"] / s, 2) if s else None
    order = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(rows, key=lambda r: (r["budget_cpu_s"], order.get(r["variant"], 99)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/highway/data.yaml"))
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-transfer")
    ap.add_argument("--budget", type=float, action="append", help="CPU seconds per variant (repeatable; 900)")
    ap.add_argument("--variant", action="append", choices=VARIANTS, help="variants to run (repeatable; all)")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true", help="only collect the finished runs and print the table")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from detection.holdout import make_dev_split
    from shared.reporting import text_table, write_json

    out = args.out.resolve()
    if not args.table:
        dev_yaml = out / "highway-dev" / "data.yaml"
        if not dev_yaml.is_file():
            dev_yaml = make_dev_split(_resolved_copy(args.data, out / "data.yaml"), out / "highway-dev", 0.25, 0)
        for budget in args.budget or [600.0]:
            for variant in args.variant or VARIANTS:
                run_one(variant, dev_yaml, out, budget, args.seed, args.imgsz)
    rows = collect(out)
    print(text_table(rows, COLUMNS, digits=3))
    write_json({"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
                "command": "python -m benchmarks.bench_detection_transfer " + " ".join(argv or sys.argv[1:]),
                "columns": COLUMNS, "rows": rows}, out / "bench_detection_transfer.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
