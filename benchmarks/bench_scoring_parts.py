"""The two costliest parts of `fraud score`, before and after their rewrites, on bench_scoring's model and file.

    python -m benchmarks.bench_scoring_parts                   # 250k rows of the 1M-row benchmark file (~1 min)
    python -m benchmarks.bench_scoring_parts --rows 100000 --reason-rows 5000

- graph pass: each hourly snapshot cut as a graph (`EventLog.snapshot`), its mean operators built and encoded
  (`encode_prefix`), return paths by sparse products (`return_path_hops`), versus the compiled window
  (`fraud.features.graph_pass.window` + `encode_window` + `Window.paths`); both then run the same last GNN layer.
  One thread, then two threads as scoring runs them (`run_threaded`). The outputs must be identical.
- reason codes: exact TreeSHAP and Saabas contributions by XGBoost (`pred_contribs`) versus
  `fraud.models.treeshap` on the first --reason-rows rows of the booster matrix (max difference reported).

Needs bench_scoring's cache (the first `python -m benchmarks.bench_scoring` run makes it, or this script
does, ~1.5 min). Writes runs/bench-scoring/parts.json and prints a table. Run on a quiet machine: the
figures are times.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _graph(model, df, threads: int) -> list[dict]:
    """Snapshot path vs window path over df's hourly snapshots (the model's stored history before them)."""
    import numpy as np
    import torch

    from fraud.features.graph import return_path_hops, run_threaded, snapshot_groups
    from fraud.features.graph_pass import window
    from fraud.models.gnn import embed_snapshot, encode_prefix, encode_window

    cfg = model.cfg
    elog, rows = model._gnn_rows(model.history_, df)
    groups = list(snapshot_groups(rows.t, cfg.graph.every_ns))
    span = cfg.graph.window_ns
    results = {}

    def snapshot_path(idx, end, out):
        snap = elog.snapshot(end - span, end)
        s, d = snap.local(rows.src[idx]), snap.local(rows.dst[idx])
        hops = return_path_hops(snap, s, d, cfg.graph.max_hops)
        out[idx] = np.column_stack([hops, *embed_snapshot(model.gnn_, snap, s, d, rows.attr[idx],
                                                          encode_prefix(model.gnn_, snap))])

    def window_path(idx, end, out):
        win = window(elog, end - span, end)
        s, d = win.local(rows.src[idx]), win.local(rows.dst[idx])
        hops = win.paths(s, d, cfg.graph.max_hops)
        out[idx] = np.column_stack([hops, *embed_snapshot(model.gnn_, None, s, d, rows.attr[idx],
                                                          encode_window(model.gnn_, win))])

    width = 2 + 2 * cfg.gnn.embed
    for name, fn in (("snapshot graph (before)", snapshot_path), ("compiled window (now)", window_path)):
        fn(*groups[0], np.zeros((len(df), width), np.float32))  # warm-up: numba compiles on first use
        for workers in (1, threads):
            out = np.zeros((len(df), width), np.float32)
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            t = time.perf_counter()
            try:
                run_threaded(lambda idx, end, out=out, fn=fn: fn(idx, end, out), groups, workers)
            finally:
                torch.set_num_threads(before)
            results[(name, workers)] = (time.perf_counter() - t, out)
    ref = results[("snapshot graph (before)", 1)][1]
    return [{"part": "graph pass", "variant": name, "threads": w, "rows": len(df), "snapshots": len(groups),
             "seconds": round(sec, 3), "ms_per_snapshot": round(1000 * sec / len(groups), 2),
             "identical_to_before": bool(np.array_equal(out, ref))}
            for (name, w), (sec, out) in results.items()]


def _reasons(model, x, threads: int) -> list[dict]:
    import numpy as np
    import xgboost as xgb

    from fraud.models.treeshap import TreeContributions

    booster = model.booster_
    t = time.perf_counter()
    ours = TreeContributions(booster)
    tables_s = time.perf_counter() - t
    dm = xgb.DMatrix(x, feature_names=booster.feature_names)
    rows = []
    for exact in (True, False):
        ours(x[:256], exact, threads)  # warm-up (compile)
        t = time.perf_counter()
        want = booster.predict(dm, pred_contribs=True, approx_contribs=not exact)[:, :-1]
        xgb_s = time.perf_counter() - t
        t = time.perf_counter()
        got = ours(x, exact, threads)
        ours_s = time.perf_counter() - t
        kind = "exact TreeSHAP" if exact else "Saabas"
        for variant, sec in ((f"{kind}, XGBoost (before)", xgb_s), (f"{kind}, fraud.models.treeshap (now)", ours_s)):
            rows.append({"part": "reason codes", "variant": variant, "threads": threads, "rows": len(x),
                         "seconds": round(sec, 3), "us_per_row": round(1e6 * sec / len(x), 2),
                         "max_abs_diff": float(np.abs(got - want).max()) if "now" in variant else 0.0})
    rows.append({"part": "reason codes", "variant": "fraud.models.treeshap tables (once per model)", "threads": 1,
                 "seconds": round(tables_s, 3)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=250_000, help="rows of the benchmark file for the graph pass")
    ap.add_argument("--reason-rows", type=int, default=20_000, help="rows for the contribution timings")
    ap.add_argument("--seed", type=int, default=0, help="bench_scoring's seed (which cached model and file)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="bench_scoring's folder (default runs/bench-scoring)")
    args = ap.parse_args()

    import pandas as pd

    from benchmarks.bench_scoring import prepare
    from fraud.stack.model import FraudModel
    from shared.paths import runs_dir
    from shared.reporting import text_table, write_json

    out = Path(args.out) if args.out else runs_dir() / "bench-scoring"
    model_dir, data, _ = prepare(out, 1_000_000, args.seed, [])
    model = FraudModel.load(model_dir)
    df = pd.read_parquet(data).iloc[: args.rows].reset_index(drop=True)
    runs = _graph(model, df, args.threads)
    print(text_table(runs), flush=True)
    x = model.matrix(df.iloc[: args.reason_rows])
    reasons = _reasons(model, x, args.threads)
    print(text_table(reasons))
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "loadavg_1_5_15m": [round(v, 2) for v in os.getloadavg()], "graph": runs, "reasons": reasons}
    print(f"written to {write_json(result, out / 'parts.json')}")


if __name__ == "__main__":
    main()
