"""Confirmed labels fed back after training (`fraud feedback`, the service's POST /feedback).

A labels file has `transaction_id` and `label` (0/1), optionally `labelled_at` (when it became known; empty:
the payment's time + labels.delay, the rule training used). Each id must name a transaction the model can
place: one in its label book, or one of the transactions it was shown (the scored files given with
`--transactions`, or what the service absorbed). Every row is accepted or rejected with a reason:

- unknown id (not in the book or the transactions);
- a label other than 0/1, an unreadable labelled_at, or labelled_at before the payment;
- the same id twice in the file (the first one wins; with different labels both are rejected);
- an id already in the book: the same label is a repeat (nothing to do), another label contradicts it.

accepted + rejected = rows read, always.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.data.durations import NS
from fraud.data.frame import SchemaError
from fraud.data.row_checks import parse_labels, parse_timestamps
from fraud.features.labels import LabelBook, LabelConfig

REQUIRED = ("transaction_id", "label")


def check_feedback(raw: pd.DataFrame, book: LabelBook, seen: pd.DataFrame | None, cfg: LabelConfig,
                   where: str = "labels") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(book rows to add, rejects [row, reason, original values]) of a raw labels table.

    `seen`: transactions the model was shown (canonical columns transaction_id, timestamp, source, target),
    where ids outside the book are looked up. Raises SchemaError when a required column is missing.
    """
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise SchemaError(f"{where} lacks column(s) {', '.join(missing)} (it has {', '.join(map(str, raw.columns))});"
                          " a labels file needs transaction_id and label (0/1), optionally labelled_at")
    n = len(raw)
    reasons = np.full(n, "", dtype=object)

    def problem(mask, msg) -> None:
        mask = np.asarray(mask, bool) & (reasons == "")  # the first problem of a row is its reason
        reasons[mask] = msg

    ids = raw["transaction_id"].astype("string").str.strip()
    problem(ids.isna().to_numpy() | (ids == "").fillna(True).to_numpy(), "transaction_id is missing")
    label, bad = parse_labels(raw["label"])
    problem(bad | raw["label"].isna().to_numpy(), "label is not 0 or 1")
    dup = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
    clash = ids.notna().to_numpy() & (pd.Series(label).groupby(ids.to_numpy()).transform("nunique").to_numpy() > 1)
    problem(clash, "contradicting labels for this transaction_id in this file (fix the file: one label per id)")
    problem(dup, "duplicate transaction_id in this file (the first row counts)")

    stored = book.rows.set_index("transaction_id")
    in_book = ids.isin(stored.index).fillna(False).to_numpy()
    pos = np.flatnonzero(in_book & (reasons == ""))
    if len(pos):
        old = stored["label"].reindex(ids.iloc[pos]).to_numpy()
        same = old == label[pos]
        reasons[pos[same]] = "already in the model's labels with the same label (nothing to do)"
        reasons[pos[~same]] = [f"contradicts the model's stored label {int(v)} for this transaction (a label "
                               "cannot change once fed; retrain if it was wrong)" for v in old[~same]]
    tx = seen.drop_duplicates("transaction_id").set_index("transaction_id") if seen is not None and len(seen) \
        else None
    found = ids.isin(tx.index).fillna(False).to_numpy() if tx is not None else np.zeros(n, bool)
    problem(~found & ~in_book, "unknown transaction_id: not in the model's labels nor in the transactions given "
            "(pass the scored file with --transactions)")

    ok = np.flatnonzero(reasons == "")
    rows = tx.loc[ids.iloc[ok].to_numpy()] if len(ok) else None
    ts = rows["timestamp"].reset_index(drop=True) if rows is not None else pd.Series([], dtype="datetime64[ns, UTC]")
    known = ts.dt.as_unit("ns").astype("int64").to_numpy() + cfg.delay_seconds * NS
    if "labelled_at" in raw.columns and len(ok):
        la_raw = raw["labelled_at"].iloc[ok].reset_index(drop=True)
        la = parse_timestamps(la_raw)
        given = la_raw.notna().to_numpy() & (la_raw.astype("string").str.strip() != "").fillna(False).to_numpy()
        unreadable = given & la.isna().to_numpy()
        early = given & ~unreadable & (la < ts).fillna(False).to_numpy()
        reasons[ok[unreadable]] = "labelled_at is not a date/time"
        reasons[ok[early]] = "labelled_at is before the payment's timestamp (a label is known after the payment)"
        use = given & ~unreadable
        known = np.where(use, la.fillna(ts).dt.as_unit("ns").astype("int64").to_numpy(), known)
        keep = ~(unreadable | early)
        ok, known, ts = ok[keep], known[keep], ts[keep].reset_index(drop=True)
        rows = rows.iloc[np.flatnonzero(keep)] if rows is not None else None
    add = pd.DataFrame({"transaction_id": ids.iloc[ok].to_numpy(),
                        "source": rows["source"].astype("string").to_numpy() if rows is not None else [],
                        "target": rows["target"].astype("string").to_numpy() if rows is not None else [],
                        "ts_ns": ts.dt.as_unit("ns").astype("int64").to_numpy(), "known_ns": known.astype(np.int64),
                        "label": label[ok].astype(np.int8)})
    bad_rows = np.flatnonzero(reasons != "")
    rej = raw.iloc[bad_rows].astype("string").reset_index(drop=True)
    rej.columns = [str(c) for c in rej.columns]
    rej.insert(0, "reason", pd.array(reasons[bad_rows].tolist(), dtype="string"))
    rej.insert(0, "row", (bad_rows + 1).astype(np.int64))
    return add, rej
