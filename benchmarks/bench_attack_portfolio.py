"""An adaptive attacker: per payment, the worst case over several black-box searches (whole box; each control alone).

    python -m benchmarks.bench_attack_portfolio                          # seed 0, budget 2: full + timing
    python -m benchmarks.bench_attack_portfolio --seed 2 --presets full,amount,timing,split --uniform
    python -m benchmarks.bench_attack_portfolio --models runs/<convergence run>/models   # reuse trained models

A fraudster is not bound to one search: they can search the whole budget box, or only shift their payment
in time, and keep whichever edit gets through. This runs `blackbox_attack` once per threat preset (each
scaled to --budget: `full` is the benchmark's attack, `timing` the shift alone, ...) against the standard and
the adversarially trained stack (bench_robustness's models: same data, config and seed), and counts a
payment as caught only if every search leaves it flagged. Queries add up over the searches. Writes
<out>/portfolio.json and prints per-search and worst-case recall with the ratio of the two stacks.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="data, model and attack seed (as bench_robustness --seed)")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "fraud.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--presets", default="full,timing", help="comma-separated threat presets, one search each "
                                                             "(fraud/robust/threat.py: full, amount, timing, split)")
    ap.add_argument("--rounds", type=int, default=None, help="query rounds per search (default: AttackConfig's)")
    ap.add_argument("--uniform", action="store_true", help="uniform draws over each search's box (the black-box "
                                                           "search before 2026-12-02 15:36 UTC) instead of sparse")
    ap.add_argument("--models", default=None, help="a directory with standard/ and adversarial/ saved models "
                                                   "(e.g. a bench_attack_convergence run's <out>/models)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import numpy as np

    from benchmarks.bench_attack_convergence import bench_setup, fit_or_load
    from fraud.robust.attacks import AttackConfig, blackbox_attack
    from fraud.robust.threat import check_canonical, preset
    from shared.config import to_dict
    from shared.reporting import text_table, write_json

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for p in presets:
        preset(p)  # unknown names fail here, before any training
    cfg, split, out, result = bench_setup(args, "bench-attack-portfolio")
    acfg = AttackConfig(seed=args.seed)
    acfg.rounds = args.rounds or acfg.rounds
    acfg.sparse = not args.uniform
    result.update(presets=presets, models_from=args.models, attack_config=to_dict(acfg))
    models, result["fit_seconds"] = fit_or_load(cfg, split, args.models, out)
    test = split.test.sort_values("timestamp", kind="stable").reset_index(drop=True)  # the attacks' row order
    typ = test["typology"].astype(str).to_numpy() if "typology" in test.columns else None
    rows = []
    caught = {}
    for name, model in models.items():
        for p in presets:
            t = time.perf_counter()
            res = blackbox_attack(model, split.test, preset(p).scaled(args.budget), acfg)
            check_canonical(res.frame)
            kept = res.after > res.threshold
            caught.setdefault(name, []).append(kept)
            rows.append({"model": name, "search": p, "frauds": len(kept), "caught_before": int((res.before > res.threshold).sum()),
                         "caught_after": int(kept.sum()), "recall_after": float(kept.mean()),
                         "queries_total": int(res.queries.sum()), "seconds": round(time.perf_counter() - t, 1)})
            print(text_table([rows[-1]]), flush=True)
        every = np.logical_and.reduce(caught[name])
        rows.append({"model": name, "search": "worst case of " + "+".join(presets), "frauds": len(every),
                     "caught_before": rows[-1]["caught_before"], "caught_after": int(every.sum()),
                     "recall_after": float(every.mean()),
                     "queries_total": sum(r["queries_total"] for r in rows if r["model"] == name), "seconds": None})
        if typ is not None:  # caught / frauds per typology under the worst case
            t = typ[test["label"].to_numpy() == 1]
            result.setdefault("worst_case_by_typology", {})[name] = {
                k: [int(every[t == k].sum()), int((t == k).sum())] for k in sorted(set(t))}
    ratios = {}
    for r in rows:
        if r["model"] == "adversarial":
            std = next(s for s in rows if s["model"] == "standard" and s["search"] == r["search"])
            ratios[r["search"]] = r["caught_after"] / std["caught_after"] if std["caught_after"] else float("inf")
    result.update({"searches": rows, "ratio": ratios, "loadavg_end": os.getloadavg()})
    write_json(result, out / "portfolio.json")
    print(text_table(rows))
    for name, by in result.get("worst_case_by_typology", {}).items():
        print(f"{name}, worst case, caught / frauds per typology: {by}")
    print(text_table([{"search": k, "ratio adversarial / standard": v} for k, v in ratios.items()]))
    print(f"written to {out}/portfolio.json")


if __name__ == "__main__":
    main()
