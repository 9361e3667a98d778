"""Benchmark of the transaction generator (target: 1,000,000 rows in < 60 s and < 4 GiB on 2 cores),
plus writing the result to Parquet and loading it back through `fraud.data`.

    python -m benchmarks.bench_make_transactions                     # 1M rows
    python -m benchmarks.bench_make_transactions --rows 200000 --csv # smaller, also CSV write + load

Each size runs in a fresh child process so its peak RSS (ru_maxrss) is the generator's alone, imports
included. Writes JSON to runs/bench-make-transactions-<time>/bench.json and prints a table. Timings are
wall-clock on a shared machine: read them beside the load average recorded with them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

TARGET_SECONDS, TARGET_GIB = 60.0, 4.0


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _child(rows: int, seed: int, csv: bool, queue) -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from data_scripts.make_transactions import TransactionConfig, generate, write
    from fraud.data.load import load_transactions

    out = {"rss_after_imports_gib": _peak_gib()}
    cfg = TransactionConfig.for_rows(rows, seed=seed)
    t = time.perf_counter()
    df = generate(cfg)
    out.update(generate_s=time.perf_counter() - t, rows=len(df), n_customers=cfg.n_customers,
               fraud_rows=int(df["label"].sum()), peak_rss_generate_gib=_peak_gib())
    out["separability"] = row_separability(df)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ["parquet", *(["csv"] if csv else [])]:
            path = Path(tmp) / f"tx.{fmt}"
            t = time.perf_counter()
            write(df, path)
            out[f"write_{fmt}_s"] = time.perf_counter() - t
            out[f"{fmt}_mib"] = path.stat().st_size / 2**20
            t = time.perf_counter()
            back, rej = load_transactions(path)
            out[f"load_{fmt}_s"] = time.perf_counter() - t
            if len(back) != len(df) or len(rej):
                raise AssertionError(f"{fmt} round trip lost rows: {len(back)} kept, {len(rej)} rejected")
            del back, rej
    out["peak_rss_gib"] = _peak_gib()
    queue.put(out)


def row_separability(df) -> list[dict]:
    """Per typology: how well row-level fields alone separate it from benign account-to-account transfers.
    rel_amount_auc: ROC-AUC of log(amount / the sender's median benign amount) (0.5 = no signal; < 0.5 =
    smaller than usual); night_share: share of rows at 00-05 h UTC (benign transfers given for reference)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    benign = df["label"] == 0
    usual = df.loc[benign].groupby("source")["amount"].median()
    rel = np.log(df["amount"] / df["source"].map(usual).astype("float64"))
    night = (df["timestamp"].dt.hour < 6).to_numpy()
    ref = (benign & df["target"].str.startswith("C") & rel.notna()).to_numpy()
    rows = [{"typology": "(benign transfers)", "rows": int(ref.sum()), "rel_amount_auc": 0.5,
             "night_share": float(night[ref].mean())}]
    for typ in sorted(set(df["typology"]) - {""}):
        mask = (df["typology"] == typ).to_numpy() & rel.notna().to_numpy()
        y = np.r_[np.zeros(ref.sum()), np.ones(mask.sum())]
        rows.append({"typology": typ, "rows": int(mask.sum()),
                     "rel_amount_auc": float(roc_auc_score(y, np.r_[rel[ref], rel[mask]])),
                     "night_share": float(night[(df["typology"] == typ).to_numpy()].mean())})
    return rows


def measure(rows: int, seed: int, csv: bool) -> dict:
    """One generator run of about `rows` rows in a spawned child: timings and peak RSS."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(rows, seed, csv, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"the benchmark child failed with exit code {proc.exitcode}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", default=None,
                    help="about this many rows (repeatable; default 1,000,000)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    ap.add_argument("--csv", action="store_true", help="also time CSV write and load (slower than Parquet)")
    ap.add_argument("--out", default=None, help="JSON path (default runs/bench-make-transactions-<time>/bench.json)")
    args = ap.parse_args()

    from shared.paths import runs_dir
    from shared.reporting import text_table, write_json
    from shared.runs import new_run_dir

    out = Path(args.out) if args.out else new_run_dir(runs_dir(), "bench-make-transactions") / "bench.json"
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "seed": args.seed, "targets": {"seconds_per_1m_rows": TARGET_SECONDS, "peak_rss_gib": TARGET_GIB},
              "runs": []}
    for rows in args.rows or [1_000_000]:
        load = os.getloadavg()
        r = measure(rows, args.seed, args.csv)
        r.update(loadavg_start=load, loadavg_end=os.getloadavg(), rows_per_s=r["rows"] / r["generate_s"])
        r["meets_target"] = bool(r["generate_s"] * 1e6 / r["rows"] < TARGET_SECONDS
                                 and r["peak_rss_gib"] < TARGET_GIB)
        result["runs"].append(r)
    write_json(result, out)
    cols = ["rows", "fraud_rows", "generate_s", "rows_per_s", "peak_rss_generate_gib", "write_parquet_s",
            "load_parquet_s", "peak_rss_gib", *(["write_csv_s", "load_csv_s"] if args.csv else []),
            "meets_target"]
    print(text_table([{c: run.get(c) for c in cols} for run in result["runs"]], digits=3))
    print("\nRow-level separability from benign transfers (first run; AUC 0.5 = invisible per row):")
    print(text_table(result["runs"][0]["separability"], digits=3))
    print(f"load average at start {[round(x, 2) for x in result['runs'][0]['loadavg_start']]} on "
          f"{result['cpus']} CPUs; JSON -> {out}")


if __name__ == "__main__":
    main()
