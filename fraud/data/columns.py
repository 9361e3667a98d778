"""A few canonical transactions as plain columns: the service's per-request form of the canonical frame.

    rows = TxColumns(ids, t_ns, sources, targets, amounts)      # from a request's parsed transactions
    rows = TxColumns.from_frame(df)                              # a canonical frame's rows (kept as it is)
    rows.take(order); TxColumns.concat([a, b]); rows.frame()     # the canonical frame, built on first use

Building a pandas frame of one transaction and reading its columns back costs more than scoring it does
(~1 ms of fixed pandas cost per frame, several times per request). The service reads the same values from
these columns instead and builds the frame only where a frame-based step needs one (cutting a new graph
snapshot), so both give the same numbers; `frame()` is exactly the canonical frame of the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from fraud.data.durations import to_ns


class TxColumns:
    """transaction_id, t [n] int64 ns (UTC), source, target (object arrays of str), amount [n] float64."""

    def __init__(self, transaction_id: Sequence[str], t: np.ndarray, source: Sequence[str], target: Sequence[str],
                 amount: np.ndarray, frame: pd.DataFrame | None = None):
        self.transaction_id = np.asarray(transaction_id, dtype=object)
        self.t = np.asarray(t, np.int64)
        self._source, self._target = source, target
        self.amount = np.asarray(amount, np.float64)
        self._frame = frame

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> TxColumns:
        """The rows of canonical frame `df` (its names are read from it only when asked)."""
        ids = df["transaction_id"].to_numpy(object) if "transaction_id" in df.columns else np.zeros(len(df), object)
        return cls(ids, to_ns(df["timestamp"]), None, None, df["amount"].to_numpy(np.float64), frame=df)

    def __len__(self) -> int:
        return len(self.t)

    @cached_property
    def source(self) -> np.ndarray:
        return self._names("source", self._source)

    @cached_property
    def target(self) -> np.ndarray:
        return self._names("target", self._target)

    def _names(self, col: str, given) -> np.ndarray:
        if given is None:
            return self._frame[col].astype("string").to_numpy(object)
        return np.asarray(given, dtype=object)

    def take(self, idx: np.ndarray) -> TxColumns:
        """The rows at positions `idx`, in that order."""
        return TxColumns(self.transaction_id[idx], self.t[idx], self.source[idx], self.target[idx], self.amount[idx])

    @staticmethod
    def concat(parts: list[TxColumns]) -> TxColumns:
        if len(parts) == 1:
            return parts[0]
        return TxColumns(*(np.concatenate([getattr(p, c) for p in parts])
                           for c in ("transaction_id", "t", "source", "target", "amount")))

    def frame(self) -> pd.DataFrame:
        """The canonical frame of the rows (transaction_id, timestamp, source, target, amount), built once."""
        if self._frame is None:
            self._frame = pd.DataFrame({
                "transaction_id": pd.array(self.transaction_id.tolist(), dtype="string"),
                "timestamp": pd.to_datetime(self.t, unit="ns", utc=True),
                "source": pd.array(self.source.tolist(), dtype="string"),
                "target": pd.array(self.target.tolist(), dtype="string"),
                "amount": self.amount.copy()})
        return self._frame
