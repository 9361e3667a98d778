"""HTTP service latency: p50/p99 of POST /score (absorbing, as a live feed) for one transaction and for batches
of 100 at 1, 4 and 16 concurrent loopback clients, against a real `fraud serve` process with a state store,
and the ratio to a bare booster predict of the same rows measured in the same run.

    python -m benchmarks.bench_service                      # model + data: bench_scoring's 1M-row cache
    python -m benchmarks.bench_service --model DIR --data FILE.parquet --requests 200 --clients 1 --clients 4

Every request carries the key and "remember": true, so each transaction is scored, committed to the SQLite
store (WAL, --sync full by default) and absorbed. The clients draw requests from one queue in event order, so
concurrent requests arrive slightly out of order (within the service's lateness) and requests that wait
together are served as one batch. Each phase continues the feed where the previous one stopped. The server is
stopped in all cases. Each phase also reports the server process's CPU time per request (user + system, from
/proc), which other jobs on the machine change far less than the latency. Also measured in this process: the
cost of absorbing one transaction into the model's history, file scoring's `History.update` vs the service's
`LiveHistory.update`, and the CPU time of one absorbing one-transaction request through the service's own
scoring path (`ServiceState.score` with a durable store, no HTTP). Writes bench-service.json and prints
tables; the load average is in every row.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
KEY = "bench-" + "k" * 20


def _payload(df) -> list[dict]:
    return [{"transaction_id": str(r.transaction_id), "timestamp": r.timestamp.isoformat(), "source": str(r.source),
             "target": str(r.target), "amount": float(r.amount)} for r in df.itertuples()]


def _percentiles(lat: list[float]) -> dict:
    import numpy as np

    a = np.asarray(lat) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(base: str, txs: list[dict], batch: int, requests: int, clients: int, pid: int | None = None) -> dict:
    """Send `requests` requests of `batch` transactions from `clients` threads; latency percentiles (and the
    server's CPU ms per request when its `pid` is given)."""
    import httpx

    bodies = [{"transactions": txs[i * batch:(i + 1) * batch], "remember": True} for i in range(requests)]
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    nxt = iter(range(requests))

    def worker():
        with httpx.Client(base_url=base, timeout=120, headers={"X-API-Key": KEY}) as c:
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
                        errors.append(f"{r.status_code}: {r.text[:300]}")

    cpu0 = _cpu_s(pid) if pid is not None else float("nan")
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    cpu = (_cpu_s(pid) - cpu0) if pid is not None else float("nan")
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {"batch": batch, "clients": clients, "requests": requests, **_percentiles(lat),
            "tx_per_s": round(requests * batch / wall, 1), "server_cpu_ms_per_request": round(cpu * 1000 / requests, 2),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def bare_predict(model_dir: Path, rows, batch: int, requests: int) -> dict:
    """p50/p99 of a bare booster predict of the same rows, `batch` at a time (their matrix built untimed), on
    one thread as the service predicts (for a few rows, waking OpenMP threads costs more than it saves)."""
    from fraud.models.booster import predict
    from fraud.stack.model import FraudModel

    model = FraudModel.load(model_dir)
    x = model.matrix(rows.iloc[: batch * requests], "stored")
    booster = model.booster_.copy()
    booster.set_param({"nthread": 1})
    lat = []
    for i in range(requests):
        t = time.perf_counter()
        predict(booster, x[i * batch:(i + 1) * batch])
        lat.append(time.perf_counter() - t)
    return _percentiles(lat)


def absorb_cost(model_dir: Path, rows, n: int = 500) -> list[dict]:
    """p50/p99 of absorbing one transaction into the model's history: `History.update` (file scoring's
    layout) vs the service's `LiveHistory.update`, alternating on the same rows, in this process."""
    from fraud.serve.live_history import LiveHistory
    from fraud.stack.model import FraudModel

    model = FraudModel.load(model_dir)
    old, new = model.history_.copy(), LiveHistory(model.history_, lateness_s=3600)
    lat: dict[str, list[float]] = {"History.update": [], "LiveHistory.update": []}
    for i in range(n):
        row = rows.iloc[i:i + 1]
        for name, h in (("History.update", old), ("LiveHistory.update", new)):
            t = time.perf_counter()
            h.update(row)
            lat[name].append(time.perf_counter() - t)
    return [{"absorb_one": k, "tail_rows": len(model.history_.tail), **_percentiles(v)} for k, v in lat.items()]


def request_cpu(model_dir: Path, rows, n: int, lateness: str, sync: str) -> dict:
    """CPU ms (this thread's) of absorbing one-transaction requests through `ServiceState.score`, the path the
    /score route calls, with a durable store in a temporary folder: n requests of consecutive rows, after 20
    untimed ones (the first request after start-up builds the cached snapshot's node embeddings)."""
    import numpy as np

    from fraud.serve.admission import AdmissionConfig
    from fraud.serve.schemas import Transaction
    from fraud.serve.service_state import ServiceState
    from fraud.serve.store import StateStore, model_identity
    from fraud.stack.model import FraudModel

    model = FraudModel.load(model_dir)
    txs = [Transaction(**t) for t in _payload(rows.iloc[: n + 20])]
    cpu = []
    with tempfile.TemporaryDirectory(prefix="bench-service-cpu-") as tmp:
        store = StateStore(Path(tmp) / "state.sqlite", model_identity(model), sync=sync)
        svc = ServiceState(model, model_dir, 100, AdmissionConfig(lateness=lateness), store)
        for i, tx in enumerate(txs):
            t = time.thread_time()
            svc.score([tx], True)
            if i >= 20:
                cpu.append(time.thread_time() - t)
        store.close()
    a = np.asarray(cpu) * 1000
    return {"requests": len(a), "cpu_p50_ms": round(float(np.percentile(a, 50)), 3),
            "cpu_p99_ms": round(float(np.percentile(a, 99)), 3), "cpu_mean_ms": round(float(a.mean()), 3),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model directory (default: bench_scoring's cached model)")
    ap.add_argument("--data", default=None, help="parquet of later transactions (default: bench_scoring's file)")
    ap.add_argument("--requests", type=int, default=200, help="requests per single-transaction phase (the "
                                                              "batch-of-100 phases send a quarter of that)")
    ap.add_argument("--clients", type=int, action="append", default=None,
                    help="concurrent clients (repeatable; default 1, 4, 16)")
    ap.add_argument("--sync", default="full", help="the store's --sync (full or normal)")
    ap.add_argument("--lateness", default="1h", help="the server's --lateness (concurrent batches of a sparse "
                                                     "feed arrive further out of order than 1 h)")
    ap.add_argument("--batch", type=int, action="append", default=None, help="batch sizes (repeatable; "
                                                                              "default 1 and 100)")
    ap.add_argument("--absorb-only", action="store_true", help="only the in-process measurements (absorb "
                                                                "comparison, CPU per request), no server")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import pandas as pd

    from fraud.serve.launcher import ServerProcess
    from shared.paths import runs_dir
    from shared.reporting import text_table

    out = Path(args.out) if args.out else runs_dir() / "bench-scoring"
    out.mkdir(parents=True, exist_ok=True)
    if args.model is None or args.data is None:
        from benchmarks.bench_scoring import prepare

        model_dir, data, _ = prepare(out, 1_000_000, 0, [])  # the cache bench_scoring made, if any
    model_dir = Path(args.model or model_dir)
    data = Path(args.data or data)
    clients = args.clients or [1, 4, 16]
    n1, n100 = args.requests, max(4, args.requests // 4)
    batches = args.batch or [1, 100]
    phases = [(b, n1 if b == 1 else n100, c) for b in batches for c in clients]
    need = sum(b * n for b, n, _ in phases)
    frame = pd.read_parquet(data).iloc[:need]
    txs = _payload(frame)
    absorb = absorb_cost(model_dir, frame)
    print(text_table(absorb), flush=True)
    in_process = request_cpu(model_dir, frame, n1, args.lateness, args.sync)
    print(text_table([in_process]), flush=True)
    if args.absorb_only:
        (out / "bench-service-absorb.json").write_text(json.dumps(
            {"date": time.strftime("%Y-%m-%d", time.gmtime()), "cpus": os.cpu_count(),
             "loadavg_1_5_15m": [round(v, 2) for v in os.getloadavg()], "absorb_one": absorb,
             "request_cpu": in_process}, indent=2))
        return
    if need > len(txs):
        raise SystemExit(f"{data} holds {len(txs):,} transactions, the phases need {need:,} (each phase continues "
                         f"the feed); give a longer --data file, fewer --requests or fewer --clients")
    # The bare predict (it loads the model in this process), then the server on its own.
    bare = {b: bare_predict(model_dir, frame, b, n1 if b == 1 else n100) for b in batches}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        server = ServerProcess(model_dir, out / "server.log", "--max-batch", "100", "--log-level", "warning",
                               "--state", str(Path(tmp) / "state.sqlite"), "--sync", args.sync,
                               "--lateness", args.lateness, env={"FRAUD_API_KEY": KEY}, timeout_s=300)
        try:
            server.start()
            at = 0
            for b, n, c in phases:
                row = run_phase(server.url, txs[at: at + b * n], b, n, c, server.proc.pid)
                at += b * n
                row["bare_predict_p50_ms"] = round(bare[b]["p50_ms"], 3)
                row["bare_predict_p99_ms"] = round(bare[b]["p99_ms"], 3)
                row["ratio_p50_to_bare_predict"] = round(row["p50_ms"] / max(bare[b]["p50_ms"], 1e-6), 1)
                row["ratio_p99_to_bare_predict"] = round(row["p99_ms"] / max(bare[b]["p99_ms"], 1e-6), 1)
                rows.append(row)
                print(text_table(rows[-1:]), flush=True)
        finally:
            server.stop()
    result = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "cpus": os.cpu_count(),
              "loadavg_1_5_15m": [round(v, 2) for v in os.getloadavg()],
              "shared_load": os.getloadavg()[1] > (os.cpu_count() or 1), "sync": args.sync,
              "model": str(model_dir), "bare_predict": bare, "absorb_one": absorb, "request_cpu": in_process,
              "runs": rows}
    (out / "bench-service.json").write_text(json.dumps(result, indent=2))
    print(text_table(absorb))
    print(text_table([in_process]))
    print(text_table(rows))
    print(f"written to {out}/bench-service.json")


if __name__ == "__main__":
    main()
