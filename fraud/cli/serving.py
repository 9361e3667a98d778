"""fraud CLI commands: `score`, `serve` (batch scoring, drift, HTTP service)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraud.cli import app
from shared.cli_common import SeedOpt, friendly_errors

ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model directory written by `fraud train`.")]


def _col(name: str):
    return Annotated[str | None, typer.Option(f"--col-{name}", help=f"Input column holding the canonical "
                                              f"`{'transaction_id' if name == 'id' else name}` (default: the "
                                              "same name).")]


def _errors():
    from fraud.data.frame import DataError, SchemaError
    from fraud.serve.scoring import ScoreError
    from fraud.serve.store import StoreError

    return (DataError, SchemaError, ScoreError, StoreError)


def _quiet_threads() -> None:
    import os

    # Before torch/xgboost load OpenMP: spinning OpenMP threads slow XGBoost ~50x on a shared CPU.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@app.command(epilog=("Example: fraud score --model runs/demo/fraud/model --input "
                     "runs/demo/fraud/scoring/new.csv --output runs/scored.csv --show 5"))
def score(
    model: ModelOpt,
    input: Annotated[Path, typer.Option("--input", "-i", help="Transactions to score (CSV or Parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scored rows (.csv or .parquet): input id, "
                                         "probability, flag, reason_1..3, in input row order.")],
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Rows that could not be scored, with `row` "
                                                 "(1-based) and `reason` (default: OUTPUT's name + .rejects).")]
    = None,
    drift: Annotated[Path | None, typer.Option("--drift", help="drift.json to write: a test per input (KS or "
                                               "chi-square, PSI) vs the model's reference (validation period), "
                                               "unseen entities (default: OUTPUT's name + .drift.json).")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Column mapping preset of the input (paysim, "
                                               "sparkov, amlworld). Reads the "
                                               "whole file.")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML mapping of canonical names to input "
                                                 "columns, e.g. 'amount: amt'.")] = None,
    col_id: _col("id") = None,
    col_timestamp: _col("timestamp") = None,
    col_source: _col("source") = None,
    col_target: _col("target") = None,
    col_amount: _col("amount") = None,
    keep: Annotated[list[str] | None, typer.Option("--keep", help="Also copy this input column to the output "
                                                   "(repeatable).")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows per chunk: bounds memory; "
                                            "scores do not depend on it.")] = 250_000,
    reasons: Annotated[str, typer.Option("--reasons", help="Reason codes: 'flagged' (exact TreeSHAP for "
                                         "flagged rows, the ones a person reviews; others empty), 'all' (flagged "
                                         "rows exact, the Saabas approximation for the rest: ~1.5x the time), "
                                         "'exact' (TreeSHAP for every row, ~30x slower), 'approx' or "
                                         "'none'.")] = "flagged",
    sort: Annotated[bool, typer.Option("--sort", help="Accept a file not in timestamp order: read it whole into "
                                       "memory and score it in time order (output keeps file order).")] = False,
    drift_threshold: Annotated[float, typer.Option("--drift-threshold", help="KS distance (largest gap between "
                                                   "the reference's and the file's cumulative distributions) above "
                                                   "which a continuous input is reported as drifted.")] = 0.1,
    show: Annotated[int, typer.Option("--show", help="Print this many highest-scoring flagged rows with "
                                      "their reasons.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print one result line (rows scored, flagged, "
                                        "rejected; drift) and a progress bar only on a terminal.")] = False,
    state: Annotated[Path | None, typer.Option("--state", help="Score after a `fraud serve --state` store (read "
                                               "only): rows whose transaction_id it holds get the stored result "
                                               "(column `replay`), the same id with another payload is "
                                               "rejected.")] = None,
    max_amount: Annotated[float, typer.Option("--max-amount", help="Rows with a larger amount are rejected "
                                              "(integer cents beyond it would overflow).")] = 1e9,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Score on a Dask cluster: local:N (N "
                                                  "worker processes on this machine) or tcp://HOST:PORT of a "
                                                  "running dask scheduler. INPUT is then partitioned Parquet (a "
                                                  "folder of part files or a quoted glob), OUTPUT a folder with "
                                                  "one part per input part; same scores as one process "
                                                  "(docs/fraud-scale.md).")] = None,
    seed: SeedOpt = 0,
) -> None:
    """Score a transaction file with a trained model: probability, flag and top-3 reasons per row.

    Every input row lands in OUTPUT or in the rejects file (with its 1-based row number and reason); the
    summary shows rows read = scored + rejected, flagged and throughput. The file is streamed in chunks in
    event order (rows sorted by timestamp; --sort otherwise). Each run also writes drift.json and prints a
    warning per input that drifted from the model's reference (validation period): KS distance over
    --drift-threshold for continuous inputs, Cramer's V for categorical ones, or too many unseen entities.
    """
    _quiet_threads()
    if scheduler is not None:
        friendly_errors(*_errors(), *_scale_errors())(_score_on_cluster)(
            model, input, output, rejects, drift, preset, mapping,
            dict(transaction_id=col_id, timestamp=col_timestamp, source=col_source, target=col_target,
                 amount=col_amount), keep, reasons, drift_threshold, show, state, max_amount, scheduler, seed)
        return
    friendly_errors(*_errors())(_score)(model, input, output, rejects, drift, preset, mapping,
                                        dict(transaction_id=col_id, timestamp=col_timestamp, source=col_source,
                                             target=col_target, amount=col_amount),
                                        keep, chunk_rows, reasons, sort, drift_threshold, show,
                                        quiet, state, max_amount)


def _score(model_dir, input, output, rejects, drift, preset, mapping, cols, keep, chunk_rows, reasons,
           sort, drift_threshold, show, quiet, state=None, max_amount=1e9) -> None:
    import logging

    from fraud.serve.drift import DriftConfig, drift_warnings
    from fraud.serve.scoring import ScoreError, ScoreOptions, column_mapping, score_file
    from fraud.stack.model import FraudModel
    from shared.cli_common import show_progress

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if preset and (mapping or any(cols.values())):
        raise ScoreError("--preset cannot be combined with --mapping or --col-* flags; choose one")
    opts = ScoreOptions(chunk_rows=chunk_rows, reasons=reasons, keep=list(keep or []), max_amount=max_amount,
                        sort=sort, drift=DriftConfig(ks_threshold=drift_threshold), progress=show_progress(quiet))
    m = FraudModel.load(model_dir)
    store = None
    if state is not None:
        from fraud.serve.store import StateStore, model_identity

        store = StateStore(state, model_identity(m), read_only=True)
    summary = score_file(m, input, output, mapping=None if preset else column_mapping(mapping, **cols),
                         rejects=rejects, drift_path=drift, options=opts, preset=preset, state=store)
    drifted = _drift_count(summary.drift)
    if quiet:
        pct = 100 * summary.flagged / summary.scored if summary.scored else 0.0
        typer.echo(f"scored {summary.scored:,} of {summary.rows_read:,} rows -> {summary.output}: flagged "
                   f"{summary.flagged:,} ({pct:.2f} %), rejected {summary.rejected:,} -> {summary.rejects}"
                   + (f", replayed {summary.replayed:,} (from --state)" if summary.replayed else "")
                   + f"; drift: {drifted} -> {summary.drift_path}")
    else:
        for line in summary.lines():
            typer.echo(line)
        typer.echo(f"drift          {summary.drift_path} ({drifted})")
    warned = drift_warnings(summary.drift)
    shown = warned[:3] if quiet else warned
    for line in shown:
        typer.secho(line, fg=typer.colors.YELLOW, err=True)
    if len(warned) > len(shown):
        typer.secho(f"... and {len(warned) - len(shown)} more drift warning(s) in {summary.drift_path}",
                    fg=typer.colors.YELLOW, err=True)
    if show:
        _show_flagged(Path(output), show)


def _drift_count(drift: dict) -> str:
    """'N warning(s)': drifted inputs plus roles with too many unseen entities, as one process and the
    cluster both print it."""
    return f"{len(drift['drifted']) + len(drift['unseen_drifted'])} warning(s)"


def _scale_errors():
    from fraud.scale.cluster import SchedulerError

    return (SchedulerError,)


def _score_on_cluster(model_dir, input, output, rejects, drift, preset, mapping, cols, keep, reasons,
                      drift_threshold, show, state, max_amount, scheduler, seed) -> None:
    from fraud.scale.cluster import Scheduler, cluster
    from fraud.scale.file_scoring import score_parts
    from fraud.serve.drift import DriftConfig, drift_warnings
    from fraud.serve.scoring import ScoreError, ScoreOptions, column_mapping
    from fraud.stack.model import FraudModel
    from shared.seeding import seed_everything

    Scheduler.parse(scheduler)  # a bad address fails before the model loads
    if preset or state is not None:
        raise ScoreError("--scheduler does not combine with --preset or --state yet: map columns with "
                         "--mapping/--col-*, and score after a service's state without --scheduler")
    seed_everything(seed)  # scoring draws nothing; the seed is recorded for the same command line everywhere
    opts = ScoreOptions(chunk_rows=None, reasons=reasons, keep=list(keep or []), max_amount=max_amount,
                        drift=DriftConfig(ks_threshold=drift_threshold), progress=False)
    m = FraudModel.load(model_dir)
    with cluster(scheduler) as client:
        summary = score_parts(m, input, output, client, mapping=column_mapping(mapping, **cols),
                              rejects=rejects, drift_path=drift, options=opts)
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"drift          {summary.drift_path} ({_drift_count(summary.drift)})")
    for line in drift_warnings(summary.drift):
        typer.secho(line, fg=typer.colors.YELLOW, err=True)
    if show:
        _show_flagged(Path(output), show)


def _show_flagged(output: Path, n: int) -> None:
    """Print the n highest-probability flagged rows of a scored file or folder of parts (one streaming pass)."""
    import itertools

    import pandas as pd

    from shared.tabular import iter_chunks

    best = None
    files = sorted(output.glob("*.parquet")) if output.is_dir() else [output]
    for chunk in itertools.chain.from_iterable(iter_chunks(f, chunk_rows=200_000) for f in files):
        flagged = chunk[chunk["flag"].astype(str).str.lower() == "true"]
        best = flagged if best is None else pd.concat([best, flagged])
        best = best.nlargest(n, "probability")
    if best is None or not len(best):
        typer.echo("no flagged rows")
        return
    typer.echo(f"\ntop {len(best)} flagged rows:")
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.max_columns", 20):
        typer.echo(best.fillna("").to_string(index=False))


@app.command(epilog="Example: fraud serve --model runs/demo/fraud/model --port 8000")
def serve(
    model: ModelOpt,
    state: Annotated[Path | None, typer.Option("--state", help="SQLite state store (created when missing): every "
                                               "absorbed transaction and accepted label is written to it before "
                                               "the answer, and a restart resumes from it. Without it the service "
                                               "is read-only.")] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (127.0.0.1: this machine "
                                      "only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Largest batch POST /score accepts; "
                                           "larger ones get 413.")] = 1000,
    clock: Annotated[str, typer.Option("--clock", help="What 'the future' is measured from: 'wall' (this "
                                       "machine's UTC clock, live traffic) or 'replay' (the newest transaction "
                                       "absorbed, for replaying historical files).")] = "wall",
    max_skew: Annotated[str, typer.Option("--max-skew", help="Timestamps later than the clock plus this are "
                                          "refused (422).")] = "5m",
    lateness: Annotated[str, typer.Option("--lateness", help="Transactions up to this far behind the newest one "
                                          "absorbed are accepted and scored as of their own time; older ones "
                                          "get 422.")] = "1h",
    max_amount: Annotated[float, typer.Option("--max-amount", help="Amounts above this are refused "
                                              "(422).")] = 1e9,
    no_remember: Annotated[bool, typer.Option("--no-remember", help="Read-only: score every request against the "
                                              "state as it is, absorb nothing.")] = False,
    scoring_needs_key: Annotated[bool, typer.Option("--scoring-needs-key", help="Also require X-API-Key for "
                                                    "scoring without absorbing (default: open).")] = False,
    sync: Annotated[str, typer.Option("--sync", help="SQLite durability: 'full' (each commit on disk before the "
                                      "answer, power loss included) or 'normal' (survives a crash of the "
                                      "process, not of the machine; faster).")] = "full",
    remember_ids: Annotated[str, typer.Option("--remember-ids", help="How long (in event time, behind the "
                                              "newest transaction) absorbed transaction ids are remembered, so a "
                                              "retry gets its stored answer; at least --lateness. Older "
                                              "transactions are pruned from the store once checkpointed.")] = "7d",
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=0, help="Write the state's totals "
                                                  "to the store every this many absorbed transactions (then "
                                                  "prune it; restarts replay only what came after); 0: never, "
                                                  "the store keeps everything.")] = 100_000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level (debug, info, warning, "
                                           "error).")] = "info",
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="File holding the key that writes "
                                                      "(absorbing transactions, POST /feedback; header "
                                                      "X-API-Key) must send; default: the FRAUD_API_KEY "
                                                      "environment variable; without a key the service is "
                                                      "read-only.")] = None,
) -> None:
    """Serve the model over HTTP: POST /score, POST /feedback, GET /health, GET /model, OpenAPI docs at /docs.

    The model loads once at start-up and the state is restored from --state. With a state store and a key,
    the service absorbs every transaction it scores (requests with "remember": true and the X-API-Key
    header), so transactions sent in event order get the same scores as `fraud score` gives the same rows in
    a file; a transaction_id sent again is answered from the store (marked replay) and not absorbed twice.
    """
    _quiet_threads()
    friendly_errors(*_errors())(_serve)(model, host, port, max_batch, not no_remember, log_level, api_key_file,
                                        state, dict(clock=clock, max_skew=max_skew, lateness=lateness,
                                                    max_amount=max_amount), not scoring_needs_key, sync,
                                        dict(remember_ids=remember_ids, checkpoint_every=checkpoint_every))


def _api_key(path: Path | None) -> str | None:
    """The service key: from the file (first line, stripped) or FRAUD_API_KEY; never from the command line,
    where other users of the machine could read it in the process list."""
    import os

    if path is None:
        key = os.environ.get("FRAUD_API_KEY") or None
        if key is not None and len(key) < 16:
            raise typer.BadParameter("FRAUD_API_KEY must be at least 16 characters")
        return key
    try:
        key = path.read_text(encoding="utf-8").strip().splitlines()[0].strip() if path.stat().st_size else ""
    except OSError as exc:
        raise typer.BadParameter(f"cannot read --api-key-file {path}: {exc.strerror}") from None
    if len(key) < 16:
        raise typer.BadParameter(f"--api-key-file {path}: the key must be at least 16 characters")
    return key


def _serve(model_dir, host, port, max_batch, remember, log_level, api_key_file=None, state=None, rules=None,
           open_scoring=True, sync="full", prune=None) -> None:
    import uvicorn

    from fraud.serve.admission import AdmissionConfig
    from fraud.serve.pruning import PruneConfig
    from fraud.serve.service import create_app
    from fraud.serve.store import SYNC_MODES, StoreError
    from shared.runs import load_manifest

    load_manifest(model_dir)  # a clear error before the server starts, not a traceback inside uvicorn
    try:
        admission = AdmissionConfig(**(rules or {}))
        prune_cfg = PruneConfig(**(prune or {}))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if sync not in SYNC_MODES:
        raise typer.BadParameter(f"--sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
    if state is not None and not Path(state).parent.is_dir():
        raise StoreError(f"--state {state}: folder {Path(state).parent} does not exist")
    try:
        app = create_app(model_dir, max_batch=max_batch, remember=remember, api_key=_api_key(api_key_file),
                         state=state, admission=admission, open_scoring=open_scoring, sync=sync, prune=prune_cfg)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    uvicorn.run(app, host=host, port=port, log_level=log_level)
