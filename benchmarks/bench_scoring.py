"""Batch scoring benchmark: a generated file of --rows transactions scored end to end (read -> validate ->
features -> graph/GNN -> autoencoder -> XGBoost -> reason codes -> write), with throughput, peak RSS of the
scoring process and the ratio to bare XGBoost `predict` on the same rows (the floor cost).

    python -m benchmarks.bench_scoring                         # 1,000,000 rows (first run also trains, ~3 min)
    python -m benchmarks.bench_scoring --rows 100000 --set graph.every=6h
    python -m benchmarks.bench_scoring --reasons none --chunk-rows 100000 --chunk-rows 250000   # chunk sizes

The model is trained once per (seed, config) on an earlier period of the same generated population and cached
under the output folder, as is the scoring file; later runs only score. Each measured variant runs in a
fresh child process (so peak RSS is the scoring's own). Writes bench.json (bench-<overrides>.json for
another model config) and prints a table with the scored file's PR-AUC and recall against the labels.
"""

from __future__ import annotations

import argparse
import hashlib
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
GENERATOR_VERSION = 2  # part of the cache key: 2 = data_scripts.make_transactions
TRAIN_DAYS = 10


def _generate(seed: int, rows: int, n_cust: int = 25_000, train_days: int = TRAIN_DAYS):
    """(training frame, scoring frame, generator name): one generated population; training = its first
    train_days, scoring = the next `rows` rows (so scoring sees the same customers, later in time)."""
    import pandas as pd

    n_merch = max(100, n_cust // 25)
    from data_scripts.make_transactions import TransactionConfig, generate

    probe = TransactionConfig(n_customers=n_cust, n_merchants=n_merch, days=7, seed=seed)
    per_day = probe.expected_rows() / probe.days
    score_days = max(2, int(rows / per_day) + 2)
    df = generate(TransactionConfig(n_customers=n_cust, n_merchants=n_merch, days=train_days + score_days,
                                    seed=seed))
    name = "data_scripts/make_transactions.py"
    keep = ["transaction_id", "timestamp", "source", "target", "amount", "label"]  # the model's inputs
    df = df[keep + (["typology"] if "typology" in df else [])]  # typology: for recall per fraud type only
    t0 = df["timestamp"].min().normalize()
    cut = t0 + pd.Timedelta(days=train_days)
    train = df[df["timestamp"] < cut].reset_index(drop=True)
    score = df[df["timestamp"] >= cut].iloc[:rows].reset_index(drop=True)
    if len(score) < rows:
        raise RuntimeError(f"the generator gave {len(score):,} rows after the training period, {rows:,} asked; "
                           "please report this")
    return train, score, name


def _labels(score):
    return score[["transaction_id", "label"] + (["typology"] if "typology" in score else [])]


def prepare(out: Path, rows: int, seed: int, overrides: list[str]) -> tuple[Path, Path, dict]:
    """Cached (model dir, scoring parquet, info) for these settings."""
    import pandas as pd

    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import temporal_split
    from fraud.stack.model import FraudModel
    from shared.config import load_config

    key = hashlib.sha1(json.dumps([rows, seed, sorted(overrides), GENERATOR_VERSION]).encode()).hexdigest()[:10]
    cache = out / f"cache-{key}"
    model_dir, data, labels = cache / "model", cache / "score.parquet", cache / "labels.parquet"
    info_path = cache / "info.json"
    if info_path.is_file() and (model_dir / "manifest.json").is_file() and data.is_file():
        if not labels.is_file() or "typology" not in pd.read_parquet(labels).columns:
            _, score, _ = _generate(seed, rows)  # caches from before these columns: same seed, same rows
            _labels(score).to_parquet(labels, index=False)
        return model_dir, data, json.loads(info_path.read_text())
    cache.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    train, score, generator = _generate(seed, rows)
    gen_s = time.perf_counter() - t
    score.drop(columns=["label", "typology"], errors="ignore").to_parquet(data, index=False)
    _labels(score).to_parquet(labels, index=False)
    cfg = load_config(FraudConfig, ROOT / "configs" / "fraud.yaml", [f"seed={seed}", *overrides])
    split = temporal_split(train, 0.75, 0.25)
    t = time.perf_counter()
    FraudModel(cfg).fit(split.train, split.val, progress=False).save(model_dir)
    info = {"generator": generator, "generate_s": round(gen_s, 1), "train_rows": len(train),
            "fit_s": round(time.perf_counter() - t, 1), "score_rows": len(score), "overrides": overrides,
            "score_period": [str(score["timestamp"].min()), str(score["timestamp"].max())]}
    info_path.write_text(json.dumps(info, indent=2))
    return model_dir, data, info


def demo(out: Path, seed: int) -> None:
    """A small trained model and a fresh later file (CSV, with 3 bad rows) for `make demo` (~20 s)."""
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import temporal_split
    from fraud.stack.model import FraudModel
    from shared.config import load_config

    out.mkdir(parents=True, exist_ok=True)
    train, new, generator = _generate(seed, 20_000, n_cust=2000, train_days=21)
    cfg = load_config(FraudConfig, ROOT / "configs" / "fraud.yaml", [f"seed={seed}", "gnn.epochs=4"])
    split = temporal_split(train, 0.75, 0.25)
    FraudModel(cfg).fit(split.train, split.val, progress=False).save(out / "model")
    new = new.drop(columns=["label"]).astype({"amount": object})
    new["timestamp"] = new["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    new.loc[10, "amount"] = -12.5  # a few rows a loader must refuse, to show the rejects file
    new.loc[20, "timestamp"] = "yesterday"
    new.loc[30, "transaction_id"] = new.loc[29, "transaction_id"]
    new.to_csv(out / "new.csv", index=False)
    print(f"data: {generator}\nmodel: {out / 'model'} ({len(train):,} training rows)\n"
          f"fresh file: {out / 'new.csv'} ({len(new):,} later rows, 3 of them bad on purpose)\n"
          f"next: fraud score --model {out / 'model'} --input {out / 'new.csv'} --output {out / 'scored.csv'} "
          "--show 5")


def child(model_dir: str, data: str, out: str, chunk_rows: int, reasons: str) -> dict:
    """One measured scoring run in this (fresh) process: end-to-end time, its parts, peak RSS."""
    from fraud.serve.scoring import ScoreOptions, score_file
    from fraud.stack.model import FraudModel

    t = time.perf_counter()
    model = FraudModel.load(model_dir)
    load_s = time.perf_counter() - t
    opts = ScoreOptions(chunk_rows=chunk_rows, reasons=reasons, progress=False)
    s = score_file(model, data, out, options=opts)
    predict_s = s.timings["predict_s"]
    quality = _quality(out, Path(data).with_name("labels.parquet"))  # after the clock: not part of scoring
    return {**quality, "reasons": reasons, "chunk_rows": chunk_rows, "rows": s.rows_read,
            "scored": s.scored, "flagged": s.flagged, "load_s": round(load_s, 2), "score_s": round(s.elapsed_s, 2),
            "rows_per_s": round(s.rows_per_s), "features_s": s.timings["features_s"],
            "reasons_s": s.timings["reasons_s"], "bare_predict_s": round(predict_s, 3),
            "bare_predict_rows_per_s": round(s.scored / predict_s) if predict_s else None,
            "ratio_to_bare_predict": round(s.elapsed_s / predict_s, 1) if predict_s else None,
            "io_validate_drift_s": round(s.elapsed_s - predict_s - s.timings["features_s"] - s.timings["reasons_s"], 2),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def _quality(scored: str | Path, labels: Path) -> dict:
    """PR-AUC of the scored file against the generator's labels, and recall / false-positive rate at the
    model's threshold (the flag), overall and per fraud typology: what a faster model configuration costs in
    detection, and of which fraud."""
    import pandas as pd
    from sklearn.metrics import average_precision_score

    out = pd.read_parquet(scored, columns=["transaction_id", "probability", "flag"])
    lab = pd.read_parquet(labels).set_index("transaction_id").reindex(out["transaction_id"])
    y, flag = lab["label"].to_numpy(), out["flag"].to_numpy(bool)
    q = {"pr_auc": round(float(average_precision_score(y, out["probability"])), 4),
         "recall_at_thr": round(float(flag[y == 1].mean()), 4), "fpr_at_thr": round(float(flag[y == 0].mean()), 5)}
    if "typology" in lab:
        typ = lab["typology"].astype("string").fillna("").to_numpy()
        for name in sorted(set(typ[y == 1]) - {""}):
            q[f"recall_{name}"] = round(float(flag[(y == 1) & (typ == name)].mean()), 4)
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows in the scored file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="model config override for the trained model, e.g. graph.every=6h (repeatable)")
    ap.add_argument("--chunk-rows", type=int, action="append", default=None,
                    help="rows per chunk (repeatable: each value is measured with the first reason mode; "
                         "default 250000, fraud score's default)")
    ap.add_argument("--reasons", action="append", default=None,
                    help="reason modes to measure (fraud score --reasons): all, exact, approx, flagged, none "
                         "(repeatable; default: all, flagged, none)")
    ap.add_argument("--out", default=None, help="output folder (default runs/bench-scoring)")
    ap.add_argument("--demo", default=None, metavar="DIR",
                    help="only write a small trained model and a fresh later CSV to DIR (for make demo) and exit")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.demo:
        demo(Path(args.demo), args.seed)
        return
    if args.child:
        m, d, o, c, r = args.child
        print(json.dumps(child(m, d, o, int(c), r)))
        return

    from shared.paths import runs_dir
    from shared.reporting import text_table

    out = Path(args.out) if args.out else runs_dir() / "bench-scoring"
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model_dir, data, info = prepare(out, args.rows, args.seed, args.overrides)
    print(f"data + model ready in {time.perf_counter() - t:.1f} s: {info}", flush=True)
    runs = []
    modes = args.reasons or ["all", "flagged", "none"]
    chunks = args.chunk_rows or [250_000]
    variants = [(m, chunks[0]) for m in modes] + [(modes[0], c) for c in chunks[1:]]
    for mode, chunk in variants:
        cmd = [sys.executable, "-m", "benchmarks.bench_scoring", "--child", str(model_dir), str(data),
               str(out / f"scored-{mode}-{chunk}.parquet"), str(chunk), mode]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(text_table(runs[-1:]), flush=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "loadavg_1_5_15m": [round(v, 2) for v in os.getloadavg()],
              "shared_load": os.getloadavg()[1] > (os.cpu_count() or 1),
              "model": info, "runs": runs}
    name = "bench" + "".join(f"-{o}" for o in sorted(args.overrides)) + ".json"  # one file per model config
    (out / name).write_text(json.dumps(result, indent=2))
    print(text_table(runs, ["reasons", "chunk_rows", "rows", "rows_per_s", "score_s", "features_s", "reasons_s",
                            "bare_predict_s", "ratio_to_bare_predict", "peak_rss_gib", "pr_auc", "recall_at_thr",
                            "loadavg_1m"]))
    typologies = sorted({k for r in runs for k in r if k.startswith("recall_") and k != "recall_at_thr"})
    if typologies:
        print(text_table(runs, ["reasons", "recall_at_thr", *typologies]))
    print(f"written to {out / name}")


if __name__ == "__main__":
    main()
