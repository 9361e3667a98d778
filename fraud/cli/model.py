"""fraud CLI commands: `train`, `evaluate` (the model stack and its ablation report)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fraud.cli import app
from shared.cli_common import QUIET_HELP, ConfigOpt, SeedOpt, SetOpt, friendly_errors, show_progress

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fraud.yaml"

DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Labelled transactions (CSV or Parquet).")]
PresetOpt = Annotated[str | None, typer.Option(
    "--preset", help="Column mapping preset of the input file (e.g. paysim, sparkov, amlworld); default: "
                     "the project's own canonical format.")]
MappingOpt = Annotated[Path | None, typer.Option("--mapping", help="YAML column mapping for the input file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]


def _config(config: Path | None, overrides: list[str] | None, seed: int):
    from fraud.stack.config import FraudConfig
    from shared.config import load_config

    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    cfg = load_config(FraudConfig, path, list(overrides or []))
    cfg.seed = seed
    return cfg


def _load(path: Path, preset: str | None, mapping: Path | None):
    """Canonical transactions frame from a file (fraud.data.load does mapping, validation and rejects)."""
    from fraud.data.load import load_transactions

    kwargs = {}
    if preset:
        kwargs["preset"] = preset
    if mapping:
        kwargs["mapping"] = mapping
    df, rejects = load_transactions(path, **kwargs)
    if len(rejects):
        typer.secho(f"{len(rejects)} rows of {path} were rejected (see the loader's summary); "
                    f"{len(df)} rows kept", fg=typer.colors.YELLOW, err=True)
    return df


def _errors():
    from fraud.data.frame import DataError, SchemaError

    return (DataError, SchemaError)


def _logging(quiet: bool) -> None:
    import os

    # Before torch/xgboost load OpenMP: spinning OpenMP threads slow XGBoost ~50x on a shared CPU.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")


@app.command(epilog="Example: fraud train --data runs/demo/fraud/tx.parquet --out runs/my-model --seed 0")
def train(
    data: DataOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model directory to write (default: a new "
                                             "runs/fraud-model-<time> directory).")] = None,
    preset: PresetOpt = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    adversarial: Annotated[bool, typer.Option("--adversarial", help="Turn on the defences of fraud/robust/defence.py "
                                              "(adversarial.* config keys): attacked-fraud augmentation for "
                                              "XGBoost, adversarial GNN training, monotone velocity.")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Compute the features (by entity and "
                                                  "by time range) and train the booster (xgboost.dask) on a "
                                                  "Dask cluster: local:N (N worker processes on this machine) "
                                                  "or tcp://HOST:PORT of a running dask scheduler; the GNN and "
                                                  "autoencoder still train in this process "
                                                  "(docs/fraud-scale.md).")] = None,
) -> None:
    """Train the fraud model stack (features + GNN + autoencoder + XGBoost) on a temporal split of DATA.

    The time span is cut into train < validation < test (split.train / split.val); the model is fitted on
    train, early-stopped and thresholded on validation, measured on test, and written as a model directory
    (manifest, booster.ubj, gnn.pt, autoencoder.pt, stored history) that `fraud evaluate/score/serve` load.
    """
    _logging(quiet)
    if scheduler is not None:
        from fraud.scale.cluster import SchedulerError, cluster

        if adversarial:
            raise typer.BadParameter("--adversarial does not combine with --scheduler yet (its refits run "
                                     "in one process); drop one of them")
        def on_cluster(*args) -> None:
            with cluster(scheduler) as client:
                _train(*args, client=client)

        friendly_errors(*_errors(), SchedulerError)(on_cluster)(data, out, preset, mapping, config, set_, seed,
                                                                quiet, adversarial)
        return
    friendly_errors(*_errors())(_train)(data, out, preset, mapping, config, set_, seed, quiet, adversarial)


def _train(data, out, preset, mapping, config, set_, seed, quiet, adversarial=False, client=None) -> None:
    import time

    from fraud.stack.evaluate import metrics, temporal_split
    from fraud.stack.model import FraudModel
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.run_log import chatter_to
    from shared.runs import fingerprint_data, new_run_dir

    cfg = _config(config, set_, seed)
    t0 = time.perf_counter()
    progress = show_progress(quiet)
    df = _load(data, preset, mapping)  # bad input fails here, before a run directory exists
    run_dir = Path(out or new_run_dir(runs_dir(), "fraud-model"))
    with chatter_to(run_dir / "log.txt" if quiet else None):
        split = temporal_split(df, cfg.split.train, cfg.split.val)
        typer.echo(text_table(split.summary(), ["split", "rows", "frauds", "start", "end"]))
        if adversarial or cfg.adversarial.enabled:  # fraud/robust/defence.py
            from fraud.robust.defence import fit_adversarial

            cfg.adversarial.enabled = True
            model = fit_adversarial(split.train, split.val, cfg, cfg.adversarial, progress=progress)
        else:
            fitter = features = None
            if client is not None:
                from fraud.scale.booster import dask_booster_fitter
                from fraud.scale.features import DaskFeatures

                fitter, features = dask_booster_fitter(client), DaskFeatures(client)
            model = FraudModel(cfg).fit(split.train, split.val, progress=progress, booster_fitter=fitter,
                                        features=features)
        with model.label_feed(split.test):  # confirmed labels arrive while the test period runs, as in production
            scores = model.score(split.test, history="stored", progress=progress)
        typ = split.test["typology"].to_numpy() if "typology" in split.test.columns else None
        m = metrics(split.test["label"].to_numpy(), scores["probability"].to_numpy(), model.threshold_, typ)
        model.save(run_dir, metrics={"test": m}, data=fingerprint_data(data) | {"rows": len(df)})
        head = {k: v for k, v in m.items() if k != "per_typology"}
        typer.echo(text_table([head], ["rows", "frauds", "pr_auc", "roc_auc", "recall_at_1pct_fpr",
                                       "precision_at_threshold", "recall_at_threshold"]))
        typer.echo(f"model written to {run_dir} ({time.perf_counter() - t0:.1f} s; fit timings "
                   f"{model.fit_info_['timings']})")
    if quiet:
        typer.echo(f"fraud model -> {run_dir}: test PR-AUC {m['pr_auc']:.3f}, recall {m['recall_at_1pct_fpr']:.3f} "
                   f"at 1% FPR, precision {m['precision_at_threshold']:.3f} / recall "
                   f"{m['recall_at_threshold']:.3f} at its threshold ({m['rows']:,} test rows, {m['frauds']:,} "
                   f"frauds; {time.perf_counter() - t0:.0f} s)")


@app.command(epilog=("Example: fraud evaluate --model runs/demo/fraud/model --data "
                     "runs/demo/fraud/tx.parquet --out runs/my-eval"))
def evaluate(
    data: DataOpt,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A model directory from `fraud train`; "
                                               "without it, the full ablation is trained and compared.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report directory (default: a new "
                                             "runs/fraud-eval-<time> directory).")] = None,
    preset: PresetOpt = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    robustness: Annotated[bool, typer.Option("--robustness", help="Also write the robustness table ("
                                             "fraud/robust/report.py): without --model the standard and the "
                                             "adversarially trained stack, with --model that model, each "
                                             "under every attack at budgets 1 and 2.")] = False,
) -> None:
    """Write report.md + metrics.json + pr_curve.png: a saved model on DATA, or the whole ablation.

    With --model: score DATA with that model (stored history when DATA is later than its training data,
    otherwise DATA's own earlier rows) and report PR-AUC, ROC-AUC, recall at 1% FPR, precision at the
    model's threshold and per-typology recall. Without --model: train IsolationForest, autoencoder, GNN and
    XGBoost variants (raw, + neighbour aggregates, + autoencoder, + GNN, full) on one temporal split of DATA
    and compare them on its test period.
    """
    _logging(quiet)
    friendly_errors(*_errors())(_evaluate)(data, model, out, preset, mapping, config, set_, seed, quiet, robustness)


def _evaluate(data, model_dir, out, preset, mapping, config, set_, seed, quiet, robustness=False) -> None:
    from shared.paths import runs_dir
    from shared.reporting import text_table
    from shared.run_log import chatter_to
    from shared.runs import new_run_dir

    progress = show_progress(quiet)
    df = _load(data, preset, mapping)
    out_dir = Path(out or new_run_dir(runs_dir(), "fraud-eval"))
    cols = ["variant", "pr_auc", "roc_auc", "recall_at_1pct_fpr", "precision_at_threshold", "recall_at_threshold"]
    with chatter_to(out_dir / "log.txt" if quiet else None):
        if model_dir is not None:
            from fraud.stack.evaluate import evaluate_model
            from fraud.stack.model import FraudModel

            if set_ or config:
                typer.secho("--config/--set are ignored with --model: the model runs with the config it was "
                            "trained with", fg=typer.colors.YELLOW, err=True)
            m = evaluate_model(FraudModel.load(model_dir), df, out_dir, progress=progress)
            typer.echo(m["note"])
            typer.echo(text_table([{"variant": "model", **m}], cols))
            line = (f"model {model_dir} on {data}: PR-AUC {m['pr_auc']:.3f}, recall {m['recall_at_1pct_fpr']:.3f} "
                    f"at 1% FPR ({m['note']})")
        else:
            from fraud.stack.ablation import headline, run_ablation

            cfg = _config(config, set_, seed)
            summary = run_ablation(df, cfg, out_dir, progress=progress)
            rows = [{"variant": n, **m} for n, m in summary["variants"].items()]
            typer.echo(text_table(rows, cols))
            typs = sorted({t for m in summary["variants"].values() for t in m.get("per_typology", {})})
            if typs:
                typer.echo("\nrecall at 1% FPR per typology (test):")
                typer.echo(text_table([{"variant": n, **{t: m["per_typology"].get(t, {}).get("recall_at_1pct_fpr")
                                                         for t in typs}} for n, m in summary["variants"].items()],
                                      ["variant", *typs], digits=3))
            line = f"ablation: {headline(summary)}"
        if robustness:
            from fraud.robust.report import robustness_cli

            robustness_cli(df, model_dir, _config(config, set_, seed), Path(out_dir) / "robustness", progress)
        typer.echo(f"report written to {out_dir}/report.md")
    if quiet:
        typer.echo(f"{line} -> {out_dir}/report.md")
