"""Loading users' files into the canonical frame: mapping, row checks, rejects and a report whose counts add up."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from fraud.data.frame import SchemaError
from fraud.data.mapping import PRESETS, ColumnMapping, mapping_hint, matching_presets, resolve_mapping
from fraud.data.row_checks import SeenIds, check_rows, empty_rejects, finish_extras
from shared.tabular import TabularError, iter_chunks, sniff_delimiter, table_format, write_table

log = logging.getLogger("fraud.data.load")



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

        write_table(rejects, rejects_path)
    return Loaded(frame, rejects, report)


def _chunks(path: Path, m: ColumnMapping, chunk_rows: int):
    """Raw chunks with a RangeIndex continuing across chunks (0-based data row positions). CSV is read as
    text, so ids keep leading zeros and a bad value in one row cannot change a whole column's type."""

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
    fits = [p for p in matching_presets(columns) if p != name]
    if fits:
        fix = f"These columns fit a preset: add --preset {fits[0]}."
    else:
        roles = list(dict.fromkeys(r for r, _ in missing if not r.startswith("extra")))
        fix = (f"Choose the right --preset ({', '.join(PRESETS)}), or write a mapping file, e.g. mapping.yaml:\n"
               f"{mapping_hint(roles, columns)}\n"
               f"and pass --mapping mapping.yaml (fraud convert and fraud score also take --col-<name> COLUMN).")
    raise SchemaError(f"{path} lacks column(s) {', '.join(parts)} needed by the {name} mapping; it has columns "
                      f"{columns}. {fix}")
