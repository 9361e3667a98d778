"""`fraud score` in one process vs on a Dask LocalCluster, on bench_scoring's generated file and model.

    python -m benchmarks.bench_dask                        # 1,000,000 rows, LocalCluster(2 workers)
    python -m benchmarks.bench_dask --rows 5000000 --take 1000000 --variant cluster   # 1M of the 5M file
    python -m benchmarks.bench_dask --rows 200000 --workers 2 --parts 8

--rows is the length of bench_scoring's generated later file (same customers, same daily event rate, so the
graph window holds the same events at every size); --take scores its first TAKE rows with the same model, a
second size for the memory-per-worker comparison. The scored rows are cut into Parquet part files of
--part-rows rows (time order; or --parts files), so a part, like a shuffled partition, holds the same number
of rows at every size. Each variant runs in a fresh child process: one process (`score_file`, default
chunks) and the cluster (`score_parts` on a LocalCluster of --workers single-threaded workers); --variant runs
only one of them, and a later run of the other at the same size and settings is merged into the same JSON
(and the outputs compared). Reported: wall time, peak RSS of the driver and of every worker, the
time per stage and the summed task time per kind of task (from the Dask task stream): the per-partition
costs the scaling model in docs/fraud-scale.md is built from. Both outputs are compared (max |difference| of
the probabilities; 0 means bit-identical). The 1-minute load average is sampled every 10 s during each variant
(other jobs share the CPU). Writes runs/bench-dask/bench-<rows>.json and prints a table with the machine's
cores and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]


def _one(model_dir: str, data: str, out: str) -> dict:
    from fraud.serve.scoring import ScoreOptions, score_file
    from fraud.stack.model import FraudModel

    t = time.perf_counter()
    s = score_file(FraudModel.load(model_dir), data, out, options=ScoreOptions(progress=False))
    return {"wall_s": round(time.perf_counter() - t, 1), "rows": s.rows_read, "scored": s.scored,
            "flagged": s.flagged, "timings": s.timings,
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def _peak_rss_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def _cluster(model_dir: str, parts: str, out: str, workers: int) -> dict:
    from distributed import get_task_stream

    from fraud.scale.cluster import cluster
    from fraud.scale.file_scoring import score_parts
    from fraud.serve.scoring import ScoreOptions
    from fraud.stack.model import FraudModel

    model = FraudModel.load(model_dir)
    t0 = time.perf_counter()
    with cluster(f"local:{workers}") as client:
        start_s = time.perf_counter() - t0
        t = time.perf_counter()
        with get_task_stream(client) as ts:
            s = score_parts(model, parts, out, client, options=ScoreOptions(progress=False))
        wall = time.perf_counter() - t
        worker_rss = sorted(client.run(_peak_rss_gib).values())
    tasks: dict[str, dict] = {}
    for rec in ts.data:
        name = rec["key"][0] if isinstance(rec["key"], tuple) else rec["key"]
        kind = str(name).split("-")[0]
        span = sum(x["stop"] - x["start"] for x in rec["startstops"] if x["action"] == "compute")
        moved = sum(x["stop"] - x["start"] for x in rec["startstops"] if x["action"] == "transfer")
        d = tasks.setdefault(kind, {"tasks": 0, "compute_s": 0.0, "transfer_s": 0.0})
        d["tasks"] += 1
        d["compute_s"] += span
        d["transfer_s"] += moved
    tasks = {k: {"tasks": v["tasks"], "compute_s": round(v["compute_s"], 2), "transfer_s": round(v["transfer_s"], 2)}
             for k, v in sorted(tasks.items(), key=lambda kv: -kv[1]["compute_s"])}
    return {"wall_s": round(wall, 1), "cluster_start_s": round(start_s, 1), "rows": s.rows_read,
            "scored": s.scored, "flagged": s.flagged, "timings": s.timings, "driver_peak_rss_gib": _peak_rss_gib(),
            "worker_peak_rss_gib": worker_rss, "tasks": tasks}


def _child(kind: str, *args) -> dict:
    """One variant in a fresh process, with the load average it ran under (sampled every 10 s)."""
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.bench_dask import _{kind}; "
            f"print('RESULT' + json.dumps(_{kind}(*{list(args)!r})))")
    samples, done = [os.getloadavg()[0]], threading.Event()

    def sample() -> None:
        while not done.wait(10.0):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    finally:
        done.set()
        sampler.join()
    samples.append(os.getloadavg()[0])
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    if r.returncode or not lines:
        raise RuntimeError(f"{kind} variant failed:\n{r.stderr[:3000]}\n...\n{r.stderr[-2000:]}")
    res = json.loads(lines[-1][len("RESULT"):])
    res["load_1m"] = {"mean": round(sum(samples) / len(samples), 2), "max": round(max(samples), 2),
                      "first": round(samples[0], 2), "last": round(samples[-1], 2)}
    res["date"] = time.strftime("%Y-%m-%d", time.gmtime())
    return res


def _split(data: Path, parts_dir: Path, parts: int) -> None:
    import pandas as pd

    parts_dir.mkdir(parents=True, exist_ok=True)
    if len(list(parts_dir.glob("*.parquet"))) == parts:
        return
    df = pd.read_parquet(data)
    step = -(-len(df) // parts)
    for i in range(parts):
        df.iloc[i * step:(i + 1) * step].to_parquet(parts_dir / f"part-{i:03d}.parquet", index=False)


def _compare(one: Path, many: Path) -> float:
    import numpy as np
    import pandas as pd

    a = pd.read_parquet(one)
    b = pd.concat([pd.read_parquet(f) for f in sorted(many.glob("*.parquet"))], ignore_index=True)
    if len(a) != len(b) or not (a.iloc[:, 0].to_numpy() == b.iloc[:, 0].to_numpy()).all():
        return float("inf")
    return float(np.abs(a["probability"].to_numpy() - b["probability"].to_numpy()).max())


def _earlier(path: Path, settings: dict) -> dict:
    """The variants of an earlier run at the same size and settings (to merge into), else nothing."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    if any(old.get(k) != v for k, v in settings.items()):
        return {}
    return {k: old[k] for k in ("one_process", "cluster") if k in old}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of bench_scoring's file (its cache key)")
    ap.add_argument("--take", type=int, default=None, help="score only the first TAKE rows of it (a second "
                    "size from the same model, for the memory-per-worker comparison)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--part-rows", type=int, default=250_000,
                    help="rows per Parquet part file the scored rows are cut into (default 250000)")
    ap.add_argument("--parts", type=int, default=None, help="cut into this many part files instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", choices=["one", "cluster"], action="append", default=None,
                    help="run only this variant (repeatable; default both)")
    ap.add_argument("--skip-one", action="store_true", help="only the cluster variant (= --variant cluster)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-dask"))
    args = ap.parse_args()
    variants = set(args.variant or (["cluster"] if args.skip_one else ["one", "cluster"]))
    if args.part_rows < 1 or (args.parts is not None and args.parts < 1):
        ap.error("--part-rows and --parts must be >= 1")
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_scoring import prepare

    out = Path(args.out)
    model_dir, data, info = prepare(ROOT / "runs" / "bench-scoring", args.rows, args.seed, [])
    rows = args.take or args.rows
    if rows > info["score_rows"]:
        ap.error(f"--take {rows} is more than the {info['score_rows']:,} rows of the --rows {args.rows} file")
    if args.take:
        import pandas as pd

        head = out / f"score-{args.rows}-first-{rows}.parquet"
        if not head.is_file():
            out.mkdir(parents=True, exist_ok=True)
            pd.read_parquet(data).iloc[:rows].to_parquet(head, index=False)
        data = head
    parts = args.parts or -(-rows // args.part_rows)
    parts_dir = out / f"parts-{args.rows}-first-{rows}-x{parts}"
    _split(data, parts_dir, parts)
    run = out / f"run-{rows}-{time.strftime('%Y%m%d%H%M%S')}"
    run.mkdir(parents=True)
    settings = {"rows": rows, "source_rows": args.rows, "parts": parts, "workers": args.workers,
                "model": str(model_dir)}
    path = out / f"bench-{rows}.json"
    res = {**settings, "cores": os.cpu_count(), "train_info": info, **_earlier(path, settings)}
    if "one" in variants:
        res["one_process"] = _child("one", str(model_dir), str(data), str(run / "one.parquet"))
        res["one_process"]["output"] = str(run / "one.parquet")
    if "cluster" in variants:
        res["cluster"] = _child("cluster", str(model_dir), str(parts_dir), str(run / "many"), args.workers)
        res["cluster"]["output"] = str(run / "many")
    res.pop("max_abs_probability_difference", None)
    if "one_process" in res and "cluster" in res:
        one, many = Path(res["one_process"]["output"]), Path(res["cluster"]["output"])
        if one.is_file() and many.is_dir():
            res["max_abs_probability_difference"] = _compare(one, many)
    path.write_text(json.dumps(res, indent=2))
    print(f"{rows:,} rows (first of the {args.rows:,}-row file), {parts} parts, {os.cpu_count()} cores")
    print(f"{'variant':26s} {'wall s':>8s} {'rows/s':>8s} {'load 1m mean/max':>17s}  peak RSS GiB")
    if "one_process" in res:
        o = res["one_process"]
        print(f"{'one process':26s} {o['wall_s']:8.1f} {rows / o['wall_s']:8.0f} "
              f"{o['load_1m']['mean']:>8} / {o['load_1m']['max']:<6}  {o['peak_rss_gib']}")
    if "cluster" in res:
        c = res["cluster"]
        rss = f"driver {c['driver_peak_rss_gib']}, workers {c['worker_peak_rss_gib']}"
        print(f"{'LocalCluster(' + str(args.workers) + ')':26s} {c['wall_s']:8.1f} {rows / c['wall_s']:8.0f} "
              f"{c['load_1m']['mean']:>8} / {c['load_1m']['max']:<6}  {rss}  (+{c['cluster_start_s']} s start)")
        print(f"cluster stages: {c['timings']}")
        print(f"{'task kind':28s} {'tasks':>6s} {'compute s':>10s} {'transfer s':>10s} {'ms/row':>7s}")
        for k, v in c["tasks"].items():
            print(f"{k:28s} {v['tasks']:6d} {v['compute_s']:10.2f} {v['transfer_s']:10.2f} "
                  f"{1000 * v['compute_s'] / rows:7.3f}")
    if "max_abs_probability_difference" in res:
        print(f"max |probability difference| one process vs cluster: {res['max_abs_probability_difference']:.3g}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
