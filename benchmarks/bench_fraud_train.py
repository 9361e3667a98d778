"""Training cost of the fraud stack on a long sparse and a short dense generated file, before and after
`graph.every: auto`: fit time, the graph part's time and share, scoring rows/s, PR-AUC, peak RSS.

    python -m benchmarks.bench_fraud_train                                # both files, before vs after
    python -m benchmarks.bench_fraud_train --files sparse --repeat 2
    python -m benchmarks.bench_fraud_train --before-tree ../fraud-before  # before = that checkout's code

Files (`data_scripts.make_transactions`, --seed): `sparse` = 430 customers over 365 days (~171k rows),
`dense` = ~1M rows over 90 days (`TransactionConfig.for_rows`), `report` = the fraud ablation's file (5,000
customers over 45 days, ~262k rows; `--files report`). Each is split 60/20/20 by time; the model is
fitted (`FraudModel.fit_artefacts`, every part on) on the first 60 % with the next 20 % as validation, then
scores the last 20 % with its stored history and the label feed running, as `fraud train` does.
`after` is configs/fraud.yaml; `before` is the same with the former graph defaults (BEFORE: hourly snapshots
for training and scoring), or with --before-tree, another checkout's own code and configs/fraud.yaml. The
graph part is `graph_s` of `fit_info_["timings"]`: GNN training plus the graph passes over training and
validation.

Every fit runs in a fresh subprocess (its own peak RSS, no warm caches), and before/after alternate per file
so a change of machine load hits both. Then `fraud train` itself runs once per file on the defaults (wall
time and peak RSS end to end, as a user runs it). Writes bench.json (every run, with load averages) and
prints both tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# Before numpy/torch/xgboost load OpenMP: spinning threads slow XGBoost ~50x when other jobs share the CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
BEFORE = ["graph.every=1h", "gnn.train_every=1h"]
COLUMNS = ["file", "variant", "rows", "every", "fit_s", "graph_s", "graph_share", "score_rows_per_s",
           "val_pr_auc", "test_pr_auc", "peak_rss_gib", "load"]
END_COLUMNS = ["file", "rows", "train_wall_s", "train_peak_rss_gib", "train_loadavg_1m"]


def make_file(name: str, seed: int, out: Path) -> Path:
    """Generate one benchmark file as parquet (reused if it exists)."""
    from data_scripts.make_transactions import TransactionConfig, generate

    path = out / f"{name}-seed{seed}.parquet"
    if not path.exists():
        cfg = {"sparse": TransactionConfig(n_customers=430, days=365, seed=seed),
               "dense": TransactionConfig.for_rows(1_000_000, days=90, seed=seed),
               # the fraud ablation's report-size file (benchmarks/bench_fraud_ablation.py SIZES["report"])
               "report": TransactionConfig(n_customers=5000, n_merchants=300, days=45, seed=seed),
               "warmup": TransactionConfig(n_customers=300, n_merchants=40, days=14, seed=seed)}[name]
        generate(cfg).to_parquet(path, index=False)
    return path


def run_one(data: str, tree: str, sets: list[str], out: str) -> None:
    """Fit, validate and score once (in this process) and write the measurements to `out` as JSON."""
    import numpy as np
    import pandas as pd

    from fraud.models.booster import predict
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import metrics, temporal_split
    from fraud.stack.model import FraudModel
    from shared.config import load_config

    split = temporal_split(pd.read_parquet(data), 0.6, 0.2)
    cfg = load_config(FraudConfig, Path(tree) / "configs" / "fraud.yaml", sets)
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    model = FraudModel(cfg)
    art = model.fit_artefacts(split.train, split.val, progress=False)
    fit_s = time.perf_counter() - t
    val = metrics(split.val["label"].to_numpy(), predict(model.booster_, art.val_matrix), model.threshold_)
    # As `fraud train` scores its test period: confirmed labels arrive while it runs (older checkouts: none).
    feed = model.label_feed(split.test) if hasattr(model, "label_feed") else contextlib.nullcontext()
    with feed:
        t = time.perf_counter()
        scored = model.score(split.test, history="stored")
        score_s = time.perf_counter() - t
    test = metrics(split.test["label"].to_numpy(), scored["probability"].to_numpy(), model.threshold_)
    timings = model.fit_info_["timings"]
    result = {"rows": len(split.train) + len(split.val) + len(split.test), "train_rows": len(split.train),
              "test_rows": len(split.test), "every": model.cfg.graph.every, "fit_s": round(fit_s, 1),
              "graph_s": timings.get("graph_s"), "graph_share": round(timings.get("graph_s", 0) / fit_s, 3),
              "timings": timings, "score_s": round(score_s, 1),
              "score_rows_per_s": int(len(split.test) / score_s),
              "val_pr_auc": round(float(val["pr_auc"]), 4), "test_pr_auc": round(float(test["pr_auc"]), 4),
              "test_recall_at_1pct_fpr": round(float(test["recall_at_1pct_fpr"]), 4),
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
              "loadavg_1m": [round(load0, 1), round(os.getloadavg()[0], 1)], "sets": sets,
              "test_frauds": int(np.sum(split.test["label"]))}
    Path(out).write_text(json.dumps(result, indent=2))


def spawn(data: Path, tree: Path, sets: list[str], out: Path) -> dict:
    """`run_one` in a fresh interpreter importing the code of `tree`."""
    job = json.dumps({"data": str(data), "tree": str(tree), "sets": sets, "out": str(out)})
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", job], cwd=tree, env=env, check=True)
    return json.loads(out.read_text())


def end_to_end(data: Path, seed: int, out: Path) -> dict:
    """Wall time and peak RSS of `fraud train` itself on `data` (this code, the defaults): reading, the fit,
    the test-period report and writing the model directory, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-c", "from fraud.cli import app; app()", "train", "--data", str(data), "--out", str(out),
           "--seed", str(seed), "--quiet"]
    load0, t = os.getloadavg()[0], time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"`fraud train` failed on {data} (exit {os.waitstatus_to_exitcode(status)})")
    return {"train_wall_s": round(wall, 1), "train_peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
            "train_loadavg_1m": [round(load0, 1), round(os.getloadavg()[0], 1)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", nargs="+", default=["sparse", "dense"], choices=["sparse", "dense", "report"])
    ap.add_argument("--repeat", type=int, default=1, help="before/after pairs per file (alternating)")
    ap.add_argument("--before-tree", type=Path, default=None,
                    help="checkout whose own code and configs/fraud.yaml are 'before' (default: this code "
                         "with the former graph defaults)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one measurement (spawn)
    args = ap.parse_args()
    if args.one:
        job = json.loads(args.one)
        run_one(job["data"], job["tree"], job["sets"], job["out"])
        return

    from shared.paths import runs_dir
    from shared.reporting import text_table, write_json
    from shared.runs import new_run_dir

    out = args.out or new_run_dir(runs_dir(), "bench-fraud-train")
    out.mkdir(parents=True, exist_ok=True)
    before = ((args.before_tree.resolve(), []) if args.before_tree else (ROOT, BEFORE))
    variants = {"before": before, "after": (ROOT, [])}
    runs, ends = [], []
    warmup = make_file("warmup", args.seed, out)
    for variant, (tree, sets) in variants.items():  # compiles numba's caches of each tree outside the timings
        spawn(warmup, tree, [*sets, f"seed={args.seed}"], out / f"warmup-{variant}.json")
    for name in args.files:
        data = make_file(name, args.seed, out)
        for rep in range(args.repeat):
            for variant, (tree, sets) in variants.items():
                r = spawn(data, tree, [*sets, f"seed={args.seed}"], out / f"{name}-{variant}-{rep}.json")
                r.update(file=name, variant=variant, repeat=rep, tree=str(tree),
                         load=f"{r['loadavg_1m'][0]}->{r['loadavg_1m'][1]}")
                runs.append(r)
                print(text_table([r], COLUMNS), flush=True)
        e2e = {"file": name, "rows": runs[-1]["rows"], **end_to_end(data, args.seed, out / f"{name}-model")}
        ends.append(e2e)
        print(text_table([e2e], END_COLUMNS), flush=True)
    result = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "cpus": os.cpu_count(), "seed": args.seed,
              "before": {"tree": str(before[0]), "sets": before[1]}, "runs": runs,
              "fraud_train": ends}
    write_json(result, out / "bench.json")
    print(text_table(runs, COLUMNS))
    print(text_table(ends, END_COLUMNS))
    print(f"written to {out}/bench.json")


if __name__ == "__main__":
    main()
