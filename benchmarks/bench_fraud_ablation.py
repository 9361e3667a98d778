"""Benchmark of the fraud model stack: the ablation table and the cost of training and scoring at scale.

    python -m benchmarks.bench_fraud_ablation                       # default: report-size ablation
    python -m benchmarks.bench_fraud_ablation --size demo --holdout laundering_cycle

Writes JSON to runs/bench-fraud-ablation-<time>/bench.json and prints tables. Timings are wall-clock on a
shared machine: read them with the date and the load average printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

# Before numpy/torch/xgboost load OpenMP: spinning threads slow XGBoost ~50x when other jobs share the CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Sizes of the generated data sets: "report" trains the whole ablation in about a minute on 2 cores,
# "demo" in well under that (for `make demo`).
SIZES = {"demo": {"n_customers": 2000, "n_merchants": 150, "days": 30},
         "report": {"n_customers": 5000, "n_merchants": 300, "days": 45}}


def generated(preset: str, seed: int, holdout: str = ""):
    """(frame, generator name) from the project's transaction generator."""
    from data_scripts.make_transactions import TransactionConfig, generate

    kwargs = dict(SIZES[preset], seed=seed)
    if holdout:
        kwargs["holdout_typology"] = holdout
    return generate(TransactionConfig(**kwargs)), "data_scripts/make_transactions.py"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "fraud.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    ap.add_argument("--data", default=None, help="a canonical labelled file instead of generated data")
    ap.add_argument("--size", default="report", choices=sorted(SIZES), help="generated data size")
    ap.add_argument("--holdout", default="", help="typology held out of the training period (generator)")
    ap.add_argument("--save-data", default=None, help="also write the generated transactions to this Parquet file")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from fraud.stack.ablation import run_ablation
    from fraud.stack.config import FraudConfig
    from shared.config import load_config
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.runs import new_run_dir

    cfg = load_config(FraudConfig, args.config, args.overrides)
    cfg.seed = args.seed
    cfg.evaluate.holdout_typology = args.holdout
    out = Path(args.out) if args.out else new_run_dir(runs_dir(), "bench-fraud-ablation")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg_start": os.getloadavg(),
              "cpus": os.cpu_count(), "seed": args.seed}
    t = time.perf_counter()
    if args.data:
        from fraud.data.load import load_transactions

        df, source = load_transactions(Path(args.data))[0], args.data
    else:
        df, source = generated(args.size, args.seed, args.holdout)
    result["data"] = source
    if args.save_data:
        Path(args.save_data).parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(args.save_data, index=False)
    result["generate_seconds"] = round(time.perf_counter() - t, 1)
    result["rows"] = len(df)
    print(f"{len(df)} transactions from {source}")
    t = time.perf_counter()
    summary = run_ablation(df, cfg, out / "ablation", progress=False)
    result["ablation_seconds"] = round(time.perf_counter() - t, 1)
    result["ablation"] = summary["variants"]
    result["fit_timings"] = summary["fit_info"]["timings"]
    cols = ["variant", "pr_auc", "roc_auc", "recall_at_1pct_fpr", "precision_at_threshold", "recall_at_threshold"]
    print(text_table([{"variant": k, **v} for k, v in summary["variants"].items()], cols))
    typs = sorted({t for m in summary["variants"].values() for t in m.get("per_typology", {})})
    print(text_table([{"variant": n, **{t: m["per_typology"].get(t, {}).get("recall_at_1pct_fpr") for t in typs}}
                      for n, m in summary["variants"].items()], ["variant", *typs], digits=3))
    result["peak_rss_gib"] = round(peak_rss_gib(), 2)
    result["loadavg_end"] = os.getloadavg()
    (out / "bench.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"written to {out}/bench.json")


if __name__ == "__main__":
    main()
