"""fraud CLI command: `feedback` (confirmed labels into a trained model's label book)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraud.cli import app
from shared.cli_common import friendly_errors


@app.command(epilog=("Example: fraud feedback --model runs/demo/fraud/model --labels "
                     "runs/demo/fraud/scoring/new.labels.parquet --transactions "
                     "runs/demo/fraud/scoring/new.csv --dry-run"))
def feedback(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory written by `fraud train`.")],
    labels: Annotated[Path, typer.Option("--labels", "-l", help="Confirmed labels (CSV or Parquet): "
                                         "transaction_id, label (0/1), optionally labelled_at.")],
    transactions: Annotated[list[Path] | None, typer.Option(
        "--transactions", "-t", help="Transactions the labels refer to, e.g. the files you scored (repeatable; "
                                     "the project's own format or --preset).")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Column mapping preset of the transactions "
                                               "files (paysim, sparkov, amlworld).")] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Rejected label rows with `row` and "
                                                 "`reason` (default: LABELS' name + .rejects.csv).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report only; the model is not "
                                          "changed.")] = False,
) -> None:
    """Add confirmed fraud/legitimate labels to a trained model, so later `fraud score` and `fraud serve`
    use them (each from the time it became known: labelled_at, else the payment's time + labels.delay).
    Scoring a file again after its labels are in also checks its confirmed frauds for drift (the model's
    recall on them, what they look like) against the validation period."""
    friendly_errors(*_errors())(_feedback)(model, labels, transactions, preset, rejects, dry_run)


def _feedback(model, labels, transactions, preset, rejects, dry_run) -> None:
    import pandas as pd

    from fraud.data.load import load_transactions
    from fraud.stack.model import FraudModel
    from shared.tabular import read_table, write_table

    m = FraudModel.load(model)
    raw = read_table(labels)
    seen = []
    for path in transactions or []:
        df, _ = load_transactions(path, **({"preset": preset} if preset else {}))
        seen.append(df[["transaction_id", "timestamp", "source", "target"]])
    added, rej = m.add_labels(raw, pd.concat(seen, ignore_index=True) if seen else None, where=str(labels))
    rej_path = rejects or labels.with_name(labels.stem + ".rejects.csv")
    if len(rej):
        write_table(rej, rej_path)
    if len(added) and not dry_run:
        m.save_labels(model)
    verb = "would add" if dry_run else "added"
    typer.echo(f"{len(raw):,} label rows read: {verb} {len(added):,} ({int(added['label'].sum()):,} fraud), "
               f"rejected {len(rej):,}" + (f" -> {rej_path}" if len(rej) else "")
               + f"; label book of {model}: {len(m.labels_):,} labels" + (" (unchanged)" if dry_run else ""))


def _errors():
    from fraud.data.frame import DataError, SchemaError

    return (DataError, SchemaError)
