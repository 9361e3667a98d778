"""fraud CLI commands: `make-data` (the transaction generator) and `convert` (users' files -> canonical)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraud.cli import app
from shared.cli_common import ConfigOpt, SeedOpt, SetOpt, friendly_errors

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (and no typology table).")]


def _col(name: str):
    canon = "transaction_id" if name == "id" else name
    return Annotated[str | None, typer.Option(f"--col-{name}", help=f"Input column holding the canonical "
                                              f"`{canon}` (default: the preset's, else the same name).")]


def _errors():
    from fraud.data.frame import SchemaError

    return (SchemaError,)


@app.command("make-data", epilog=("Example: fraud make-data --size demo --out runs/demo/fraud/tx.parquet "
                                  "--seed 0"))
def make_data(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .parquet or .csv (parent folders are "
                                      "created); the config is saved beside it as <name>.config.yaml.")],
    seed: SeedOpt = 0,
    size: Annotated[str | None, typer.Option("--size", help="Named size: tiny (300 customers, 14 days, ~5k "
                                             "rows), demo (2,000 / 30 d, ~70k), report (5,000 / 45 d, ~260k).")
                    ] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="About this many rows: the number of customers "
                                             "is solved from the other settings.")] = None,
    customers: Annotated[int | None, typer.Option("--customers", help="Number of customers (default 5000).")
                         ] = None,
    merchants: Annotated[int | None, typer.Option("--merchants", help="Number of merchants (default 300).")
                         ] = None,
    days: Annotated[int | None, typer.Option("--days", help="Length of the period in days (default 45).")] = None,
    fraud_rate: Annotated[float | None, typer.Option("--fraud-rate", help="Fraud rows / all rows, approximate "
                                                     "(default 0.015).")] = None,
    mix: Annotated[str | None, typer.Option("--mix", help="Typology weights, e.g. mule_ring=0.5,card_testing=0.5 "
                                            "(unlisted typologies get 0).")] = None,
    holdout: Annotated[str | None, typer.Option("--holdout", help="Typology that starts only after "
                                                "--holdout-after of the period (unseen in a training period).")
                       ] = None,
    holdout_after: Annotated[float | None, typer.Option("--holdout-after", help="Fraction of the period before "
                                                        "which the held-out typology never occurs (default 0.6).")
                             ] = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate labelled transactions with six fraud typologies (card_testing, account_takeover, mule_ring,
    laundering_cycle, colluding_merchant, compromised_merchant) in the canonical format; see docs/fraud-data.md."""
    friendly_errors(*_errors())(_make_data)(out, seed, size, rows, customers, merchants, days, fraud_rate, mix,
                                            holdout, holdout_after, config, overrides, quiet)


def _make_data(out, seed, size, rows, customers, merchants, days, fraud_rate, mix, holdout, holdout_after,
               config, overrides, quiet) -> None:
    import time

    from data_scripts.make_transactions import generate, summary, write
    from shared.config import save_config
    from shared.reporting import text_table
    from shared.tabular import table_format

    table_format(out)  # a bad suffix fails before any work
    cfg = generator_config(size, config, overrides, rows=rows, seed=seed, n_customers=customers,
                           n_merchants=merchants, days=days, fraud_rate=fraud_rate, mix=mix,
                           holdout_typology=holdout, holdout_after=holdout_after)
    t = time.perf_counter()
    df = generate(cfg, progress=not quiet)
    path = write(df, out)
    save_config(cfg, path.with_name(path.name.split(".")[0] + ".config.yaml"))
    if not quiet:
        typer.echo(text_table(summary(df), digits=4))
    typer.echo(f"{len(df):,} transactions ({int(df['label'].sum()):,} fraud) -> {path} "
               f"in {time.perf_counter() - t:.1f} s")


def generator_config(size: str | None, config: Path | None, overrides: list[str] | None, rows: int | None = None,
                     mix: str | None = None, **flags):
    """TransactionConfig from: defaults, then --size, then the YAML file, then --set, then explicit flags."""
    import dataclasses

    from data_scripts.make_transactions import DEFAULT_MIX, SIZES, TransactionConfig, parse_mix
    from shared.config import ConfigError, from_dict, parse_override, read_yaml

    if size is not None and size not in SIZES:
        raise ConfigError(f"unknown --size {size!r}; choose one of {', '.join(SIZES)}")
    data: dict = dict(SIZES[size]) if size else {}
    data.update(read_yaml(config) if config else {})
    for item in overrides or []:
        key, value = parse_override(item)
        if key.startswith("typology_mix."):
            data.setdefault("typology_mix", dict(DEFAULT_MIX))[key.split(".", 1)[1]] = value
        else:
            data[key] = value
    try:
        values = {k: v for k, v in flags.items() if v is not None}
        if mix:
            values["typology_mix"] = parse_mix(mix)
        cfg = dataclasses.replace(from_dict(TransactionConfig, data, source=str(config or "--set")), **values)
        if rows is not None:
            cfg = TransactionConfig.for_rows(rows, **{k: v for k, v in dataclasses.asdict(cfg).items()
                                                      if k != "n_customers"})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


@app.command(epilog="Example: fraud convert --input runs/demo/fraud/scoring/new.csv --out runs/new.parquet")
def convert(
    input: Annotated[Path, typer.Option("--input", "-i", help="A transactions file (CSV in any common "
                                        "delimiter, or Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Canonical output file (.parquet or .csv).")],
    preset: Annotated[str | None, typer.Option("--preset", help="Column mapping of the input: own (default), "
                                               "paysim, sparkov or amlworld.")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML column mapping (may start from "
                                                 "`preset:`); --col-* flags override it.")] = None,
    col_id: _col("id") = None,
    col_timestamp: _col("timestamp") = None,
    col_source: _col("source") = None,
    col_target: _col("target") = None,
    col_amount: _col("amount") = None,
    col_label: _col("label") = None,
    time_format: Annotated[str | None, typer.Option("--time-format", help="strftime format of text timestamps, "
                                                    "e.g. '%Y/%m/%d %H:%M' (default: ISO-8601 or Unix seconds).")
                           ] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Where rejected rows go (row, reason, "
                                                 "original values); default <out>.rejects.csv.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Map a transactions file onto the canonical schema: rejected rows go to a rejects file with a reason
    each; prints how many rows were read, kept and rejected."""
    friendly_errors(*_errors())(_convert)(input, out, preset, mapping, col_id, col_timestamp, col_source,
                                          col_target, col_amount, col_label, time_format, rejects, quiet)


def _convert(input, out, preset, mapping, col_id, col_timestamp, col_source, col_target, col_amount, col_label,
             time_format, rejects, quiet) -> None:
    from fraud.data.load import read_transactions
    from shared.config import read_yaml
    from shared.tabular import table_format, write_table

    table_format(out)
    flags = {"transaction_id": col_id, "timestamp": col_timestamp, "source": col_source, "target": col_target,
             "amount": col_amount, "label": col_label, "timestamp_format": time_format}
    flags = {k: v for k, v in flags.items() if v is not None}
    given = None
    if mapping is not None or flags:
        given = dict(read_yaml(mapping)) if mapping is not None else {}
        given.update(given.pop("columns", None) or {})
        given.update(flags)
    rejects = rejects or out.with_name(out.name.split(".")[0] + ".rejects.csv")
    loaded = read_transactions(input, preset, given, rejects_path=rejects, progress=not quiet)
    write_table(loaded.frame, out)
    for line in loaded.report.lines():
        typer.echo(line)
    typer.echo(f"canonical -> {out}; rejects -> {rejects}")
    if loaded.report.rejected:
        typer.secho(f"{loaded.report.rejected:,} row(s) rejected: see {rejects} (column 'reason')",
                    fg=typer.colors.YELLOW, err=True)
