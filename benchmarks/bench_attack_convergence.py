"""Is the black-box attack converged? Attacked recall of both stacks as a function of the query rounds.

    python -m benchmarks.bench_attack_convergence                          # seed 0, budget 2, 12..96 rounds
    python -m benchmarks.bench_attack_convergence --seed 1 --rounds 12,24,48 --attack-seeds 0,1,2
    python -m benchmarks.bench_attack_convergence --models runs/<earlier sweep>/models --rounds 192

Trains the standard and the adversarially trained stack once on bench_robustness's split (same data, same
config, same seed, so the same models), saves them under <out>/models (reusable with --models), then runs
`blackbox_attack` at one budget of the `full` threat model for every number of rounds and every attack seed.
An evaluation whose attacked recall still falls materially with more rounds is under-attacking: read its
figures as upper bounds. Writes <out>/convergence.json and prints the table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def bench_setup(args, run_name: str):
    """(config, split, out dir, result header) for a benchmark on bench_robustness's data and split: reads
    args.config, args.overrides, args.seed, args.budget, args.out."""
    import subprocess

    from benchmarks.bench_fraud_ablation import generated
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import temporal_split
    from shared.config import load_config, to_dict
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    cfg = load_config(FraudConfig, args.config, list(args.overrides))
    cfg.seed = args.seed
    out = Path(args.out) if args.out else new_run_dir(runs_dir(), run_name)
    out.mkdir(parents=True, exist_ok=True)
    df, source = generated("demo", args.seed)
    split = temporal_split(df, cfg.split.train, cfg.split.val)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg_start": os.getloadavg(),
              "git_commit": commit, "seed": args.seed, "data": source, "rows": len(df), "budget": args.budget,
              "split": split.summary(), "config": to_dict(cfg)}
    print(f"{len(df)} transactions from {source}; test {split.summary()[2]}")
    return cfg, split, out, result


def fit_or_load(cfg, split, models_dir: str | None, out: Path) -> tuple[dict, dict]:
    """({'standard', 'adversarial'}: FraudModel, fit seconds): loaded from `models_dir` (an earlier run's
    <out>/models) or trained on `split` with `cfg` (bench_robustness's models) and saved to <out>/models."""
    from dataclasses import replace

    from fraud.robust.defence import fit_adversarial
    from fraud.stack.model import FraudModel

    if models_dir:
        return {k: FraudModel.load(Path(models_dir) / k) for k in ("standard", "adversarial")}, {}
    fit_seconds = {}
    t = time.perf_counter()
    models = {"standard": FraudModel(cfg).fit(split.train, split.val, progress=False)}
    fit_seconds["standard"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    acfg = replace(cfg.adversarial, enabled=True)
    models["adversarial"] = fit_adversarial(split.train, split.val, replace(cfg, adversarial=acfg), acfg,
                                            progress=False)
    fit_seconds["adversarial"] = round(time.perf_counter() - t, 1)
    for k, m in models.items():
        m.save(out / "models" / k)
    print(f"trained in {fit_seconds} s; models saved to {out / 'models'}")
    return models, fit_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="data and model seed (as bench_robustness --seed)")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "fraud.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--rounds", default="12,24,48,96", help="comma-separated black-box round counts")
    ap.add_argument("--attack-seeds", default=None, help="comma-separated attack seeds (default: --seed, as the "
                                                         "robustness benchmark uses)")
    ap.add_argument("--models", default=None, help="a directory with standard/ and adversarial/ saved models "
                                                   "(an earlier sweep's <out>/models) instead of training")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from fraud.robust.attacks import AttackConfig, blackbox_attack
    from fraud.robust.threat import check_canonical, preset
    from shared.reporting import text_table, write_json

    rounds = [int(r) for r in args.rounds.split(",")]
    attack_seeds = [int(s) for s in (args.attack_seeds or str(args.seed)).split(",")]
    cfg, split, out, result = bench_setup(args, "bench-attack-convergence")
    models, fit_seconds = fit_or_load(cfg, split, args.models, out)
    if args.models:
        result["models_from"] = args.models
    result["fit_seconds"] = fit_seconds
    tm = preset("full").scaled(args.budget)
    rows = []
    for r in rounds:
        for s in attack_seeds:
            row = {"rounds": r, "attack_seed": s}
            for name, model in models.items():
                t = time.perf_counter()
                res = blackbox_attack(model, split.test, tm, AttackConfig(rounds=r, seed=s))
                check_canonical(res.frame)
                sm = res.summary()
                row.update({f"{name}_recall": sm["recall_after"], f"{name}_queries": sm["queries_total"],
                            f"{name}_queries_per_fraud": round(sm["queries_per_fraud"], 2),
                            f"{name}_seconds": round(time.perf_counter() - t, 1)})
                row[f"{name}_clean_recall"] = sm["recall_before"]
            row["ratio"] = (row["adversarial_recall"] / row["standard_recall"] if row["standard_recall"] > 0
                            else float("inf"))
            rows.append(row)
            print(text_table([row]), flush=True)
            result.update({"sweep": rows, "loadavg_end": os.getloadavg()})
            write_json(result, out / "convergence.json")  # after every cell, so a long sweep can be read early
    print(text_table(rows))
    print(f"written to {out}/convergence.json")


if __name__ == "__main__":
    main()
