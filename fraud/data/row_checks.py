"""Row by row checks of raw input (vectorised): ids, entities, timestamps, amounts, labels, duplicate ids ->
canonical rows plus rejects with a reason per row. `fraud.data.load.read_transactions` drives it chunk by chunk.

`fraud score` (`fraud/serve/scoring.py` `validate_chunk`) runs the same checks on the files it scores.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from fraud.data.frame import CANONICAL, OPTIONAL
from fraud.data.mapping import TIME_UNITS, ColumnMapping

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "f": 0, "t": 1, "no": 0, "yes": 1,
           "n": 0, "y": 1}


class SeenIds:
    """Hashes of the ids kept so far and their rows, to find duplicates across chunks without Python loops."""

    def __init__(self):
        self.hashes: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []

    def first_rows(self, h: np.ndarray) -> np.ndarray:
        """Row of the earlier occurrence of each hash (0 = none)."""
        if not self.hashes:
            return np.zeros(len(h), np.int64)
        pos = pd.Index(np.concatenate(self.hashes)).get_indexer(h)
        return np.where(pos >= 0, np.concatenate(self.rows)[pos], 0)

    def add(self, h: np.ndarray, rows: np.ndarray) -> None:
        self.hashes.append(h)
        self.rows.append(rows)


def check_rows(raw: pd.DataFrame, m: ColumnMapping, seen: SeenIds, columns: list[str],
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(canonical rows, rejects) of one raw chunk; `seen` finds duplicates of ids kept in earlier chunks."""
    n = len(raw)
    rows = raw.index.to_numpy() + 1
    reasons = np.full(n, "", dtype=object)

    def problem(mask, msg: str, values: pd.Series | None = None) -> None:
        mask = np.asarray(mask, bool)
        if not mask.any():
            return
        text = np.full(mask.sum(), msg, dtype=object)
        if values is not None:
            shown = values[mask].astype("string").fillna("").str.slice(0, 60).to_numpy(dtype=object)
            text = np.array([f"{msg} (value {v!r})" for v in shown], dtype=object)
        sep = np.where(reasons[mask] == "", "", "; ")
        reasons[mask] = reasons[mask] + sep + text

    if m.transaction_id:
        ids = raw[m.transaction_id].astype("string").str.strip()
        problem(ids.isna().to_numpy() | (ids == "").fillna(True).to_numpy(), "transaction_id is missing")
    else:
        ids = pd.Series(rows.astype(str), index=raw.index, dtype="string")
    ends = {}
    for role in ("source", "target"):
        cols = [raw[c].astype("string").str.strip() for c in getattr(m, role)]
        bad = np.zeros(n, bool)
        for c in cols:
            bad |= c.isna().to_numpy() | (c == "").fillna(True).to_numpy()
        problem(bad, f"{role} is missing")
        ends[role] = cols[0] if len(cols) == 1 else cols[0].str.cat(cols[1:], sep=":")
    ts_raw = raw[m.timestamp]
    ts = parse_timestamps(ts_raw, m)
    problem(ts_raw.isna().to_numpy(), "timestamp is missing")
    problem(ts.isna().to_numpy() & ts_raw.notna().to_numpy(), "timestamp is not a date/time", ts_raw)
    a_raw = raw[m.amount]
    if pd.api.types.is_numeric_dtype(a_raw.dtype):
        a = a_raw.to_numpy(dtype="float64", na_value=np.nan)
        text_nan = np.zeros(n, bool)
    else:
        s = a_raw.astype("string").str.strip()
        a = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        text_nan = s.str.lower().isin(["nan", "-nan", "+nan"]).fillna(False).to_numpy()
    problem(a_raw.isna().to_numpy(), "amount is missing")
    problem(np.isnan(a) & text_nan, "amount is NaN")
    problem(np.isnan(a) & a_raw.notna().to_numpy() & ~text_nan, "amount is not a number", a_raw)
    problem(np.isinf(a), "amount is infinite")
    problem(a < 0, "amount is negative", a_raw)
    labelled = None
    if m.labelled_at and m.labelled_at in raw.columns:
        la_raw = raw[m.labelled_at]
        labelled = parse_timestamps(la_raw, m)
        problem(labelled.isna().to_numpy() & la_raw.notna().to_numpy() &
                (la_raw.astype("string").str.strip() != "").fillna(False).to_numpy(),
                "labelled_at is not a date/time", la_raw)
        problem((labelled < ts).fillna(False).to_numpy(), "labelled_at is before the timestamp (a label is "
                "known after the payment)", la_raw)
    label = None
    if m.label and m.label in raw.columns:
        label, bad_label = parse_labels(raw[m.label])
        problem(raw[m.label].isna().to_numpy(), "label is missing")
        problem(bad_label & raw[m.label].notna().to_numpy(), "label is not 0 or 1", raw[m.label])
    # Duplicates (first occurrence wins), within the chunk and against earlier chunks.
    valid_id = ids.notna().to_numpy() & (ids != "").fillna(False).to_numpy()
    h = pd.util.hash_pandas_object(ids.fillna(""), index=False).to_numpy()
    first_row = seen.first_rows(h)
    dup_here = pd.Series(h).duplicated().to_numpy() & valid_id
    if dup_here.any():
        firsts = pd.Series(rows).groupby(h).transform("min").to_numpy()
        first_row = np.where(first_row == 0, np.where(dup_here, firsts, 0), first_row)
    dup = valid_id & (first_row > 0)
    if dup.any():
        problem(dup, "duplicate transaction_id")
        idx = np.flatnonzero(dup)
        reasons[idx] = [f"{r} (value {i!r}, first in row {f:,})" for r, i, f in
                        zip(reasons[idx], ids.iloc[idx].tolist(), first_row[idx], strict=True)]
    bad = reasons != ""
    good = ~bad
    seen.add(h[good & valid_id], rows[good & valid_id])

    canon = pd.DataFrame({"transaction_id": ids.astype("string"), "timestamp": ts,
                          "source": ends["source"].astype("string"), "target": ends["target"].astype("string"),
                          "amount": a}, index=raw.index)
    if label is not None:
        canon["label"] = label
    if labelled is not None:
        canon["labelled_at"] = labelled
    if m.typology and m.typology in raw.columns:
        canon["typology"] = raw[m.typology].astype("string").str.strip().fillna("")
    extra = [c for c in columns if c not in m.used()] if "*" in m.extra else [c for c in m.extra if c in columns]
    for c in extra:
        if c not in canon.columns:
            canon[c] = raw[c]
    canon = canon[good] if bad.any() else canon
    if bad.any():
        rej = raw[bad].astype("string")
        rej.columns = [str(c) for c in rej.columns]
        rej.insert(0, "reason", pd.array(reasons[bad], dtype="string"))
        rej.insert(0, "row", rows[bad].astype(np.int64))
        return canon, rej.reset_index(drop=True)
    return canon, empty_rejects(columns)


def empty_rejects(columns) -> pd.DataFrame:
    cols = {"row": pd.Series(dtype="int64"), "reason": pd.Series(dtype="string")}
    cols.update({str(c): pd.Series(dtype="string") for c in columns if str(c) not in cols})
    return pd.DataFrame(cols)


def finish_extras(frame: pd.DataFrame) -> pd.DataFrame:
    """Extra columns read as text become numbers when every value is one, else strings."""
    for c in frame.columns:
        if c in CANONICAL or c in OPTIONAL:
            continue
        col = frame[c]
        if pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype):
            text = col.dropna().astype("string")
            # A cheap look at the first values spares a slow full parse of columns that are plainly text.
            if len(text) and text.iloc[:1000].str.fullmatch(_NUMBER.pattern.strip("^$")).all():
                num = pd.to_numeric(col, errors="coerce")
                if num.notna().sum() == len(text):
                    frame[c] = num
                    continue
            frame[c] = col.astype("string")
    return frame


def parse_timestamps(col: pd.Series, m: ColumnMapping | None = None) -> pd.Series:
    """datetime64[ns, UTC] from datetimes, text (the mapping's format, else ISO-8601) or numbers (the
    mapping's unit after its origin; Unix seconds by default). Unparseable values become NaT."""
    m = m or ColumnMapping()
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC").dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return col.dt.tz_localize("UTC").dt.as_unit("ns")
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return _from_numbers(col.astype("float64"), m)
    text = col.astype("string").str.strip()
    if m.timestamp_format:
        out = pd.to_datetime(text, format=m.timestamp_format, utc=True, errors="coerce")
        return out.dt.as_unit("ns")
    head = text.dropna().iloc[:1000]  # numbers or dates: decided on the first values (per-row regex is slow)
    if len(head) and head.str.fullmatch(_NUMBER.pattern.strip("^$")).all():
        return _from_numbers(pd.to_numeric(text, errors="coerce"), m)
    out = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").dt.as_unit("ns")
    retry = out.isna() & text.notna()
    if 0 < retry.sum() <= 10_000:  # other spellings (e.g. '2024/01/05 10:00'), row by row: only a few
        out[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed").dt.as_unit("ns")
    return out


def _from_numbers(x: pd.Series, m: ColumnMapping) -> pd.Series:
    v = x.to_numpy(dtype="float64", na_value=np.nan) * TIME_UNITS[m.timestamp_unit]
    origin = pd.Timestamp(m.origin, tz="UTC") if pd.Timestamp(m.origin).tzinfo is None else \
        pd.Timestamp(m.origin).tz_convert("UTC")
    ns = origin.value + v
    ok = np.isfinite(ns) & (np.abs(ns) < 9.2e18)
    out = pd.Series(pd.NaT, index=x.index, dtype="datetime64[ns, UTC]")
    out[ok] = pd.to_datetime(np.rint(ns[ok]).astype(np.int64), unit="ns", utc=True)
    return out


def parse_labels(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int8 labels with 0 where unparseable, mask of unparseable) from 0/1, true/false, yes/no."""
    if pd.api.types.is_bool_dtype(col.dtype):
        v = col.fillna(False).to_numpy(dtype=bool).astype(np.int8)
        return v, col.isna().to_numpy()
    text = col.astype("string").str.strip().str.lower()
    mapped = text.map(_LABELS)
    bad = mapped.isna().to_numpy()
    return np.where(bad, 0, mapped.fillna(0).to_numpy()).astype(np.int8), bad
