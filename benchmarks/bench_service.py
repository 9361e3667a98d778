"""HTTP service latency: p50/p99 of POST /score for single transactions and batches of 100, over loopback,
against a real `fraud serve` process (uvicorn), under a bounded load.

    python -m benchmarks.bench_service                      # model + data: bench_scoring's 1M-row cache
    python -m benchmarks.bench_service --model DIR --data FILE.parquet --requests 30 --clients 4

Two phases per batch size:
- sequential (1 client, "remember": true): rows sent in event order, each request absorbed into the
  service's history, as a live feed would be;
- concurrent (--clients clients, "remember": false): what-if scoring of later rows against the current history
  (absorbing needs event order, which concurrent clients cannot promise).
The server is stopped in all cases. Writes bench-service.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _payload(df) -> list[dict]:
    return [{"transaction_id": str(r.transaction_id), "timestamp": r.timestamp.isoformat(), "source": str(r.source),
             "target": str(r.target), "amount": float(r.amount)} for r in df.itertuples()]


def _percentiles(lat: list[float]) -> dict:
    import numpy as np

    a = np.asarray(lat) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1),
            "mean_ms": round(float(a.mean()), 1)}


def run_phase(base: str, txs: list[dict], batch: int, requests: int, clients: int, remember: bool) -> dict:
    """Send `requests` requests of `batch` transactions from `clients` threads; latency percentiles."""
    import httpx

    bodies = [{"transactions": txs[i * batch:(i + 1) * batch], "remember": remember} for i in range(requests)]
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    nxt = iter(range(requests))

    def worker():
        with httpx.Client(base_url=base, timeout=120) as c:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                t = time.perf_counter()
                r = c.post("/score", json=bodies[i])
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code}: {r.text[:200]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {"batch": batch, "clients": clients, "remember": remember, "requests": requests, **_percentiles(lat),
            "tx_per_s": round(requests * batch / wall, 2), "loadavg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model directory (default: bench_scoring's cached model)")
    ap.add_argument("--data", default=None, help="parquet of later transactions (default: bench_scoring's file)")
    ap.add_argument("--requests", type=int, default=30,
                    help="requests per phase (0.1-1.3 s per request on the 1M-row benchmark model's history, so "
                         "20 per phase take about a minute in all)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients in the concurrent phases")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import pandas as pd

    from fraud.serve.service import serve_in_subprocess
    from shared.paths import runs_dir
    from shared.reporting import text_table

    out = Path(args.out) if args.out else runs_dir() / "bench-scoring"
    out.mkdir(parents=True, exist_ok=True)
    if args.model is None or args.data is None:
        from benchmarks.bench_scoring import prepare

        model_dir, data, _ = prepare(out, 1_000_000, 0, [])  # the cache bench_scoring made, if any
    model_dir = Path(args.model or model_dir)
    data = Path(args.data or data)
    need = args.requests * 100 * 2 + args.requests * 2
    txs = _payload(pd.read_parquet(data).iloc[:need])
    rows = []
    with serve_in_subprocess(model_dir, out / "server.log", "--max-batch", "100", "--log-level", "warning",
                             timeout_s=120) as base:
        n = args.requests
        # Sequential live feed: singles, then batches of 100, rows in event order and absorbed.
        rows.append(run_phase(base, txs[:n], 1, n, 1, True))
        print(text_table(rows[-1:]), flush=True)
        rows.append(run_phase(base, txs[n:n + 100 * n], 100, n, 1, True))
        print(text_table(rows[-1:]), flush=True)
        later = txs[n + 100 * n:]
        rows.append(run_phase(base, later, 1, n, args.clients, False))
        print(text_table(rows[-1:]), flush=True)
        rows.append(run_phase(base, later, 100, max(1, n // 2), args.clients, False))
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "loadavg_1_5_15m": [round(v, 2) for v in os.getloadavg()],
              "shared_load": os.getloadavg()[1] > (os.cpu_count() or 1),
              "model": str(model_dir), "runs": rows}
    (out / "bench-service.json").write_text(json.dumps(result, indent=2))
    print(text_table(rows))
    print(f"written to {out}/bench-service.json")


if __name__ == "__main__":
    main()
