"""fraud CLI commands: `attack` and `robustness` (threat model, attacks, adversarial training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraud.cli import app
from shared.cli_common import ConfigOpt, SeedOpt, SetOpt, friendly_errors

ThreatOpt = Annotated[str, typer.Option("--threat", help="Threat model preset: amount, timing, split or full "
                                        "(fraud/robust/threat.py; full = all controls).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines.")]


def _errors():
    from fraud.data.frame import DataError, SchemaError

    return (DataError, SchemaError, ValueError)


@app.command(epilog=("Example: fraud attack --model runs/demo/fraud/model --data runs/demo/fraud/tx.parquet "
                     "--budget 1 --rounds 24"))
def attack(
    model: Annotated[Path, typer.Option("--model", "-m", help="A model directory from `fraud train`.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Labelled canonical transactions (CSV or Parquet); "
                                       "the rows with label 1 are the attackers' own payments.")],
    budget: Annotated[float, typer.Option("--budget", "-b", help="Budget multiplier of the threat model: 1 = "
                                          "the preset (full: amount +-30%, time +-6 h, up to 3 parts), 2 = twice "
                                          "that.")] = 1.0,
    threat: ThreatOpt = "full",
    method: Annotated[str, typer.Option("--attack", "-a", help="blackbox (query-based search on the full "
                                        "stack), pgd (white-box on GNN head + autoencoder) or random.")] = "blackbox",
    rounds: Annotated[int | None, typer.Option("--rounds", help="Black-box query rounds per fraudster (at most; "
                                               "default: AttackConfig's, 96).")] = None,
    sparse: Annotated[bool, typer.Option("--sparse/--uniform", help="Black-box: the first third of the rounds "
                                         "draws sparse edits (each control with probability 1/2: a shift "
                                         "alone, a split alone, ...; stronger on the benchmark) or uniform "
                                         "ones over the whole budget box.")] = True,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the attacked transactions to this "
                                             "CSV/Parquet file (valid canonical input).")] = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Attack a saved model: edit the fraudulent rows of DATA inside the threat model, re-run the real feature
    pipeline, and report recall at the model's threshold before and after, with the score queries used."""
    _setup(quiet)
    friendly_errors(*_errors())(_attack)(model, data, budget, threat, method, rounds, sparse, out, seed, quiet)


def _attack(model_dir, data, budget, threat, method, rounds, sparse, out, seed, quiet) -> None:
    from fraud.cli.model import _load
    from fraud.robust.attacks import AttackConfig
    from fraud.robust.report import run_attack
    from fraud.robust.threat import check_canonical, preset
    from fraud.stack.model import FraudModel
    from shared.reporting import text_table
    from shared.tabular import write_table

    model = FraudModel.load(model_dir)
    df = _load(data, None, None)
    tm = preset(threat).scaled(budget)
    acfg = AttackConfig(seed=seed, sparse=sparse)
    if rounds is not None:
        acfg.rounds = rounds
    res = run_attack(method, model, df, tm, acfg, progress=not quiet)
    check_canonical(res.frame)
    typer.echo(f"threat model {threat} x {budget:g}: amount +-{tm.amount_rel:.0%}, time +-{tm.shift_ns / 3.6e12:g} h, "
               f"up to {tm.max_splits} part(s)")
    s = res.summary()
    typer.echo(text_table([s], ["attack", "frauds", "recall_before", "recall_after", "queries_total",
                                "queries_per_fraud"]))
    if out is not None:
        write_table(res.frame, out)
        typer.echo(f"attacked transactions written to {out}")


@app.command(epilog=("Example: fraud robustness --data runs/demo/fraud/tx.parquet --budgets 1 --out "
                     "runs/my-robustness"))
def robustness(
    data: Annotated[Path, typer.Option("--data", "-d", help="Labelled transactions (CSV or Parquet).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report directory (default: a new "
                                             "runs/fraud-robustness-<time> directory).")] = None,
    budgets: Annotated[str, typer.Option("--budgets", help="Comma-separated budget multipliers.")] = "1,2",
    threat: ThreatOpt = "full",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Train the standard and the adversarially trained stack (adversarial.* config keys) on a temporal split
    of DATA, attack both on its test period at each budget, and write report.md + robustness.json: clean
    PR-AUC, recall at 1% FPR, and recall under each attack, plus what robustness costs on clean data."""
    _setup(quiet)
    friendly_errors(*_errors())(_robustness)(data, out, budgets, threat, config, set_, seed, quiet)


def _robustness(data, out, budgets, threat, config, set_, seed, quiet) -> None:
    from fraud.cli.model import _config, _load
    from fraud.robust.attacks import AttackConfig
    from fraud.robust.config import AdversarialConfig
    from fraud.robust.report import robustness_report, verdict_sentence
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.runs import new_run_dir

    cfg = _config(config, set_, seed)
    acfg = getattr(cfg, "adversarial", None) or AdversarialConfig()
    bs = tuple(float(b) for b in budgets.split(","))
    df = _load(data, None, None)
    out_dir = out or new_run_dir(runs_dir(), "fraud-robustness")
    s = robustness_report(df, cfg, acfg, out_dir, bs, threat, AttackConfig(seed=seed), progress=not quiet)
    typer.echo(text_table(s["table"]))
    typer.echo(verdict_sentence(s["verdict"]))
    typer.echo(f"report written to {out_dir}/report.md")


def _setup(quiet: bool) -> None:
    import logging
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
