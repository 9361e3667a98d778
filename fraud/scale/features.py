"""The booster's feature blocks computed the way feature pipelines partition them, on Dask.

- **Behaviour features by entity** (`fraud.scale.entity_features`): each row shuffled to its source's and
  its target's partition; hot entities cut into time slices.
- **Graph features by time range.** Rows are sorted by time into ranges; a range's task gets the events of
  the window before it (`graph.window` back from its first snapshot boundary) from the stored tail and the
  earlier ranges. Snapshots only read that window, so each range is independent; node order follows entity
  names, so the embeddings match too.
- **Delayed-label risk** reads the label book, which every task has whole (a label is ~40 bytes).

Functions named `*_task` run on workers (plain pandas in, pandas out); `entity_blocks` / `graph_blocks`
build the Dask collections. Rows carry `_row`, their 0-based position in the whole input.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd

from fraud.data.durations import to_ns
from fraud.features.history import HISTORY_COLUMNS, History
from fraud.scale.entity_features import KIND_DST, KIND_GRAPH, KIND_SRC, entity_blocks, side_columns
from fraud.scale.entity_features import utc_events as _utc
from fraud.scale.entity_plan import plan_entities
from fraud.scale.time_ranges import time_divisions, time_sample


def graph_columns(model) -> list[str]:
    """The booster columns the graph pass gives (return-path hops, GNN outputs), in matrix order."""
    return [n for n in model._names() if n == "path_return_hops" or n.startswith("gnn_")]


def worker_model(model):
    """The model as a worker runs it: one thread (the worker process is the unit of parallelism)."""
    m = copy.copy(model)
    m.cfg = replace(model.cfg, booster=replace(model.cfg.booster, n_jobs=1))
    return m


def check_partitionable(model) -> None:
    if model.cfg.features.robust:
        raise ValueError("this model uses the robust features (features.robust: true), whose young-payee "
                         "counts read other entities' pairs; score it without --scheduler")

# ---- graph features by time range -----------------------------------------------------------------------
def graph_task(part: pd.DataFrame, before: list[pd.DataFrame], model, tail: pd.DataFrame,
               cols: list[str]) -> pd.DataFrame:
    """Return-path hops and GNN outputs of the rows of one time range (`_row`, `_kind` 2, `cols`).

    `before`: earlier ranges (only their events inside this range's graph window are used); `tail`: the
    stored history's raw rows (empty when the file is scored as its own history)."""
    out_cols = ["_row", "_kind", *cols]
    if not len(part):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "_row" else "int8" if c == "_kind" else "float32")
                             for c in out_cols})
    part = part.reset_index()
    part = part.iloc[np.argsort(part["_row"].to_numpy(), kind="stable")]
    part = part.iloc[np.argsort(to_ns(part["timestamp"]), kind="stable")].reset_index(drop=True)
    g = model.cfg.graph
    t0 = int(to_ns(part["timestamp"]).min())
    start = (t0 // g.every_ns) * g.every_ns - g.window_ns
    halo = [_utc(f[HISTORY_COLUMNS]) for f in [tail, *before] if len(f)]
    halo = [f[(to_ns(f["timestamp"]) >= start) & (to_ns(f["timestamp"]) < t0)] for f in halo]
    hist = History(model.history_.tail_seconds)
    if any(len(f) for f in halo):
        hist.tail = pd.concat([f for f in halo if len(f)], ignore_index=True)
        hist.max_ns = int(to_ns(hist.tail["timestamp"]).max())
    blocks = model._graph_blocks(hist, _utc(part[HISTORY_COLUMNS]), False)
    x = np.concatenate([blocks[k] for k in ("paths", "gnn") if k in blocks], axis=1)
    out = pd.DataFrame(x, columns=cols)
    out.insert(0, "_kind", np.int8(KIND_GRAPH))
    out.insert(0, "_row", part["_row"].to_numpy(np.int64))
    return out


def graph_blocks(events, model_d, tail_d, cols: list[str], divisions: list[int], window_ns: int, every_ns: int):
    """Dask frame of `graph_task` outputs: events sorted into the time ranges between `divisions` (ns, from
    `time_divisions`; one sort shuffle), each range's task depending only on the earlier ranges its window
    reaches."""
    import dask
    import dask.dataframe as dd

    ev = events.assign(_t=events["timestamp"].map_partitions(to_ns_series, meta=("_t", "int64")))
    parts = ev.set_index("_t", divisions=list(divisions)).to_delayed()
    tasks = []
    for j, part in enumerate(parts):
        start = (divisions[j] // every_ns) * every_ns - window_ns
        # only the window's events travel, not whole earlier ranges
        before = [dask.delayed(events_since)(parts[i], start) for i in range(j) if divisions[i + 1] >= start]
        tasks.append(dask.delayed(graph_task)(part, before, model_d, tail_d, cols))
    meta = graph_task(ev._meta, [], None, None, cols)
    return dd.from_delayed(tasks, meta=meta, verify_meta=False)

def events_since(part: pd.DataFrame, start_ns: int) -> pd.DataFrame:
    """The events of a time range at or after `start_ns` (the part of it a later range's window reaches)."""
    return part[part.index >= start_ns].reset_index(drop=True)[HISTORY_COLUMNS]


def to_ns_series(ts: pd.Series) -> pd.Series:
    return pd.Series(to_ns(ts), index=ts.index, dtype="int64")


# ---- the same blocks for an in-memory frame (training) ---------------------------------------------------
class DaskFeatures:
    """`FraudModel.fit`'s feature runner on a cluster: `behaviour` and `graph` give what `model._features` and
    `model._graph_blocks` give, computed by entity shuffle and by time range on `client`'s workers.

    The frame is sent from the driver (`dask.dataframe.from_pandas`), so training data still has to fit in
    the driver's memory; the per-row work runs on the workers."""

    def __init__(self, client, rows_per_partition: int = 250_000):
        self.client, self.rows_per_partition = client, rows_per_partition

    def _threads(self) -> int:
        return sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values()) or 1

    def _events(self, df: pd.DataFrame, parts: int):
        import dask.dataframe as dd

        ev = df[HISTORY_COLUMNS].reset_index(drop=True)
        ev.insert(0, "_row", np.arange(len(ev), dtype=np.int64))
        return dd.from_pandas(ev, npartitions=max(1, min(parts, len(ev))))

    def _parts(self, n: int) -> int:
        return max(2 * self._threads(), -(-n // self.rows_per_partition))

    def behaviour(self, model, history: History, df: pd.DataFrame) -> pd.DataFrame:
        """Behaviour features [n, len(model.base_names)] float32 of `df` (same index) given `history`."""
        import dask

        check_partitionable(model)
        src, dst = side_columns(model.base_names)
        if not len(df):
            return model._features(history, df)
        ev = self._events(df, self._parts(len(df)))
        counts = pd.concat([df["source"], df["target"]], ignore_index=True).astype("string").value_counts()
        plan = plan_entities(counts, 2 * len(df), self.rows_per_partition, 2 * self._threads(),
                             [time_sample(to_ns(df["timestamp"]))])
        blocks = entity_blocks(ev, dask.delayed(worker_model(model), pure=True), dask.delayed(history, pure=True),
                               plan, history.tail_seconds, src, dst)
        got = self.client.compute(blocks).result()
        rows = np.arange(len(df))
        kind = got["_kind"].to_numpy()
        side = [got[kind == k].set_index("_row")[c].reindex(rows) for k, c in ((KIND_SRC, src), (KIND_DST, dst))]
        out = pd.concat(side, axis=1)[model.base_names]
        out.index = df.index
        return out

    def graph(self, model, history: History, df: pd.DataFrame, progress: bool = False) -> dict[str, np.ndarray]:
        """{'paths' [n, 1], 'gnn' [n, 2E + 1]} of `df` given `history` (`model._graph_blocks`' layout)."""
        import dask

        cols = graph_columns(model)
        if not cols or not len(df):
            return model._graph_blocks(history, df, progress)
        g = model.cfg.graph
        ev = self._events(df, self._parts(len(df)))
        divisions = time_divisions([time_sample(to_ns(df["timestamp"]))], self._parts(len(df)))
        blocks = graph_blocks(ev, dask.delayed(worker_model(model), pure=True),
                              dask.delayed(history.tail, pure=True), cols, divisions, g.window_ns, g.every_ns)
        got = self.client.compute(blocks).result().set_index("_row")[cols].reindex(np.arange(len(df)))
        x = got.to_numpy(np.float32)
        out = {}
        if model.cfg.parts.paths:
            out["paths"] = x[:, :1]
        if model.cfg.parts.gnn:
            out["gnn"] = x[:, 1:] if model.cfg.parts.paths else x
        return out
