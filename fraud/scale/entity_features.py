"""Behaviour features partitioned by entity, on Dask: every row is sent twice through one shuffle, keyed by
its source (the `src_*` and `pair_*` columns: a pair's events all have that source, the reverse pair's all
have it as target) and by its target (the `dst_*` columns).

A partition's task sees every event of the entities it holds (history tail + file rows, either role) plus
their stored totals, which is all those columns read (`History.involving`), so the values are the
single-process ones bit for bit. Entities are hashed into buckets, except hot ones (more rows than half a
partition, `fraud.scale.entity_plan`): a hot entity's rows are cut into time slices, and each slice starts
from the stored history plus the slices before it: the ones no feature window reaches folded into integer
totals (a short chain of cheap merges), the others as raw events. So the slices run in parallel and a
task's memory stays bounded whatever the entity's share of the rows.

Functions named `*_task` run on workers (plain pandas in, pandas out). Rows carry `_row`, their 0-based
position in the whole input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.data.durations import NS, to_ns
from fraud.features.behaviour import ROW_FEATURES
from fraud.features.history import HISTORY_COLUMNS, History
from fraud.scale.entity_plan import EntityPlan

EVENT_COLUMNS = ["_row", *HISTORY_COLUMNS]
KIND_SRC, KIND_DST, KIND_GRAPH = 0, 1, 2


def side_columns(names: list[str]) -> tuple[list[str], list[str]]:
    """(columns computed on the source's bucket, on the target's bucket) of behaviour feature `names`."""
    src, dst = [], []
    for n in names:
        if n in ROW_FEATURES or n.startswith(("src_", "pair_")):
            src.append(n)
        elif n.startswith("dst_"):
            dst.append(n)
        else:
            raise ValueError(f"feature {n!r} has no entity side; the partitioned path cannot place it")
    return src, dst


def utc_events(events: pd.DataFrame) -> pd.DataFrame:
    """`events` with timestamps in one time zone object: UTC from Parquet and UTC from pandas can be two
    zones to `concat`, which then falls back to object timestamps."""
    return events.assign(timestamp=pd.to_datetime(events["timestamp"], utc=True).dt.tz_convert("UTC"))


# ---- behaviour features by entity -----------------------------------------------------------------------
def role_copies_task(ev: pd.DataFrame, plan: EntityPlan) -> pd.DataFrame:
    """Each event twice: `_kind` 0 keyed by its source, 1 by its target, in partition `_part` of `plan`."""
    ev = ev[EVENT_COLUMNS]
    t = to_ns(ev["timestamp"]) if plan.hot else np.zeros(len(ev), np.int64)
    return pd.concat([ev.assign(_kind=np.int8(KIND_SRC), _part=plan.partition(ev["source"], t)),
                      ev.assign(_kind=np.int8(KIND_DST), _part=plan.partition(ev["target"], t))],
                     ignore_index=True)


def entity_counts(events, above: int):
    """Dask series of the copies (rows as source + rows as target) of every entity of Dask frame `events` with more than
    `above` of them (name -> count): the hot entities a plan cuts by time (small: compute it)."""
    import dask.dataframe as dd

    names = dd.concat([events["source"].astype("string").rename("name"),
                       events["target"].astype("string").rename("name")])
    counts = names.value_counts()
    return counts[counts > above]


def entity_history(h: History, q: pd.DataFrame) -> History:
    """`h` cut to the entities of rows `q`: tail events, entity totals and pairs with one of them at an end
    (what every behaviour feature of `q` reads; see `History.involving`)."""
    names = pd.unique(pd.concat([q["source"], q["target"]], ignore_index=True).astype("string").to_numpy())

    def has(col: pd.Series) -> np.ndarray:
        return col.astype("string").isin(names).to_numpy()

    tail = h.tail[has(h.tail["source"]) | has(h.tail["target"])] if len(h.tail) else h.tail
    ents = h.entities[has(h.entities["entity"])] if len(h.entities) else h.entities
    pairs = h.pairs[has(h.pairs["source"]) | has(h.pairs["target"])] if len(h.pairs) else h.pairs
    return History(h.tail_seconds, tail.reset_index(drop=True), ents.reset_index(drop=True),
                   pairs.reset_index(drop=True), h.cutoff_ns, h.max_ns)


def entity_task(part: pd.DataFrame, model, history: History, src_cols: list[str],
                dst_cols: list[str]) -> pd.DataFrame:
    """Behaviour features of the rows of one shuffled partition: `_row`, `_kind`, then the source-side
    columns (for `_kind` 0 rows) or the target-side ones (`_kind` 1), the others NaN."""
    cols = ["_row", "_kind", *src_cols, *dst_cols]
    if not len(part):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "_row" else "int8" if c == "_kind" else "float32")
                             for c in cols})
    q = part.drop_duplicates("_row").set_index("_row")[HISTORY_COLUMNS]
    f = model._features(entity_history(history, q), q)  # index: _row
    out = []
    for kind, names in ((KIND_SRC, src_cols), (KIND_DST, dst_cols)):
        rows = part.loc[part["_kind"] == kind, "_row"].to_numpy()
        block = f.loc[rows, names].reset_index(drop=True)
        block.insert(0, "_kind", np.int8(kind))
        block.insert(0, "_row", rows.astype(np.int64))
        out.append(block)
    return pd.concat(out, ignore_index=True).reindex(columns=cols).astype(
        {c: "float32" for c in cols[2:]})


def hot_state(history: History, name: str) -> History:
    """`history` cut to one entity: all a hot entity's features read before its first slice."""
    return entity_history(history, pd.DataFrame({"source": [name], "target": [name]}, dtype="string"))


def slice_events(part: pd.DataFrame) -> pd.DataFrame:
    """The distinct events (HISTORY_COLUMNS) of one shuffled partition, in time order: what later slices of
    the same hot entity read of it."""
    q = utc_events(part.drop_duplicates("_row")[["_row", *HISTORY_COLUMNS]])
    q = q.iloc[np.lexsort((q["_row"].to_numpy(), to_ns(q["timestamp"])))]
    return q[HISTORY_COLUMNS].reset_index(drop=True)


def fold_task(prefix: History, events: pd.DataFrame) -> History:
    return prefix.folded(events)


def hot_slice_task(part: pd.DataFrame, model, prefix: History, recent: list[pd.DataFrame], src_cols: list[str],
                   dst_cols: list[str]) -> pd.DataFrame:
    """`entity_task` of one time slice of a hot entity. `prefix`: the stored history cut to the entity with
    the slices no window of this one reaches folded into its totals; `recent`: the events of the slices
    after those, absorbed as one process absorbs a chunk (`History.update`). Every earlier event is counted once, in the tail or in the totals,
    and the totals are integers, so the values are those of one process."""
    recent = [f for f in recent if len(f)]
    history = prefix.copy().update(pd.concat(recent, ignore_index=True)) if recent else prefix
    return entity_task(part, model, history, src_cols, dst_cols)


def entity_blocks(events, model_d, history_d, plan: EntityPlan, tail_seconds: int, src_cols: list[str],
                  dst_cols: list[str]):
    """Dask frame of `entity_task` outputs over the events (`_row` + HISTORY_COLUMNS) shuffled by entity into
    the partitions of `plan` (each copy to exactly its partition); `tail_seconds`: the history's tail span,
    the reach of the longest feature window."""
    import dask
    import dask.dataframe as dd

    copies = events.map_partitions(role_copies_task, plan, meta=role_copies_task(events._meta, EntityPlan(1)))
    # set_index on the partition number with one division per partition: every copy lands in exactly its
    # partition (a shuffle on the column would hash the numbers again and stack several buckets in one)
    parts = copies.set_index("_part", divisions=list(range(plan.parts + 1))).to_delayed()
    tasks = [dask.delayed(entity_task)(parts[i], model_d, history_d, src_cols, dst_cols)
             for i in range(plan.buckets)]
    reach = tail_seconds * NS
    for name, chain in plan.slices():
        events_of = [dask.delayed(slice_events)(parts[i]) for i in chain]
        prefixes = [dask.delayed(hot_state)(history_d, name)]
        for j, (i, folded) in enumerate(zip(chain, plan.out_of_reach(name, reach), strict=True)):
            while len(prefixes) <= folded:
                prefixes.append(dask.delayed(fold_task)(prefixes[-1], events_of[len(prefixes) - 1]))
            tasks.append(dask.delayed(hot_slice_task)(parts[i], model_d, prefixes[folded], events_of[folded:j],
                                                      src_cols, dst_cols))
    meta = entity_task(copies._meta, None, None, src_cols, dst_cols)
    return dd.from_delayed(tasks, meta=meta, verify_meta=False)
