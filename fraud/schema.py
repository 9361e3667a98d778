"""The fraud app's one data type, the canonical transactions frame, and loaders that map users' files onto it.

    df, rejects = load_transactions("paysim.csv", preset="paysim")       # canonical frame + rejected rows
    df, rejects = load_transactions("tx.csv", mapping={"source": "payer", "amount": "amt"})
    validate(df)                                                          # raises SchemaError if not canonical

Canonical frame (sorted by time, ties in file order):

| column | dtype | meaning |
|---|---|---|
| transaction_id | string, unique | the file's id column, or the 1-based data row number when it has none |
| timestamp | datetime64[ns, UTC] | naive times are taken as UTC |
| source, target | string | payer and payee entity (card, account, merchant); composite keys joined with ':' |
| amount | float64, finite, >= 0 | in the file's currency |
| label | int8 0/1 (optional) | 1 = fraud |
| typology | string (optional) | fraud kind, "" for benign |
| extra columns | as read | carried through unchanged (`ColumnMapping.extra`) |

Presets (`PRESETS`) map the public data sets users bring: `paysim`, `sparkov`, `amlworld`, and `own` (the
canonical names, what `fraud make-data` writes). A mapping can also come from a dict, from `--col-*` flags or
from a YAML file (`preset: paysim` to start from a preset, then any `ColumnMapping` field, column names either
at the top level or under `columns:`).

Bad rows never disappear: each goes to the rejects frame with `row` (1-based data row number: the first row
after a CSV header is 1), `reason` (every problem of that row, '; '-separated, wording shared with
`fraud score`) and the row's original values as text. rows read = kept + rejected, always.
Whole-file problems (missing columns, no data rows, unreadable file) raise `SchemaError`/`TabularError` naming
the file and the fix.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("fraud.schema")
CANONICAL = ("transaction_id", "timestamp", "source", "target", "amount")
OPTIONAL = ("label", "typology")
TYPOLOGIES = ("card_testing", "account_takeover", "mule_ring", "laundering_cycle", "colluding_merchant")
TIME_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1, "m": 60 * 10**9, "h": 3600 * 10**9,
              "d": 86400 * 10**9}


class SchemaError(ValueError):
    """A file or frame that does not fit the canonical schema; the message says where and how to fix it."""


@dataclass
class ColumnMapping:
    """Where each canonical field comes from in an input file (column names as the file spells them)."""

    transaction_id: str | None = "transaction_id"  # None: the 1-based data row number becomes the id
    timestamp: str = "timestamp"
    source: list[str] = field(default_factory=lambda: ["source"])  # several columns are joined with ':'
    target: list[str] = field(default_factory=lambda: ["target"])
    amount: str = "amount"
    label: str | None = None
    typology: str | None = None
    extra: list[str] = field(default_factory=list)  # carried through; "*" = every column not mapped above
    optional: list[str] = field(default_factory=list)  # label/typology/extra columns taken only when present
    timestamp_format: str | None = None  # strftime format, e.g. '%Y/%m/%d %H:%M'; None: ISO-8601 or numbers
    timestamp_unit: str = "s"  # unit of numeric timestamps: s, ms, us, ns, m, h, d
    origin: str = "1970-01-01"  # time zero of numeric timestamps (UTC)
    delimiter: str | None = None  # CSV delimiter; None: sniffed

    def __post_init__(self):
        for role in ("source", "target"):
            v = getattr(self, role)
            setattr(self, role, [v] if isinstance(v, str) else list(v))
            if not getattr(self, role):
                raise SchemaError(f"mapping: {role} needs at least one column")
        if self.timestamp_unit not in TIME_UNITS:
            raise SchemaError(f"mapping: timestamp_unit {self.timestamp_unit!r} is not one of {', '.join(TIME_UNITS)}")
        try:
            pd.Timestamp(self.origin)
        except ValueError as exc:
            raise SchemaError(f"mapping: origin {self.origin!r} is not a date ({exc})") from None

    def required(self) -> dict[str, list[str]]:
        """Canonical role -> the input columns it needs (roles in `optional` excluded)."""
        need = {"timestamp": [self.timestamp], "source": self.source, "target": self.target, "amount": [self.amount]}
        if self.transaction_id:
            need["transaction_id"] = [self.transaction_id]
        for role in ("label", "typology"):
            if getattr(self, role) and getattr(self, role) not in self.optional:
                need[role] = [getattr(self, role)]
        for c in self.extra:
            if c != "*" and c not in self.optional:
                need[f"extra {c!r}"] = [c]
        return need

    def used(self) -> set[str]:
        cols = {self.timestamp, self.amount, *self.source, *self.target}
        return cols | {c for c in (self.transaction_id, self.label, self.typology) if c}


PRESETS: dict[str, ColumnMapping] = {
    # The project's own format (what `fraud make-data` writes); label, typology and extras when present.
    "own": ColumnMapping(label="label", typology="typology", extra=["*"], optional=["label", "typology"]),
    # PaySim mobile-money simulator: `step` is the hour of a 30-day simulation (no calendar, no ids); step 1
    # becomes 2024-01-01 00:00 UTC, step s that plus s - 1 hours.
    "paysim": ColumnMapping(
        transaction_id=None, timestamp="step", timestamp_unit="h", origin="2023-12-31 23:00", source=["nameOrig"],
        target=["nameDest"], amount="amount", label="isFraud",
        extra=["type", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest", "isFlaggedFraud"],
        optional=["isFraud", "type", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest",
                  "isFlaggedFraud"]),
    # Sparkov credit-card simulator (Kaggle 'fraudTrain'/'fraudTest' layout; `|` or `,` separated).
    "sparkov": ColumnMapping(
        transaction_id="trans_num", timestamp="unix_time", timestamp_unit="s", source=["cc_num"],
        target=["merchant"], amount="amt", label="is_fraud",
        extra=["category", "city_pop", "lat", "long", "merch_lat", "merch_long"],
        optional=["is_fraud", "category", "city_pop", "lat", "long", "merch_lat", "merch_long"]),
    # IBM AMLworld (HI/LI-Small..Large_Trans.csv): accounts are unique per bank, so entities are bank:account;
    # the header has `Account` twice (sender, then receiver: pandas reads the second as `Account.1`).
    "amlworld": ColumnMapping(
        transaction_id=None, timestamp="Timestamp", timestamp_format="%Y/%m/%d %H:%M",
        source=["From Bank", "Account"], target=["To Bank", "Account.1"], amount="Amount Paid",
        label="Is Laundering",
        extra=["Payment Currency", "Amount Received", "Receiving Currency", "Payment Format"],
        optional=["Is Laundering", "Payment Currency", "Amount Received", "Receiving Currency",
                  "Payment Format"]),
}


def resolve_mapping(preset: str | None = None, mapping: ColumnMapping | dict | str | Path | None = None,
                    ) -> ColumnMapping:
    """The mapping to use: a preset (default `own`), with a dict / YAML file / ColumnMapping on top."""
    if isinstance(mapping, ColumnMapping):
        if preset:
            raise SchemaError("give either a preset or a ColumnMapping, not both")
        return mapping
    values: dict = {}
    where = "mapping"
    if isinstance(mapping, (str, Path)):
        from shared.config import read_yaml

        where = str(mapping)
        values = dict(read_yaml(mapping))
    elif mapping:
        values = dict(mapping)
    inner = values.pop("columns", None) or {}
    if not isinstance(inner, dict):
        raise SchemaError(f"{where}: 'columns' must map canonical names to input columns, e.g. 'amount: amt'")
    values.update(inner)
    named = values.pop("preset", None)
    if preset and named and named != preset:
        raise SchemaError(f"{where} names preset {named!r} but --preset {preset} was given; choose one")
    name = named or preset or "own"
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=1)
        raise SchemaError(f"unknown preset {name!r}{'; did you mean ' + repr(close[0]) + '?' if close else ''} "
                          f"Known presets: {', '.join(PRESETS)}")
    if "id" in values:  # the --col-id spelling
        values["transaction_id"] = values.pop("id")
    known = {f.name for f in fields(ColumnMapping)}
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise SchemaError(f"{where}: unknown mapping key {key!r}{'; did you mean ' + repr(close[0]) + '?' if close else ''}"
                              f" Valid keys: {', '.join(sorted(known))}")
    base = PRESETS[name]
    # A column the user names explicitly must exist, even where the preset would allow it to be absent.
    optional = [c for c in base.optional if c not in {str(v) for v in values.values() if isinstance(v, str)}]
    return replace(base, **values, optional=values.get("optional", optional))


# ---- loading ----------------------------------------------------------------------------------------------
@dataclass
class LoadReport:
    """What a load did: rows read = kept + rejected, and how often each problem occurred."""

    path: str
    preset: str
    rows_read: int = 0
    kept: int = 0
    rejected: int = 0
    problems: dict[str, int] = field(default_factory=dict)  # reason (without values) -> rows

    def lines(self) -> list[str]:
        out = [f"rows read  {self.rows_read:>12,}  ({self.path}, mapping {self.preset})",
               f"kept       {self.kept:>12,}", f"rejected   {self.rejected:>12,}"]
        out += [f"  {n:>10,}  {why}" for why, n in sorted(self.problems.items(), key=lambda kv: -kv[1])]
        return out


@dataclass
class Loaded:
    frame: pd.DataFrame
    rejects: pd.DataFrame
    report: LoadReport


def load_transactions(path: str | Path, preset: str | None = None,
                      mapping: ColumnMapping | dict | str | Path | None = None, *, sort: bool = True,
                      rejects_path: str | Path | None = None, chunk_rows: int = 500_000,
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(canonical frame, rejects) of the CSV/Parquet file at `path`; see the module docstring. The summary
    is logged (and written beside the rejects when `rejects_path` is given); `read_transactions` returns it."""
    loaded = read_transactions(path, preset, mapping, sort=sort, rejects_path=rejects_path, chunk_rows=chunk_rows)
    for line in loaded.report.lines():
        log.info(line)
    return loaded.frame, loaded.rejects


def read_transactions(path: str | Path, preset: str | None = None,
                      mapping: ColumnMapping | dict | str | Path | None = None, *, sort: bool = True,
                      rejects_path: str | Path | None = None, chunk_rows: int = 500_000,
                      progress: bool = False) -> Loaded:
    """Like `load_transactions`, returning the frame, the rejects and the `LoadReport` together
    (`progress`: a tqdm bar counting rows)."""
    from tqdm.auto import tqdm

    from fraud.row_checks import SeenIds, check_rows, empty_rejects, finish_extras

    path = Path(path)
    m = resolve_mapping(preset, mapping)
    name = preset or (mapping.get("preset") if isinstance(mapping, dict) else None) or (
        "custom" if mapping is not None else "own")
    report = LoadReport(str(path), name)
    seen = SeenIds()
    kept, rejected = [], []
    columns: list[str] | None = None
    with tqdm(unit="rows", desc=f"loading {path.name}", disable=not progress) as bar:
        for raw in _chunks(path, m, chunk_rows):
            if columns is None:
                columns = [str(c) for c in raw.columns]
                _check_columns(path, m, columns, name)
            canon, rej = check_rows(raw, m, seen, columns)
            report.rows_read += len(raw)
            kept.append(canon)
            if len(rej):
                rejected.append(rej)
            bar.update(len(raw))
    if not report.rows_read:
        raise SchemaError(f"{path} has a header but no data rows; nothing to load (check that the right file "
                          "was exported)")
    frame = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True)
    frame = finish_extras(frame)
    if sort and not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    rejects = pd.concat(rejected, ignore_index=True) if rejected else empty_rejects(columns or [])
    report.kept, report.rejected = len(frame), len(rejects)
    for reason in rejects["reason"].tolist():
        for part in reason.split("; "):
            key = part.split(" (value")[0]
            report.problems[key] = report.problems.get(key, 0) + 1
    if report.rows_read != report.kept + report.rejected:
        raise AssertionError(f"row accounting broke ({report}); please report this")
    if rejects_path is not None:
        from shared.tabular import write_table

        write_table(rejects, rejects_path)
    return Loaded(frame, rejects, report)


def _chunks(path: Path, m: ColumnMapping, chunk_rows: int):
    """Raw chunks with a RangeIndex continuing across chunks (0-based data row positions). CSV is read as
    text, so ids keep leading zeros and a bad value in one row cannot change a whole column's type."""
    from shared.tabular import TabularError, iter_chunks, sniff_delimiter, table_format

    if table_format(path) == "parquet":
        yield from iter_chunks(path, chunk_rows=chunk_rows)
        return
    sep = m.delimiter or sniff_delimiter(path)
    try:
        reader = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                             chunksize=chunk_rows)
        yield from reader
    except pd.errors.EmptyDataError as exc:
        raise TabularError(f"{path} has no header line ({exc}); expected a header line and rows") from exc
    except pd.errors.ParserError as exc:
        raise TabularError(f"{path} could not be parsed as CSV with delimiter {sep!r}: {exc}. Check for "
                           "unquoted delimiters inside fields, or set the delimiter in the mapping.") from exc
    except UnicodeDecodeError as exc:
        raise TabularError(f"{path} is not UTF-8 text ({exc}); re-save it as UTF-8") from exc


def _check_columns(path: Path, m: ColumnMapping, columns: list[str], name: str) -> None:
    missing = [(role, c) for role, cols in m.required().items() for c in cols if c not in columns]
    if not missing:
        return
    parts = []
    for role, c in missing:
        close = difflib.get_close_matches(c, columns, n=1)
        parts.append(f"{c!r} ({role}{', did you mean ' + repr(close[0]) + '?' if close else ''})")
    raise SchemaError(
        f"{path} lacks column(s) {', '.join(parts)} needed by the {name} mapping; it has columns "
        f"{columns}. Choose the right --preset ({', '.join(PRESETS)}) or map the columns with "
        "--col-<name> COLUMN / --mapping FILE.yaml")


# ---- validation of frames already in memory ------------------------------------------------------------
def validate(df: pd.DataFrame, where: str = "transactions", require_sorted: bool = False) -> None:
    """Raise SchemaError listing every way `df` is not a canonical frame (columns, dtypes, unique ids,
    finite non-negative amounts, UTC timestamps, 0/1 labels; time order only with `require_sorted`)."""
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{where} must be a pandas DataFrame, got {type(df).__name__}")
    problems = []
    missing = [c for c in CANONICAL if c not in df.columns]
    if missing:
        problems.append(f"lacks column(s) {', '.join(missing)} (it has {', '.join(map(str, df.columns))})")
    for c in ("transaction_id", "source", "target"):
        if c in df.columns:
            col = df[c]
            if not isinstance(col.dtype, pd.StringDtype):
                problems.append(f"{c} must have the pandas string dtype, not {col.dtype} (use .astype('string'))")
            empty = col.isna() | (col.astype("string") == "").fillna(True)
            if empty.any():
                problems.append(f"{c} is missing in {int(empty.sum()):,} row(s), first at position "
                                f"{int(np.flatnonzero(empty.to_numpy())[0]):,}")
    if "transaction_id" in df.columns:
        dup = df["transaction_id"].duplicated(keep=False).to_numpy()
        if dup.any():
            pos = np.flatnonzero(dup)
            first = df["transaction_id"].iloc[pos[0]]
            again = pos[df["transaction_id"].iloc[pos].to_numpy() == first]
            problems.append(f"duplicate transaction_id {first!r} at positions {again[0]:,} and {again[1]:,} "
                            f"({int(df['transaction_id'].duplicated().sum()):,} duplicate(s) in all)")
    if "timestamp" in df.columns:
        ts = df["timestamp"]
        if not (isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dtype.tz) == "UTC"):
            problems.append(f"timestamp must be a UTC datetime column (datetime64[ns, UTC]), not {ts.dtype}")
        elif ts.isna().any():
            problems.append(f"timestamp is missing in {int(ts.isna().sum()):,} row(s)")
        elif require_sorted and not ts.is_monotonic_increasing:
            pos = int(np.flatnonzero(np.diff(ts.dt.as_unit("ns").astype("int64").to_numpy()) < 0)[0]) + 1
            problems.append(f"rows are not in time order: position {pos:,} ({ts.iloc[pos]}) is earlier than the "
                            f"row before it ({ts.iloc[pos - 1]}); sort by timestamp")
    if "amount" in df.columns:
        a = df["amount"]
        if str(a.dtype) != "float64":
            problems.append(f"amount must be float64, not {a.dtype}")
        else:
            v = a.to_numpy()
            for mask, what in ((~np.isfinite(v), "not finite (NaN or infinite)"), (v < 0, "negative")):
                if mask.any():
                    p = int(np.flatnonzero(mask)[0])
                    problems.append(f"amount is {what} in {int(mask.sum()):,} row(s), first at position {p:,} "
                                    f"(value {v[p]!r})")
    if "label" in df.columns:
        lab = df["label"]
        if not (pd.api.types.is_integer_dtype(lab.dtype) or pd.api.types.is_bool_dtype(lab.dtype)) or \
                lab.isna().any() or not lab.isin([0, 1]).all():
            problems.append(f"label must be integers 0/1 without missing values (dtype {lab.dtype}, values "
                            f"{sorted(map(str, pd.unique(lab.astype('string').fillna('<NA>'))))[:5]})")
    if "typology" in df.columns:
        typ = df["typology"]
        if not (pd.api.types.is_string_dtype(typ.dtype) or pd.api.types.is_object_dtype(typ.dtype)):
            problems.append(f"typology must be text ('' for benign), not {typ.dtype}")
        elif "label" in df.columns and pd.api.types.is_integer_dtype(df["label"].dtype):
            named = (typ.astype("string").fillna("") != "").to_numpy()
            clash = named & (df["label"].to_numpy() == 0)
            if clash.any():
                problems.append(f"{int(clash.sum()):,} row(s) with label 0 name a typology (first at position "
                                f"{int(np.flatnonzero(clash)[0]):,}); benign rows have typology ''")
    if problems:
        raise SchemaError(f"{where} is not a canonical transactions frame: " + "; ".join(problems) +
                          ". Files are converted by fraud.schema.load_transactions (or `fraud convert`).")
