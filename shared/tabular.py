"""Read and write tables (CSV or Parquet) the same way everywhere, whole or in chunks.

CSV delimiters are sniffed from the first lines (`,` `;` `|` tab), so users' files open as they are.
`iter_chunks` streams files larger than memory: Parquet by row batches, CSV by pandas' chunked reader;
concatenating the chunks gives exactly what `read_table` gives. Every failure names the file and the fix.
`prefetch` (from `shared.concurrency`, importable from here too) reads the next chunk while this one is used.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from shared.concurrency import prefetch  # noqa: F401  (re-exported: chunked readers import it from here)

DELIMITERS = ",;|\t"
CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".psv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


class TabularError(ValueError):
    """A table file that cannot be read or written; the message names the file and how to fix it."""


def table_format(path: str | Path) -> str:
    """'csv' or 'parquet', from the file suffix (`.csv.gz` counts as CSV)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz"}:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES:
        return "parquet"
    if last in CSV_SUFFIXES:
        return "csv"
    raise TabularError(f"{p}: unknown table format {last or '(no suffix)'}; use .csv, .tsv, .txt or .parquet")


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise TabularError(f"{path} does not exist; check the path (relative paths start at {Path.cwd()})")
    if not path.is_file():
        raise TabularError(f"{path} is not a file")
    if path.stat().st_size == 0:
        raise TabularError(f"{path} is empty (0 bytes); expected a header line and rows")


def sniff_delimiter(path: str | Path, sample_bytes: int = 64 * 1024) -> str:
    """The delimiter of a CSV file, chosen among `,` `;` `|` tab from its first lines."""
    path = Path(path)
    _check_readable(path)
    opener = _text_opener(path)
    try:
        with opener() as f:
            sample = f.read(sample_bytes)
    except (UnicodeDecodeError, OSError) as exc:
        raise TabularError(f"{path} is not readable as UTF-8 text: {exc}") from exc
    lines = [ln for ln in sample.splitlines() if ln.strip()][:50]
    if not lines:
        raise TabularError(f"{path} has no non-blank lines; expected a header line and rows")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        # Sniffer gives up on single-column or quote-heavy files: take the delimiter the header uses most.
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] > 0 else ","


def _text_opener(path: Path):
    import gzip

    if path.suffix.lower() == ".gz":
        return lambda: gzip.open(path, "rt", encoding="utf-8")
    return lambda: open(path, encoding="utf-8", newline="")


def read_table(path: str | Path, columns: list[str] | None = None, delimiter: str | None = None) -> pd.DataFrame:
    """The whole table at `path` as a DataFrame (CSV with a sniffed delimiter, or Parquet)."""
    chunks = list(iter_chunks(path, chunk_rows=None, columns=columns, delimiter=delimiter))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def iter_chunks(path: str | Path, chunk_rows: int | None = 100_000, columns: list[str] | None = None,
                delimiter: str | None = None) -> Iterator[pd.DataFrame]:
    """Yield the table in DataFrames of at most `chunk_rows` rows (None: one frame with everything).

    Chunks keep the file's row order and carry a RangeIndex that continues across chunks, so a row's
    index is its 0-based position in the file (error messages report it as a 1-based row number).
    """
    path = Path(path)
    fmt = table_format(path)
    _check_readable(path)
    if fmt == "parquet":
        yield from _parquet_chunks(path, chunk_rows, columns)
    else:
        yield from _csv_chunks(path, chunk_rows, columns, delimiter)


def _parquet_chunks(path: Path, chunk_rows: int | None, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TabularError(f"{path} is not a readable Parquet file ({exc}); re-export it or pass a CSV") from exc
    _check_columns(path, pf.schema_arrow.names, columns)
    if chunk_rows is None:
        yield pf.read(columns=columns).to_pandas()
        return
    start = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
        df = batch.to_pandas()
        df.index = pd.RangeIndex(start, start + len(df))
        start += len(df)
        yield df
    if start == 0:
        yield pf.schema_arrow.empty_table().to_pandas()


def _csv_chunks(path: Path, chunk_rows: int | None, columns: list[str] | None,
                delimiter: str | None) -> Iterator[pd.DataFrame]:
    sep = delimiter or sniff_delimiter(path)
    try:
        header = pd.read_csv(path, sep=sep, nrows=0).columns.tolist()
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TabularError(f"{path} is not a readable CSV file: {exc}") from exc
    _check_columns(path, header, columns)
    try:
        reader = pd.read_csv(path, sep=sep, usecols=columns, chunksize=chunk_rows, low_memory=False)
        if chunk_rows is None:
            yield reader
            return
        yield from reader
    except pd.errors.ParserError as exc:
        raise TabularError(f"{path} could not be parsed as CSV with delimiter {sep!r}: {exc}. "
                           "Check for unquoted delimiters inside fields.") from exc
    except UnicodeDecodeError as exc:
        raise TabularError(f"{path} is not UTF-8 text ({exc}); re-save it as UTF-8") from exc


def _check_columns(path: Path, present: list[str], wanted: list[str] | None) -> None:
    if wanted:
        missing = [c for c in wanted if c not in present]
        if missing:
            raise TabularError(f"{path} has no column(s) {missing}; it has {present}")


def write_table(df: pd.DataFrame, path: str | Path, delimiter: str = ",") -> Path:
    """Write `df` as CSV or Parquet by the suffix of `path`, creating parent directories."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, sep=delimiter)
    return path


class TableWriter:
    """Append DataFrames chunk by chunk to one CSV or Parquet file (for streamed outputs)."""

    def __init__(self, path: str | Path, delimiter: str = ","):
        self.path = Path(path)
        self.format = table_format(self.path)
        self.delimiter = delimiter
        self.rows = 0
        self._pq_writer = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()

    def write(self, df: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._pq_writer is None:
                self._pq_writer = pq.ParquetWriter(self.path, table.schema)
            self._pq_writer.write_table(table.cast(self._pq_writer.schema))
        else:
            df.to_csv(self.path, mode="a", header=self.rows == 0 and not self.path.exists(), index=False,
                      sep=self.delimiter)
        self.rows += len(df)

    def close(self) -> None:
        if self._pq_writer is not None:
            self._pq_writer.close()
            self._pq_writer = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
