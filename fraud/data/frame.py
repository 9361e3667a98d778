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
| labelled_at | datetime64[ns, UTC] (optional) | when the label became known; empty: timestamp + labels.delay |
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

import numpy as np
import pandas as pd

CANONICAL = ("transaction_id", "timestamp", "source", "target", "amount")
OPTIONAL = ("label", "typology", "labelled_at")
TYPOLOGIES = ("card_testing", "account_takeover", "mule_ring", "laundering_cycle", "colluding_merchant",
              "compromised_merchant")  # append new ones: a typology's code is its position


class SchemaError(ValueError):
    """A file or frame that does not fit the canonical schema; the message says where and how to fix it."""



class DataError(ValueError):
    """Training or scoring data that cannot be used as given; the message says why and what to do."""


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
    if "labelled_at" in df.columns:
        la = df["labelled_at"]
        if not (isinstance(la.dtype, pd.DatetimeTZDtype) and str(la.dtype.tz) == "UTC"):
            problems.append(f"labelled_at must be a UTC datetime column (empty = unknown), not {la.dtype}")
        elif "timestamp" in df.columns and isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
            early = (la < df["timestamp"]).fillna(False).to_numpy()
            if early.any():
                problems.append(f"labelled_at is before the payment's timestamp in {int(early.sum()):,} row(s), "
                                f"first at position {int(np.flatnonzero(early)[0]):,}; a label is known after "
                                "the payment")
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
                          ". Files are converted by fraud.data.load.load_transactions (or `fraud convert`).")
