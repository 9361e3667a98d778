"""The one scoring path: a fitted model plus the history it scores against.

    scorer = Scorer(model, model.history_.copy())
    x, p = scorer.run(chunk)                 # booster matrix [n, d] and probabilities [n]; chunk absorbed
    out = scorer.score(chunk)                # transaction_id, probability, flag (+ contrib_* with explain)

A row at time t sees the history plus strictly earlier rows, so scoring a stream chunk by chunk through one
`Scorer` gives the scores of one call on the whole stream. `FraudModel.score` / `stream` and file scoring
(`fraud.serve.scoring.ChunkScorer`) wrap this class, the HTTP service its `LiveScorer`; the order check, the
snapshot cache and the non-finite check live here only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.data.columns import TxColumns
from fraud.data.durations import to_ns
from fraud.data.frame import DataError
from fraud.features.graph import SnapshotCache
from fraud.features.history import History
from fraud.models.booster import contributions, predict


class OutOfOrder(Exception):
    """Row `pos` of a chunk (0-based) is earlier than the row before it (or than the history when pos is 0
    and `prev_ns` is the history's newest time); callers turn it into their own error with the fix."""

    def __init__(self, pos: int, t_ns: int, prev_ns: int):
        super().__init__(pos)
        self.pos, self.t_ns, self.prev_ns = pos, int(t_ns), int(prev_ns)


class Scorer:
    """Scores canonical chunks against `history`, then absorbs them (unless `remember=False`)."""

    watched_cache = False  # True where every absorbed row goes through `absorb`, which forgets stale snapshots

    def __init__(self, model, history: History):
        self.model, self.history, self.booster = model, history, model.booster_
        # a chunk ending mid-hour leaves that hour's snapshot for the next
        self.graph_cache = SnapshotCache(watched=self.watched_cache)

    def check_order(self, chunk: pd.DataFrame, within: bool = True) -> None:
        """Raise OutOfOrder if `chunk` starts before the newest absorbed row, or (`within`) is itself unsorted."""
        if not len(chunk):
            return
        t = to_ns(chunk["timestamp"])
        first = 0 if within else int(np.argmin(t))  # a sorted chunk's earliest row is its first
        if self.history.max_ns is not None and t[first] < self.history.max_ns:
            raise OutOfOrder(first, t[first], self.history.max_ns)
        if within:
            back = np.flatnonzero(t[1:] < t[:-1])
            if len(back):
                raise OutOfOrder(int(back[0]) + 1, t[back[0] + 1], t[back[0]])

    def matrix(self, chunk: pd.DataFrame) -> np.ndarray:
        """The booster's input rows [n, d] for `chunk` given the history (nothing absorbed)."""
        return self.model.matrix(chunk, self.history, graph_cache=self.graph_cache)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fraud probabilities [n] of matrix rows `x`; a non-finite score is an error, never an output."""
        p = predict(self.booster, x)
        if not np.isfinite(p).all():
            raise FloatingPointError("the booster produced non-finite scores; the model or its inputs are broken")
        return p

    def absorb(self, chunk: pd.DataFrame) -> None:
        self.history.update(chunk)

    def run(self, chunk: pd.DataFrame, remember: bool = True, within: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(matrix [n, d], probabilities [n]) for `chunk` in event order; absorbed afterwards if `remember`."""
        self.check_order(chunk, within)
        x = self.matrix(chunk)
        p = self.predict(x)
        if remember:
            self.absorb(chunk)
        return x, p

    def score(self, chunk: pd.DataFrame, explain: bool = False, remember: bool = True,
              within: bool = True) -> pd.DataFrame:
        """Per row of `chunk` (same order): transaction_id, probability, flag (+ contrib_<feature> if explain)."""
        x, p = self.run(chunk, remember, within)
        return self.frame(chunk, x, p, explain)

    def frame(self, chunk: pd.DataFrame, x: np.ndarray, p: np.ndarray, explain: bool = False) -> pd.DataFrame:
        m = self.model
        out = pd.DataFrame({"transaction_id": chunk["transaction_id"].to_numpy(), "probability": p,
                            "flag": p > m.threshold_}, index=chunk.index)
        if explain:
            c = contributions(m.booster_, x, m.feature_names_)
            contrib = pd.DataFrame(c[:, :-1], columns=[f"contrib_{n}" for n in m.feature_names_], index=chunk.index)
            out = pd.concat([out, contrib], axis=1)
        return out


class LiveScorer(Scorer):
    """`Scorer` over a `fraud.serve.live_history.LiveHistory` (the HTTP service's state).

    A chunk's behaviour features are computed from the coded events of its own entities (`LiveHistory.coded`:
    the same values, without reading the whole history or building a frame), the graph from the whole tail
    (snapshots are cached). Rows may be up to the history's lateness behind its newest event: features count
    only events before each row's time, so a late row gets the score it would have had in order (the
    caller's admission enforces the bound).

    Requests are small, so XGBoost predicts on one thread (its own copy of the booster): OpenMP threads
    waking for a row cost more than the row, and each row's score does not depend on the thread count.
    """

    watched_cache = True

    def __init__(self, model, history):
        super().__init__(model, history)
        self.booster = model.booster_.copy()
        self.booster.set_param({"nthread": 1})

    def run(self, chunk: pd.DataFrame | TxColumns, remember: bool = True,
            within: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """`Scorer.run` of a canonical frame or of `TxColumns` (a request's rows: no frame is built)."""
        return super().run(_columns(chunk), remember, within)

    def check_order(self, chunk: pd.DataFrame | TxColumns, within: bool = True) -> None:
        """Only the chunk's own order is checked: rows behind the history are scored as of their time."""
        t = _columns(chunk).t
        back = np.flatnonzero(t[1:] < t[:-1]) if within else []
        if len(back):
            raise OutOfOrder(int(back[0]) + 1, t[back[0] + 1], t[back[0]])

    def matrix(self, chunk: pd.DataFrame | TxColumns) -> np.ndarray:
        # FraudModel.matrix with one history for both parts; here each part gets the history it reads: the
        # behaviour features the chunk's own entities, coded straight from the live arrays.
        h, rows = self.history, _columns(chunk)
        coded = h.coded(rows.t, rows.amount, rows.source, rows.target)
        return self.model.matrix_from(self.model.behaviour_features(coded), h, rows, self.graph_cache)

    def absorb(self, chunk: pd.DataFrame | TxColumns) -> None:
        rows = _columns(chunk)
        if len(rows):  # a row joins the snapshots ending after its time (late rows, or rows before the end
            # of a snapshot the first request after its boundary cut)
            self.graph_cache.forget_after(int(rows.t.min()))
        self.history.append(rows.t, rows.source, rows.target, rows.amount)

    def forget_snapshots(self) -> None:
        """Drop the cached snapshots: after a late row, or new labels (snapshot nodes carry known fraud)."""
        self.graph_cache = SnapshotCache(watched=self.watched_cache)


class StreamScorer(Scorer):
    """`Scorer` over chunks in event order whose out-of-order chunk is a DataError saying the fix."""

    def score(self, chunk: pd.DataFrame, explain: bool = False) -> pd.DataFrame:
        try:
            return super().score(chunk, explain, remember=True, within=False)
        except OutOfOrder:
            raise DataError("chunk starts before the previous chunk's last timestamp; stream rows in event order "
                            "(sort the file by timestamp)") from None


def _columns(chunk: pd.DataFrame | TxColumns) -> TxColumns:
    return chunk if isinstance(chunk, TxColumns) else TxColumns.from_frame(chunk)


def check_finite(x: np.ndarray, names: list[str], where: str) -> None:
    """Stop on non-finite feature cells, naming the columns (a NaN feature is an error, never a score)."""
    bad = ~np.isfinite(x)
    if bad.any():
        cols = sorted({names[j] for j in np.flatnonzero(bad.any(axis=0))})
        raise FloatingPointError(f"non-finite {where} features in {', '.join(cols)} "
                                 f"({int(bad.sum())} cells); check the input amounts/timestamps")
