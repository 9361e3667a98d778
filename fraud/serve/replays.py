"""`fraud score --state`: a file scored after the service's state, without counting a transaction twice.

    history, replays = state_start(model, StateStore(path, model_identity(model), read_only=True))
    rest, (done, results), rejects = replays.split(chunk, mapping)     # per validated chunk of the file

The file is scored after everything the service absorbed (the store's transactions on top of the model's
history, its accepted labels in the model's label book). A row whose transaction_id the store already holds
is the same transaction: with the same payload it gets the stored result (`replay` = true: the answer the
service gave; its reasons are the service's, exact TreeSHAP) and is not scored or absorbed again; with
another payload it is rejected with the reason, as the service answers 409.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fraud.data.durations import to_ns
from fraud.features.history import History
from fraud.serve.pruning import restore
from fraud.serve.service_state import payload_differences
from fraud.serve.store import StateStore


def state_start(model, store: StateStore) -> tuple[History, Replays]:
    """The history to score a file after (model history + the store's transactions) and the replay finder;
    the store's labels are added to `model.labels_`."""
    live, _, _ = restore(model, store)
    labels = store.labels()
    model.labels_.add(labels[~labels["transaction_id"].isin(set(model.labels_.rows["transaction_id"]))])
    return live.to_history(), Replays(store)


class Replays:
    """Splits validated chunks into rows to score, replays (stored results) and conflicts (rejects)."""

    def __init__(self, store: StateStore, top_k: int = 3):
        self.store, self.top_k = store, top_k
        self.count = 0

    def split(self, canon: pd.DataFrame, mapping: dict[str, str]) -> tuple[pd.DataFrame, tuple, pd.DataFrame]:
        """(rows to score, (replayed rows, their output columns), rejects) of a canonical chunk (index = file
        row - 1)."""
        stored = self.store.lookup(canon["transaction_id"].astype(str).tolist()) if len(canon) else None
        if stored is None or not len(stored):
            none = canon.iloc[:0]
            return canon, (none, _outputs(none, stored, self.top_k)), _rejects(none, [], mapping)
        hit = canon["transaction_id"].isin(stored.index).to_numpy()
        t = to_ns(canon["timestamp"])
        why = {i: payload_differences(int(t[k]), str(canon.at[i, "source"]), str(canon.at[i, "target"]),
                                      float(canon.at[i, "amount"]), stored.loc[canon.at[i, "transaction_id"]])
               for k, i in zip(np.flatnonzero(hit).tolist(), canon.index[hit], strict=True)}
        bad = [i for i, d in why.items() if d]
        same = [i for i, d in why.items() if not d]
        self.count += len(same)
        reasons = [f"transaction_id {canon.at[i, 'transaction_id']!r} is in the --state store with another "
                   f"{why[i]}; a transaction_id names one transaction" for i in bad]
        return (canon[~hit], (canon.loc[same], _outputs(canon.loc[same], stored, self.top_k)),
                _rejects(canon.loc[bad], reasons, mapping))


def _outputs(rows: pd.DataFrame, stored: pd.DataFrame | None, k: int) -> pd.DataFrame:
    """probability, flag, reason_1..k, replay for replayed rows (stored results)."""
    if not len(rows):
        out = pd.DataFrame({"probability": pd.Series(dtype="float64"), "flag": pd.Series(dtype="bool")},
                           index=rows.index)
        for j in range(k):
            out[f"reason_{j + 1}"] = pd.Series(dtype="string")
        return out
    s = stored.loc[rows["transaction_id"].astype(str).tolist()]
    out = pd.DataFrame({"probability": s["probability"].to_numpy(np.float64), "flag": s["flag"].to_numpy(bool)},
                       index=rows.index)
    reasons = [[r["reason"] for r in json.loads(text)][:k] for text in s["reasons"]]
    for j in range(k):
        out[f"reason_{j + 1}"] = pd.array([r[j] if j < len(r) else "" for r in reasons], dtype="string")
    return out


def _rejects(rows: pd.DataFrame, reasons: list[str], mapping: dict[str, str]) -> pd.DataFrame:
    """Rejects layout (row, reason, the input columns as text) for canonical rows."""
    out = pd.DataFrame({"row": (rows.index.to_numpy() + 1).astype(np.int64),
                        "reason": pd.array(reasons, dtype="string")})
    for canon_col, col in mapping.items():
        if canon_col in rows.columns:
            out[col] = pd.array(rows[canon_col].astype(str).to_numpy(), dtype="string")
    return out
