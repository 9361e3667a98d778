"""`fraud score --scheduler`: a partitioned Parquet data set scored on a Dask cluster, the same scores as
one process.

    summary = score_parts(model, "day/", "scored/", client)    # a folder of part files, or a glob

Stages (each a Dask step; workers read the inputs and write the outputs, so on a real cluster the paths must
be on storage every worker sees):

1. every part is read and checked by `fraud score`'s row checks (`fraud.serve.reading.validate_chunk`) on a
   worker, canonical rows staged as Parquet beside the output, rejects written per part;
2. duplicate ids across parts by a shuffle on the id (the first kept occurrence in part order wins, as
   when one process reads the parts in order as chunks);
3. features: behaviour by entity shuffle (`fraud.scale.entity_features`), graph by time range
   (`fraud.scale.features`);
4. one shuffle back to the input parts by row number, then per part: autoencoder, booster, reason codes and
   drift counts, written as one output part per input part, rows in input order.

Row numbers (`row` in rejects) count 1-based through the parts in sorted name order, as if the parts were
one file; rejects also name their `part`. Rows need not be in event order: every row is scored from the
history and strictly earlier rows, which is what one process gives a time-ordered file (or `--sort`).
"""

from __future__ import annotations

import glob as globlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fraud.data.durations import to_ns
from fraud.data.row_checks import SeenIds, empty_rejects
from fraud.scale import entity_features as ef
from fraud.scale import features as pf
from fraud.scale.entity_plan import plan_entities
from fraud.scale.time_ranges import time_divisions, time_sample
from fraud.serve.drift import DriftMonitor
from fraud.serve.reading import ScoreError, column_mapping, validate_chunk
from fraud.serve.scoring import ChunkScorer, ScoreOptions, ScoreSummary, _output_frame, start_history
from fraud.stack.scorer import check_finite

# Rows per shuffled partition, `fraud score`'s default chunk: a task holds about that many rows plus the
# stored history of their entities (or the graph window before its time range), whatever the data set's size.
ROWS_PER_PARTITION = 250_000


@dataclass(frozen=True)
class Part:
    """One input part file and where its rows sit in the whole data set."""

    index: int
    path: str
    offset: int  # 0-based row number of its first row
    rows: int

    @property
    def name(self) -> str:
        return Path(self.path).name


def list_parts(input: str | Path) -> list[Part]:
    """The Parquet part files of a folder (recursively) or a glob, sorted by path, with row offsets."""
    text = str(input)
    if any(ch in text for ch in "*?["):
        paths = sorted(globlib.glob(text, recursive=True))
    elif Path(text).is_dir():
        paths = sorted(str(p) for p in Path(text).rglob("*.parquet"))
    elif Path(text).is_file():
        paths = [text]
    else:
        raise ScoreError(f"--input {text} is neither a folder, a file nor a glob that matches anything")
    paths = [p for p in paths if Path(p).is_file()]
    if not paths:
        raise ScoreError(f"--input {text} holds no .parquet part files; --scheduler scores partitioned Parquet "
                         "(a folder of part files or a glob such as 'day/part-*.parquet')")
    bad = [p for p in paths if not p.endswith(".parquet")]
    if bad:
        raise ScoreError(f"--input {text}: {bad[0]} is not a .parquet file; --scheduler reads Parquet parts only "
                         "(convert CSV with `fraud convert` first)")
    parts, offset = [], 0
    for i, p in enumerate(paths):
        try:
            n = pq.ParquetFile(p).metadata.num_rows
        except Exception as exc:
            raise ScoreError(f"{p} is not a readable Parquet file ({exc}); re-export it") from None
        parts.append(Part(i, p, offset, n))
        offset += n
    return parts


# ---- stage 1 and 2: checks, staging, duplicate ids ---------------------------------------------------------
def validate_task(part: Part, mapping: dict, keep: list[str], max_amount: float, stage: str, rejects_dir: str):
    """Check one part: canonical rows (+ `_row`) staged as Parquet, rejects written; returns small stats."""
    raw = pq.read_table(part.path).to_pandas()
    raw.index = pd.RangeIndex(part.offset, part.offset + len(raw))
    canon, rej = validate_chunk(raw, mapping, SeenIds(), keep, max_amount)
    canon = canon.assign(_row=canon.index.to_numpy(np.int64)).reset_index(drop=True)
    canon.to_parquet(Path(stage) / f"{part.index:06d}.parquet", index=False)
    if not len(rej):
        rej = empty_rejects([str(c) for c in raw.columns])
    _write_rejects(rej.assign(part=part.name), Path(rejects_dir) / part.name)
    times = time_sample(to_ns(canon["timestamp"]))  # sorted: its first entry is the part's earliest time
    return {"rows": len(raw), "kept": len(canon), "rejected": len(rej),
            "min_ns": int(times[0][0]) if len(canon) else None, "times": times}


def _write_rejects(rej: pd.DataFrame, path: Path) -> None:
    cols = ["row", "reason", "part"] + [c for c in rej.columns if c not in ("row", "reason", "part")]
    rej[cols].sort_values("row", kind="stable").to_parquet(path, index=False)


def duplicate_ids(client, stage_files: list[str]) -> pd.DataFrame:
    """Kept rows whose id an earlier part already kept: `_row`, `transaction_id`, `_first` (that row)."""
    import dask.dataframe as dd

    ids = dd.read_parquet(stage_files, columns=["transaction_id", "_row"])
    # one shuffle by id and a per-partition check: a groupby's result would gather every distinct id of the
    # data set in one partition, the one thing here that grows with the rows
    by_id = ids.shuffle("transaction_id", npartitions=len(stage_files))
    return client.compute(by_id.map_partitions(repeated_ids_task, meta=repeated_ids_task(ids._meta))).result()


def repeated_ids_task(ids: pd.DataFrame) -> pd.DataFrame:
    """Rows of `ids` (`transaction_id`, `_row`; all rows of their ids) whose id has a smaller `_row`."""
    first = ids.groupby("transaction_id", sort=False, dropna=False)["_row"].transform("min")
    out = ids.assign(_first=first.to_numpy(np.int64) if len(ids) else np.zeros(0, np.int64))
    return out[out["_row"] != out["_first"]].sort_values("_row").reset_index(drop=True)


def duplicate_rejects_task(part: Part, dups: pd.DataFrame, rejects_dir: str) -> None:
    """Add the part's cross-part duplicates to its rejects file (the raw row, `fraud score`'s wording)."""
    raw = pq.read_table(part.path).to_pandas().astype("string")
    raw.columns = [str(c) for c in raw.columns]
    extra = raw.iloc[dups["_row"].to_numpy() - part.offset].reset_index(drop=True)
    extra.insert(0, "reason", pd.array([f"duplicate transaction_id (value {i!r}, first in row {f + 1:,})"
                                        for i, f in zip(dups["transaction_id"], dups["_first"], strict=True)],
                                       dtype="string"))
    extra.insert(0, "row", (dups["_row"].to_numpy() + 1).astype(np.int64))
    path = Path(rejects_dir) / part.name
    _write_rejects(pd.concat([pd.read_parquet(path), extra.assign(part=part.name)], ignore_index=True), path)


# ---- stage 4: per part, matrix -> scores -----------------------------------------------------------------
def finish_task(pieces: pd.DataFrame, part: Part, stage: str, drop_rows: np.ndarray, model, options: ScoreOptions,
                mapping: dict, keep: list[str], out_dir: str, src_cols: list[str], dst_cols: list[str],
                graph_cols: list[str]):
    """Assemble one part's booster matrix from the feature pieces (index `_row`), score it, write the output
    part; returns (scored, flagged, drift monitor)."""
    canon = pd.read_parquet(Path(stage) / f"{part.index:06d}.parquet")
    canon = canon[~canon["_row"].isin(drop_rows)].sort_values("_row").reset_index(drop=True)
    rows = canon["_row"].to_numpy()
    kind = pieces["_kind"].to_numpy()

    def take(k: int, cols: list[str]) -> np.ndarray:
        got = pieces[kind == k][cols]
        missing = np.setdiff1d(rows, got.index.to_numpy())
        if len(missing):
            raise AssertionError(f"{part.path}: no features of kind {k} for row {int(missing[0]) + 1}; please report this")
        return got.reindex(rows).to_numpy(np.float32)

    base = pd.DataFrame(np.concatenate([take(ef.KIND_SRC, src_cols), take(ef.KIND_DST, dst_cols)], axis=1),
                        columns=src_cols + dst_cols)[model.base_names]
    blocks = {"base": base.to_numpy(np.float32)}
    if graph_cols:
        g = take(ef.KIND_GRAPH, graph_cols)
        if model.cfg.parts.paths:
            blocks["paths"] = g[:, :1]
        if model.cfg.parts.gnn:
            blocks["gnn"] = g[:, 1:] if model.cfg.parts.paths else g
    if model.cfg.parts.autoencoder:
        blocks["ae"] = model._ae_block(blocks)
    x = model._stack(blocks)
    check_finite(x, model.feature_names_, "scoring")
    drift = DriftMonitor.for_model(model, options.drift)
    scorer = ChunkScorer(model, model.history_, options, None)
    p = scorer.scorer.predict(x)
    flag = p > model.threshold_
    res = pd.DataFrame({"probability": p, "flag": flag})
    reasons = scorer.reason_table(x, flag)
    if reasons is not None:
        res = pd.concat([res, reasons.reset_index(drop=True)], axis=1)
    drift.update(x, canon, p)
    out = _output_frame(canon, res, mapping, keep)
    tmp = Path(out_dir) / f".{part.name}.partial"
    out.to_parquet(tmp, index=False)
    os.replace(tmp, Path(out_dir) / part.name)
    return len(out), int(flag.sum()), drift


def merge_drift(monitors: list[DriftMonitor]) -> DriftMonitor:
    """One monitor holding the counts of all (same model and config): as if one monitor saw every part."""
    total = monitors[0]
    for m in monitors[1:]:
        total.absorb(m)
    return total


# ---- driver ------------------------------------------------------------------------------------------
def score_parts(model, input: str | Path, output: str | Path, client, mapping: dict[str, str] | None = None,
                rejects: str | Path | None = None, drift_path: str | Path | None = None,
                options: ScoreOptions | None = None, buckets: int | None = None,
                time_ranges: int | None = None, rows_per_partition: int = ROWS_PER_PARTITION) -> ScoreSummary:
    """Score the Parquet parts of `input` into folder `output` (one part per input part) on `client`'s
    cluster; rejects into folder `rejects` (default OUTPUT.rejects), drift.json beside; see the module
    docstring. `buckets` / `time_ranges`: hash buckets of the entity shuffle and ranges of the graph (default:
    2 per worker thread, more when needed to keep them near `rows_per_partition` rows; entities with more
    rows than half of it are cut by time instead, see `fraud.scale.entity_plan`), so a worker's memory does
    not grow with the data set."""
    import dask
    import dask.dataframe as dd

    opt = options or ScoreOptions()
    pf.check_partitionable(model)
    mapping = mapping or column_mapping()
    keep = list(opt.keep)
    output = Path(output)
    rejects = Path(rejects) if rejects else output.with_name(output.name + ".rejects")
    drift_path = Path(drift_path) if drift_path else output.with_name(output.name + ".drift.json")
    t_start = time.perf_counter()
    parts = list_parts(input)
    for d in (output, rejects):
        if d.exists() and any(d.iterdir()):
            raise ScoreError(f"{d} exists and is not empty; choose a new folder (outputs are never mixed)")
        d.mkdir(parents=True, exist_ok=True)
    stage = output / "_staging"
    stage.mkdir()
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now

    threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) or 1
    total = sum(p.rows for p in parts)
    time_ranges = time_ranges or max(2 * threads, -(-total // rows_per_partition))
    try:
        stats = client.gather(client.map(validate_task, parts, mapping=mapping, keep=keep,
                                         max_amount=opt.max_amount, stage=str(stage), rejects_dir=str(rejects),
                                         pure=False))
        stage_files = [str(stage / f"{p.index:06d}.parquet") for p in parts]
        dups = duplicate_ids(client, stage_files)
        if len(dups):
            client.gather([client.submit(duplicate_rejects_task, p, d, str(rejects), pure=False)
                           for p, d in ((parts[i], g) for i, g in _by_part(dups, parts))])
        lap("checks_s")
        starts = [s["min_ns"] for s in stats if s["min_ns"] is not None]
        history, mode = start_history(model, min(starts) if starts else None)
        scored = flagged = 0
        monitors = []
        live = [p for p, s in zip(parts, stats, strict=True) if s["kept"]]
        if live:
            wm = pf.worker_model(model)
            model_d = dask.delayed(wm, pure=True)
            hist_d = dask.delayed(history, pure=True)
            tail_d = dask.delayed(history.tail, pure=True)
            events = dd.read_parquet([stage_files[p.index] for p in live], columns=ef.EVENT_COLUMNS)
            drop = dups["_row"].to_numpy(np.int64)
            if len(drop):
                events = events[~events["_row"].isin(drop)]
            src_cols, dst_cols = ef.side_columns(model.base_names)
            graph_cols = pf.graph_columns(model)
            samples = [s["times"] for s in stats if s["kept"]]
            counts = client.compute(ef.entity_counts(events, rows_per_partition // 2)).result()
            plan = plan_entities(counts, 2 * (sum(s["kept"] for s in stats) - len(drop)), rows_per_partition,
                                 2 * threads, samples, buckets)
            lap("plan_s")
            pieces = [ef.entity_blocks(events, model_d, hist_d, plan, history.tail_seconds, src_cols, dst_cols)]
            if graph_cols:
                g = model.cfg.graph
                cuts = time_divisions(samples, time_ranges)
                pieces.append(pf.graph_blocks(events, model_d, tail_d, graph_cols, cuts, g.window_ns,
                                              g.every_ns))
            divisions = tuple(p.offset for p in live) + (live[-1].offset + live[-1].rows,)
            together = dd.concat(pieces).set_index("_row", divisions=divisions)
            drop_d = dask.delayed(drop, pure=True)
            tasks = [dask.delayed(finish_task)(piece, p, str(stage), drop_d, model_d, opt, mapping, keep,
                                               str(output), src_cols, dst_cols, graph_cols)
                     for piece, p in zip(together.to_delayed(), live, strict=True)]
            results = client.gather(client.compute(tasks))
            for n, f, mon in results:
                scored, flagged = scored + n, flagged + f
                monitors.append(mon)
        empty = [p for p in parts if p not in live]
        for p in empty:  # every input part has an output part, even with all its rows rejected
            _empty_output(mapping, keep, opt).to_parquet(output / p.name, index=False)
        lap("score_s")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    drift = merge_drift(monitors) if monitors else DriftMonitor.for_model(model, opt.drift)
    summary = ScoreSummary(str(input), str(output), str(rejects), drift_path=str(drift_path), history=mode)
    summary.rows_read = sum(s["rows"] for s in stats)
    summary.rejected = sum(s["rejected"] for s in stats) + len(dups)
    summary.scored, summary.flagged = scored, flagged
    summary.drift = drift.write(drift_path)
    summary.elapsed_s = time.perf_counter() - t_start
    summary.timings = timings
    if summary.rows_read != summary.scored + summary.rejected:
        raise AssertionError(f"row accounting broke ({summary}); please report this")
    return summary


def _by_part(dups: pd.DataFrame, parts: list[Part]):
    """(part index, its duplicate rows) for the parts holding any."""
    offsets = np.array([p.offset for p in parts])
    which = np.searchsorted(offsets, dups["_row"].to_numpy(), side="right") - 1
    for i in np.unique(which):
        yield int(i), dups[which == i].sort_values("_row")


def _empty_output(mapping: dict[str, str], keep: list[str], opt: ScoreOptions) -> pd.DataFrame:
    from fraud.serve.scoring import _empty_output as empty

    return empty(mapping, keep, opt)
