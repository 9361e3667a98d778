"""Benchmark of fraud adversarial robustness: standard vs adversarially trained stack, attacked on one split.

    python -m benchmarks.bench_robustness                    # demo-size data, ~12 min on 2 busy cores
    python -m benchmarks.bench_robustness --short            # small data and fewer attack rounds, ~1 min
    python -m benchmarks.bench_robustness --ablate-defences  # also each defence alone (~+5 min)

Generates transactions (data_scripts.make_transactions), cuts one temporal split,
trains the standard stack and the adversarially trained one (configs/fraud.yaml + adversarial.* keys)
with the same seed, and attacks both on the test period with every attack at budgets 1 and 2 of the
`full` threat model. Writes runs/bench-robustness-<time>/robustness.json + report.md and prints the table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Defence variants for --ablate-defences: one switch off at a time (adversarial.* overrides).
DEFENCE_ABLATION = {
    "augment only": {"monotone": False, "gnn_adversarial": False},
    "no adversarial GNN": {"gnn_adversarial": False},
    "no monotone": {"monotone": False},
}


def parse_variants(items: list[str]) -> dict[str, dict]:
    """{'name': {adversarial key: value}} from --variant 'name:key=v,key=v' items."""
    import yaml

    out = {}
    for item in items:
        name, _, body = item.partition(":")
        if not name or not body:
            raise SystemExit(f"--variant {item!r} is not NAME:KEY=VALUE[,KEY=VALUE]")
        kv = [p.split("=", 1) for p in body.split(";" if ";" in body else ",")]
        out[name] = {k.strip(): yaml.safe_load(v) for k, v in kv}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "fraud.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    ap.add_argument("--data", default=None, help="a canonical labelled file instead of generated data")
    ap.add_argument("--short", action="store_true", help="small data, fewer candidates and rounds (make demo)")
    ap.add_argument("--budgets", default="1,2")
    ap.add_argument("--ablate-defences", action="store_true", help="also train each defence variant")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=V[,KEY=V]",
                    help="also train an adversarial variant with these adversarial.* overrides, e.g. "
                         "'no robust:robust_features=false' (values parsed as YAML)")
    ap.add_argument("--attacks", default="random,pgd,blackbox", help="comma-separated subset of the attacks")
    ap.add_argument("--rounds", type=int, default=None,
                    help="black-box query rounds (default: AttackConfig's, 6 with --short)")
    ap.add_argument("--sparse-attack", action=argparse.BooleanOptionalAction, default=None,
                    help="black-box global rounds draw sparse edits (each control with probability 1/2); "
                         "default: AttackConfig's")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from dataclasses import replace

    from benchmarks.bench_fraud_ablation import generated
    from fraud.robust.attacks import AttackConfig
    from fraud.robust.defence import fit_adversarial
    from fraud.robust.report import robustness_table, verdict, verdict_sentence
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import temporal_split
    from fraud.stack.model import FraudModel
    from shared.config import load_config, to_dict
    from shared.paths import runs_dir
    from shared.reporting import markdown_table, text_table, write_json
    from shared.runs import new_run_dir

    overrides = list(args.overrides)
    if args.short:
        overrides = ["gnn.epochs=4", "adversarial.candidates=3", "adversarial.rounds=2", *overrides]
    cfg = load_config(FraudConfig, args.config, overrides)
    cfg.seed = args.seed
    budgets = tuple(float(b) for b in args.budgets.split(","))
    out = Path(args.out) if args.out else new_run_dir(runs_dir(), "bench-robustness")
    t = time.perf_counter()
    if args.data:
        from fraud.data.load import load_transactions

        df, source = load_transactions(Path(args.data))[0], args.data
    elif args.short:
        from data_scripts.make_transactions import TransactionConfig
        from data_scripts.make_transactions import generate as gen3

        df = gen3(TransactionConfig(n_customers=1000, n_merchants=80, days=20, seed=args.seed))
        source = "data_scripts/make_transactions.py (short)"
    else:
        df, source = generated("demo", args.seed)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg_start": os.getloadavg(),
              "git_commit": commit,
              "cpus": os.cpu_count(), "seed": args.seed, "data": source, "rows": len(df),
              "generate_seconds": round(time.perf_counter() - t, 1), "config": to_dict(cfg)}
    print(f"{len(df)} transactions from {source}")
    split = temporal_split(df, cfg.split.train, cfg.split.val)
    result["split"] = split.summary()
    timings = {}
    t = time.perf_counter()
    models = {"standard": FraudModel(cfg).fit(split.train, split.val, progress=False)}
    timings["standard"] = round(time.perf_counter() - t, 1)
    variants = dict(DEFENCE_ABLATION) if args.ablate_defences else {}
    variants.update(parse_variants(args.variant))
    variants["adversarial"] = {}
    for name, change in variants.items():
        t = time.perf_counter()
        acfg = replace(cfg.adversarial, enabled=True, **change)
        models[name] = fit_adversarial(split.train, split.val, replace(cfg, adversarial=acfg), acfg, progress=False)
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"trained {name} in {timings[name]} s")
    result["fit_seconds"] = timings
    result["adversarial_fit"] = {k: m.fit_info_.get("adversarial") for k, m in models.items() if k != "standard"}
    for k, info in result["adversarial_fit"].items():
        if info and info.get("trials"):
            print(f"{k}: {info['augmented_rows']} augmented rows")
            print(text_table(info["trials"]))
    t = time.perf_counter()
    rounds = args.rounds or (6 if args.short else AttackConfig().rounds)
    attack_cfg = AttackConfig(seed=args.seed, rounds=rounds)
    if args.sparse_attack is not None:
        attack_cfg.sparse = args.sparse_attack
    attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
    wide, long = robustness_table(models, split.test, budgets, "full", attacks=attacks, cfg=attack_cfg)
    result["attack_seconds"] = round(time.perf_counter() - t, 1)
    v = verdict(wide, max(budgets), attack="blackbox" if "blackbox" in attacks else attacks[-1])
    result.update({"table": wide, "attacks": long, "verdict": v, "attack_config": to_dict(attack_cfg),
                   "loadavg_end": os.getloadavg()})
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "robustness.json")
    cols = ["model", "pr_auc", "recall_at_1pct_fpr", "recall_at_threshold",
            *[f"{a}@{b:g}" for b in budgets for a in attacks]]
    (out / "report.md").write_text("\n".join([
        "# Fraud robustness benchmark", "", f"{result['date']}, {source}, {len(df)} rows, seed {args.seed}.", "",
        markdown_table(wide, cols), "", markdown_table(long), "", verdict_sentence(v), ""]), encoding="utf-8")
    print(text_table(wide, cols))
    print(text_table(long))
    print(verdict_sentence(v))
    print(f"fit {timings} s, attacks {result['attack_seconds']} s; written to {out}/robustness.json")


if __name__ == "__main__":
    main()
