"""Hard-negative mining, measured: before / fine-tuned without mining (control) / after mining, same val set.

    python -m benchmarks.bench_mining                 # ~600 train images; first run also trains the base model
    python -m benchmarks.bench_mining --short         # a couple of minutes on an idle machine (make demo)

Steps: generate driving scenes (data_scripts.make_driving_scenes: train has few look-alike distractors, val and
the mining pool many), train a base detector on train, then
- control: fine-tune the base on the *original* train set with the same schedule as mining (so the table shows
  what mining adds beyond more training steps);
- mining: `detection.mining.mine` over the pool split (never val), fine-tune, evaluate.
All three are evaluated on the same val split at the same operating confidence. The scenes and the base model
are cached under .cache/bench-mining/<mode>-<key>/ (key = settings; a changed scene generator refills the cache
unless --keep-cache), so a second run only repeats the mining and the control; the JSON says which parts came
from the cache.

Writes OUT/bench_mining.json (table, speeds, timings, load average) and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FULL = {"scenes": {"n_train": 600, "n_val": 150, "n_pool": 400, "width": 640, "height": 384},
        "imgsz": 256, "base_epochs": 8, "finetune_epochs": 3, "rounds": 1, "rare_oversample": 2}
# --short shows the pipeline end to end in minutes; a base model trained this briefly is not a usable detector,
# so its table demonstrates the mechanics, not the effect (the full run is the measurement).
SHORT = {"scenes": {"n_train": 160, "n_val": 40, "n_pool": 80, "width": 320, "height": 192},
         "imgsz": 160, "base_epochs": 8, "finetune_epochs": 1, "rounds": 1, "rare_oversample": 2}


def _source_hash() -> str:
    """Hash of the scene generator's code: a changed generator invalidates cached scenes and models."""
    h = hashlib.sha256()
    for p in sorted((ROOT / "data_scripts").glob("*.py")):
        if p.name.startswith(("make_driving", "road_")):
            h.update(p.read_bytes())
    return h.hexdigest()[:10]


def _print_summary(s: dict, rare: list[str], rows: list[dict], control: dict | None) -> None:
    from detection.mining import summarise

    def pct(v):
        return "—" if v is None else f"{v:+.1%}"

    def num(v):
        return "—" if v is None else f"{v:+.4f}"

    print(f"\nfalse positives/image at the operating confidence {pct(s['fp_per_image_change'])}, at the base "
          f"model's recall {pct(s['fp_at_equal_recall_change'])} (target <= -30% at equal or better recall); "
          f"recall at conf {num(s['recall_change'])}; rare-class ({', '.join(rare)}) AP50 "
          f"{num(s['rare_ap50_change'])} (target > 0)")
    if control is not None:
        c = summarise([rows[0], control])
        print(f"control (same fine-tuning without mining): false positives/image at conf "
              f"{pct(c['fp_per_image_change'])}, at the base recall {pct(c['fp_at_equal_recall_change'])}, rare AP50 "
              f"{num(c['rare_ap50_change'])}")


def reevaluate(run: Path) -> int:
    """Recompute the table of an earlier run's models with the current evaluation code (no training)."""
    from detection.evaluate import EvalConfig, evaluate
    from detection.mining import REPORT_COLUMNS, summarise, table_row
    from shared.reporting import text_table, write_json

    report = json.loads((run / "bench_mining.json").read_text())
    cache = Path(report["cache"])
    data = cache / "scenes" / "data.yaml"
    cfg = EvalConfig(conf=report["conf"], imgsz=report["plan"]["imgsz"], rare_classes=report["rare_classes"])
    models = [("base (before)", cache / "base")]
    if (run / "control" / "manifest.json").is_file():
        models.append(("control (fine-tune, no mining)", run / "control"))
    rounds = sorted(run.glob("mine/round-*/model"), key=lambda p: int(p.parent.name.split("-")[1]))
    models += [(f"after mining (round {p.parent.name.split('-')[1]})", p) for p in rounds]
    rows, base_recall = [], None
    for name, model in models:
        res = evaluate(model, data, cfg, run / "reevaluate" / model.relative_to(cache if model.is_relative_to(cache)
                                                                                else run).as_posix().replace("/", "-"))
        base_recall = res.metrics["recall"] if base_recall is None else base_recall
        rows.append(table_row(name, res, base_recall))
    control = next((r for r in rows if r["model"].startswith("control")), None)
    mined = [r for r in rows if not r["model"].startswith("control")]
    report.update(table=rows, summary=summarise(mined), reevaluated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  reevaluate_loadavg=os.getloadavg())
    report["fp_per_image_cut"] = None if not mined[0]["fp_per_image"] else 1 - mined[-1]["fp_per_image"] / mined[0]["fp_per_image"]
    write_json(report, run / "bench_mining.json")
    print("\n" + text_table(rows, REPORT_COLUMNS))
    _print_summary(report["summary"], report["rare_classes"], rows, control)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", action="store_true", help="small scenes and schedules (~2-3 min on an idle machine)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default runs/bench-mining-<time>)")
    ap.add_argument("--seed", type=int, default=0, help="seed of scenes, training and mining")
    ap.add_argument("--rounds", type=int, default=None, help="mining rounds (default 1)")
    ap.add_argument("--finetune-epochs", type=int, default=None, help="fine-tuning epochs per round")
    ap.add_argument("--conf", type=float, default=0.25, help="operating confidence of the before/after table")
    ap.add_argument("--mine-conf", type=float, default=None,
                    help="confidence of a mined false positive (default: --conf; lower mines near misses too)")
    ap.add_argument("--background-share", type=float, default=0.1, help="cap on mined false-positive images")
    ap.add_argument("--rare-oversample", type=int, default=None, help="copies of each rare-class image (default 2)")
    ap.add_argument("--keep-cache", action="store_true",
                    help="reuse cached scenes and base model even if the scene generator's code changed since")
    ap.add_argument("--reevaluate", type=Path, default=None,
                    help="only re-evaluate the models of an earlier run's output folder with the current code")
    ap.add_argument("--no-control", action="store_true", help="skip the fine-tune-without-mining control")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.reevaluate:
        return reevaluate(args.reevaluate)

    from data_scripts.make_driving_scenes import SceneConfig, generate
    from detection.evaluate import EvalConfig, evaluate
    from detection.mining import REPORT_COLUMNS, MineConfig, mine, table_row
    from detection.train import TrainConfig, load_run, train
    from shared.paths import cache_dir, runs_dir
    from shared.reporting import text_table, write_json
    from shared.runs import new_run_dir

    plan = dict(SHORT if args.short else FULL)
    if args.rounds:
        plan["rounds"] = args.rounds
    if args.finetune_epochs:
        plan["finetune_epochs"] = args.finetune_epochs
    if args.rare_oversample:
        plan["rare_oversample"] = args.rare_oversample
    load_start = os.getloadavg()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    out = args.out or new_run_dir(runs_dir(), "bench-mining")
    out.mkdir(parents=True, exist_ok=True)

    base_cfg = TrainConfig(epochs=plan["base_epochs"], imgsz=plan["imgsz"], batch=16, preset="road", close_mosaic=2,
                           warmup_epochs=1.0, seed=args.seed)
    key = hashlib.sha256(json.dumps([plan["scenes"], dataclasses.asdict(base_cfg)], sort_keys=True).encode()
                         ).hexdigest()[:12]
    cache = cache_dir() / "bench-mining" / f"{'short' if args.short else 'full'}-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    stamp, source = cache / "generator.sha", _source_hash()
    if stamp.is_file() and stamp.read_text().strip() != source:
        if args.keep_cache:
            print(f"note: the scene generator changed since {cache} was filled; reusing it (--keep-cache)")
        else:
            print(f"the scene generator changed since {cache} was filled: regenerating scenes and base model")
            shutil.rmtree(cache)
            cache.mkdir(parents=True)

    t = time.perf_counter()
    scenes = cache / "scenes"
    cached_scenes = (scenes / "data.yaml").is_file()
    if not cached_scenes:
        print(f"generating scenes {plan['scenes']} -> {scenes}", flush=True)
        generate(SceneConfig(seed=args.seed, **plan["scenes"]), scenes, progress=False)
        stamp.write_text(source)
    data = scenes / "data.yaml"
    timings["scenes_s"] = time.perf_counter() - t

    t = time.perf_counter()
    base_dir = cache / "base"
    try:
        base_manifest, _ = load_run(base_dir)
        cached_base = True
        print(f"base model from cache: {base_dir}", flush=True)
    except Exception:
        cached_base = False
        train(data, base_cfg, base_dir)
        base_manifest, _ = load_run(base_dir)
    timings["base_train_s"] = time.perf_counter() - t

    eval_cfg = EvalConfig(conf=args.conf, imgsz=plan["imgsz"], split="val")
    finetune = TrainConfig(epochs=plan["finetune_epochs"], imgsz=plan["imgsz"], batch=16, preset="light",
                           optimizer="AdamW", lr0=0.0005, warmup_epochs=0.0, close_mosaic=1, seed=args.seed)
    mcfg = MineConfig(rounds=plan["rounds"], conf=args.mine_conf or args.conf, background_share=args.background_share,
                      rare_oversample=plan["rare_oversample"], finetune=finetune)

    t = time.perf_counter()
    result = mine(base_dir, data, mcfg, eval_cfg, pool="pool", out_dir=out / "mine")
    timings["mining_s"] = time.perf_counter() - t
    rows = list(result["table"])
    rows[0]["model"] = "base (before)"
    rows[-1]["model"] = f"after mining ({plan['rounds']} round{'s' if plan['rounds'] > 1 else ''})"

    control = None
    if not args.no_control:
        t = time.perf_counter()
        ctrl_cfg = dataclasses.replace(finetune, model=str(base_dir / "weights" / "best.pt"),
                                       epochs=finetune.epochs * plan["rounds"])
        ctrl = train(data, ctrl_cfg, out / "control")
        ev = evaluate(ctrl.run_dir, data, dataclasses.replace(eval_cfg, rare_classes=result["rare_classes"]),
                      out / "control-eval")
        control = table_row("control (fine-tune, no mining)", ev, result["table"][0]["recall"])
        rows.insert(1, control)
        timings["control_s"] = time.perf_counter() - t

    before, after = result["table"][0], result["table"][-1]
    speeds = {"base_train_images_per_s": base_manifest.metrics.get("train_images_per_s"),
              "finetune_images_per_s": [r.get("finetune_images_per_s") for r in result["rounds"]]}
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "mode": "short" if args.short else "full",
        "seed": args.seed, "host": platform.node(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        "plan": plan, "base_config": dataclasses.asdict(base_cfg), "mine_config": result["config"],
        "conf": args.conf, "mine_conf": mcfg.conf, "rare_classes": result["rare_classes"], "cache": str(cache),
        "cached": {"scenes": cached_scenes, "base_model": cached_base},
        "table": rows, "summary": result["summary"], "rounds": [{k: v for k, v in r.items() if k != "metrics"}
                                                                for r in result["rounds"]],
        "speeds": speeds, "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "total_s": round(time.perf_counter() - started, 1),
        "fp_per_image_cut": None if not before["fp_per_image"] else 1 - after["fp_per_image"] / before["fp_per_image"],
    }
    write_json(report, out / "bench_mining.json")
    print("\n" + text_table(rows, REPORT_COLUMNS))
    _print_summary(result["summary"], result["rare_classes"], rows, control)
    print(f"training speed on CPU: base {speeds['base_train_images_per_s']} images/s, fine-tune "
          f"{speeds['finetune_images_per_s']} images/s; load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores; {report['total_s']:.0f} s total (scenes cached: {cached_scenes}, base model "
          f"cached: {cached_base})")
    if args.short:
        print("note: --short trains the base model for a few minutes only; it is not a usable detector, so this "
              "table shows the pipeline working, not the size of the effect. Run without --short to measure it.")
    print(f"wrote {out / 'bench_mining.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
