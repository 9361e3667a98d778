"""Where attacked recall goes: per-typology recall of the standard and the adversarial stack, clean and under
the random and black-box attacks at one budget (the table `bench_robustness` does not break down).

    python -m benchmarks.bench_robustness_typology                 # demo-size data, seed 0, budget 2

Same data, split, config and attack settings as `benchmarks/bench_robustness.py`; writes typology.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "fraud.yaml"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from dataclasses import replace

    from benchmarks.bench_fraud_ablation import generated
    from fraud.robust.attacks import AttackConfig, blackbox_attack, random_attack
    from fraud.robust.defence import fit_adversarial
    from fraud.robust.threat import preset
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import temporal_split
    from fraud.stack.model import FraudModel
    from shared.config import load_config
    from shared.paths import runs_dir
    from shared.runs import new_run_dir

    cfg = load_config(FraudConfig, args.config, [])
    cfg.seed = args.seed
    df, source = generated("demo", args.seed)
    split = temporal_split(df, cfg.split.train, cfg.split.val)
    test = split.test.sort_values("timestamp", kind="stable").reset_index(drop=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg(), "data": source,
           "seed": args.seed, "budget": args.budget}
    models = {"standard": FraudModel(cfg).fit(split.train, split.val, progress=False)}
    acfg = replace(cfg.adversarial, enabled=True)
    models["adversarial"] = fit_adversarial(split.train, split.val, replace(cfg, adversarial=acfg), acfg,
                                            progress=False)
    tm = preset("full").scaled(args.budget)
    for name, model in models.items():
        for attack, fn in (("random", random_attack), ("blackbox", blackbox_attack)):
            res = fn(model, test, tm, AttackConfig(seed=args.seed))
            typ = test["typology"].to_numpy()[res.rows]
            row = {t: {"n": int((typ == t).sum()), "before": float((res.before[typ == t] > res.threshold).mean()),
                       "after": float((res.after[typ == t] > res.threshold).mean())} for t in sorted(set(typ))}
            out[f"{name} {attack}@{args.budget:g}"] = {"all": [res.recall_before, res.recall_after], **row}
            print(name, attack, json.dumps(row), flush=True)
    out["load_end"] = os.getloadavg()
    run = Path(args.out) if args.out else new_run_dir(runs_dir(), "bench-robustness-typology")
    run.mkdir(parents=True, exist_ok=True)
    (run / "typology.json").write_text(json.dumps(out, indent=1))
    print(f"written to {run}/typology.json")


if __name__ == "__main__":
    main()
