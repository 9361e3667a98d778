"""Scale benchmark of `fraud train` and of scoring: fit time and peak memory on ~1M generated transactions,
scoring throughput for several GNN snapshot cadences (the GNN's cost/quality knob).

    python -m benchmarks.bench_fraud_train --rows 1000000 --every 1h --every 3h --every 6h

Each cadence is a separate fit + score in a fresh process state (same data, same seed). Writes bench.json.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=1_000_000, help="approximate number of generated transactions")
    ap.add_argument("--every", action="append", default=None, help="graph.every values to compare (repeatable)")
    ap.add_argument("--window", default="3d")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from data_scripts.make_transactions import TransactionConfig, generate
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import metrics, temporal_split
    from fraud.stack.model import FraudModel
    from shared.config import load_config
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.runs import new_run_dir

    t = time.perf_counter()
    df = generate(TransactionConfig.for_rows(args.rows, days=44, seed=args.seed))
    gen_s = time.perf_counter() - t
    split = temporal_split(df, 0.6, 0.2)
    rows = []
    for every in args.every or ["1h", "6h"]:
        cfg = load_config(FraudConfig, Path(__file__).resolve().parents[1] / "configs" / "fraud.yaml",
                          [f"graph.every={every}", f"graph.window={args.window}", f"seed={args.seed}"])
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        model = FraudModel(cfg).fit(pd_copy(split.train), pd_copy(split.val), progress=False)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        s = model.score(split.test, history="stored")
        score_s = time.perf_counter() - t
        m = metrics(split.test["label"].to_numpy(), s["probability"].to_numpy(), model.threshold_)
        rows.append({"every": every, "window": args.window, "rows": len(df), "fit_s": round(fit_s, 1),
                     **{k: v for k, v in model.fit_info_["timings"].items()},
                     "test_rows": len(split.test), "score_s": round(score_s, 1),
                     "score_rows_per_s": round(len(split.test) / score_s), "test_pr_auc": round(m["pr_auc"], 4),
                     "recall_at_1pct_fpr": round(m["recall_at_1pct_fpr"], 4), "loadavg_1m": round(load0, 2)})
        print(text_table(rows[-1:]), flush=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "generate_s": round(gen_s, 1), "runs": rows,
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    out = Path(args.out) if args.out else new_run_dir(runs_dir(), "bench-fraud-train")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    print(text_table(rows, ["every", "window", "rows", "fit_s", "score_rows_per_s", "test_pr_auc",
                            "recall_at_1pct_fpr", "loadavg_1m"]))
    print(f"peak RSS {result['peak_rss_gib']} GiB; written to {out}/bench.json")


def pd_copy(df):
    return df.copy()


if __name__ == "__main__":
    main()
