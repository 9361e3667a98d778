"""Batch scoring of transaction files: chunked streaming, rejects, reason codes, drift and a summary.

    summary = score_file(FraudModel.load(dir), "new.parquet", "scored.parquet")   # ScoreSummary

Every input row ends in exactly one place: the output (input id column(s), probability, flag at the model's
threshold, reason_1..reason_3) in input row order, or the rejects file (`row`: 1-based data row number, the
first row after a CSV header being 1; `reason`; the row's original values as text). `rows_read = scored +
rejected` always.

Point in time: the model scores a row from its stored history plus strictly earlier rows of the file, via a
`fraud.features.History` carried from chunk to chunk (what `FraudModel.stream()` does), so a row gets the same
score whatever the chunk size. That needs the file in event order (ties allowed). A file that is not is
detected at its first out-of-order row and refused with a message naming the row, unless `sort=True`
(`--sort`), which reads the whole file into memory, scores it in time order and writes rows back in file
order. If the file starts before the end of the model's stored history (e.g. re-scoring training data), the
file is scored as its own history, without the stored one, as `FraudModel.score(history='auto')` does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from fraud.data.durations import to_ns
from fraud.data.load import load_transactions
from fraud.data.row_checks import (  # `fraud convert`'s checks and rejects layout
    SeenIds,
    empty_rejects,
)
from fraud.features.history import History
from fraud.models.booster import contributions
from fraud.models.treeshap import explainer
from fraud.serve.drift import DriftConfig, DriftMonitor
from fraud.serve.reading import ScoreError, column_mapping, validate_chunk
from fraud.serve.reasons import ReasonCoder, reason_frame
from fraud.serve.replays import state_start
from fraud.serve.store import StateStore
from fraud.stack.scorer import OutOfOrder, Scorer
from shared.concurrency import Behind
from shared.tabular import TableWriter, iter_chunks, prefetch, table_format

log = logging.getLogger("fraud.serve.scoring")
Reasons = Literal["all", "exact", "approx", "flagged", "none"]
REASON_MODES = ("all", "exact", "approx", "flagged", "none")


@dataclass
class ScoreOptions:
    """How `score_file` reads, explains and checks a file."""

    # Each chunk's features are computed over the stored history tail (the longest window, ~200k rows on the
    # 1M-row benchmark) plus the chunk, so larger chunks mean fewer passes over the tail: 250k rows cost
    # 8.3x a bare XGBoost predict vs 15.8x at 100k, for 1.82 vs 1.78 GiB peak RSS (docs/fraud-scoring.md).
    chunk_rows: int = 250_000
    # Reason codes from XGBoost contributions, where a person reads them by default. flagged: exact TreeSHAP
    # for flagged rows, none for the others; all: flagged rows exact, the Saabas approximation (about
    # predict's cost, ~7 s per 1M rows on 2 cores) for the others; exact: TreeSHAP for every row (~30x
    # slower); approx: Saabas for every row; none: no reason columns (fastest).
    reasons: Reasons = "flagged"
    # Amounts above this are rejected rows: they would overflow the integer cents of the history sums.
    max_amount: float = 1e9
    top_k: int = 3
    keep: list[str] = field(default_factory=list)  # extra input columns copied to the output
    sort: bool = False
    drift: DriftConfig = field(default_factory=DriftConfig)
    progress: bool = True

    def __post_init__(self):
        if self.chunk_rows is not None and self.chunk_rows < 1:
            raise ScoreError(f"chunk_rows must be >= 1, got {self.chunk_rows}")
        if self.reasons not in REASON_MODES:
            raise ScoreError(f"reasons must be one of {', '.join(REASON_MODES)}; got {self.reasons!r}")
        if not 0 <= self.top_k <= 10:
            raise ScoreError(f"top_k must be in 0..10, got {self.top_k}")


@dataclass
class ScoreSummary:
    """What one scoring run did (rows_read == scored + rejected)."""

    input: str
    output: str
    rejects: str
    rows_read: int = 0
    scored: int = 0
    rejected: int = 0
    replayed: int = 0  # ids the --state store already held with the same payload: stored results
    flagged: int = 0
    elapsed_s: float = 0.0
    history: str = "stored"
    drift_path: str | None = None
    drift: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        pct = 100 * self.flagged / self.scored if self.scored else 0.0
        return [f"rows read      {self.rows_read:>12,}  ({self.input})",
                f"scored         {self.scored:>12,}  -> {self.output}",
                f"rejected       {self.rejected:>12,}  -> {self.rejects}",
                *([f"replayed       {self.replayed:>12,}  (already in --state: the stored results)"]
                  if self.replayed else []),
                f"flagged        {self.flagged:>12,}  ({pct:.2f} % of scored)",
                f"throughput     {self.rows_per_s:>12,.0f}  rows/s",
                f"elapsed        {self.elapsed_s:>12.2f}  s{self._split()}"]

    def _split(self) -> str:
        """Where the time went, so a user sees what --reasons costs (features include the GNN)."""
        t = self.timings
        if not t:
            return ""
        other = self.elapsed_s - t.get("features_s", 0) - t.get("predict_s", 0) - t.get("reasons_s", 0)
        slow = t.get("reasons_s", 0) > 0.3 * self.elapsed_s
        hint = "; --reasons flagged (flagged rows only, the default) or none is faster" if slow else ""
        return (f"  (features {t.get('features_s', 0):.1f}, predict {t.get('predict_s', 0):.1f}, reasons "
                f"{t.get('reasons_s', 0):.1f}, read/check/write {max(other, 0):.1f}{hint})")


# ---- scoring -----------------------------------------------------------------------------------------
class ChunkScorer:
    """`fraud.stack.scorer.Scorer` with reason codes, drift counts and timings: what `score_file` runs.

    `score(chunk)` returns the booster matrix and the output columns, then absorbs the chunk into the
    history (unless remember=False). With `behind`, the drift counts of a chunk are updated on its thread
    while the caller goes on (in chunk order; `behind.wait()` before reading the monitor).
    """

    def __init__(self, model, history: History, options: ScoreOptions | None = None,
                 drift: DriftMonitor | None = None, behind: Behind | None = None):
        self.model, self.scorer = model, Scorer(model, history)
        self.opt = options or ScoreOptions()
        self.coder = ReasonCoder(model.feature_names_, getattr(model, "reference_", None))
        self.drift, self.behind = drift, behind
        self.timings = {"features_s": 0.0, "predict_s": 0.0, "reasons_s": 0.0}
        if self.opt.reasons != "none" and self.opt.top_k:
            # The reason-code tables (~1 s on the default model) are built beside the first chunk's features
            # instead of after them; the first contributions call waits for them (explainer's lock).
            threading.Thread(target=explainer, args=(model.booster_,), daemon=True).start()

    @property
    def history(self) -> History:
        return self.scorer.history

    def score(self, chunk: pd.DataFrame, remember: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
        """(matrix [n, d], frame with probability, flag, reason_1..k) for a canonical chunk in event order."""
        self.scorer.check_order(chunk)
        t0 = time.perf_counter()
        x = self.scorer.matrix(chunk)
        t1 = time.perf_counter()
        p = self.scorer.predict(x)
        flag = p > self.model.threshold_
        t2 = time.perf_counter()
        out = pd.DataFrame({"probability": p, "flag": flag}, index=chunk.index)
        reasons = self.reason_table(x, flag)
        if reasons is not None:
            reasons.index = chunk.index
            out = pd.concat([out, reasons], axis=1)
        t3 = time.perf_counter()
        self.timings["features_s"] += t1 - t0
        self.timings["predict_s"] += t2 - t1
        self.timings["reasons_s"] += t3 - t2
        if self.drift is not None:
            if self.behind is not None:
                self.behind.submit(self.drift.update, x, chunk, p)
            else:
                self.drift.update(x, chunk, p)
        if remember:
            self.scorer.absorb(chunk)
        return x, out

    def contributions(self, x: np.ndarray, exact: bool = True) -> np.ndarray:
        """Contributions [n, d] (bias dropped) in log-odds: exact TreeSHAP or the Saabas approximation."""
        m = self.model
        return contributions(m.booster_, x, m.feature_names_, exact, m.cfg.booster.n_jobs)[:, :-1]

    def reason_table(self, x: np.ndarray, flag: np.ndarray) -> pd.DataFrame | None:
        """reason_1..k for the rows of x per the `reasons` mode (see ScoreOptions), or None for 'none'."""
        mode, k = self.opt.reasons, self.opt.top_k
        if mode == "none" or k == 0:
            return None
        if mode in ("exact", "approx"):
            return self.coder.top(self.contributions(x, exact=mode == "exact"), x, k)
        labels = np.full((len(x), k), "", dtype=object)
        groups = [(np.flatnonzero(flag), True)]
        if mode == "all":
            groups.append((np.flatnonzero(~flag), False))
        for rows, exact in groups:
            if len(rows):
                labels[rows] = self.coder.labels(self.contributions(x[rows], exact), x[rows], k)
        return reason_frame(labels)


def start_history(model, first_ns: int | None, start: History | None = None) -> tuple[History, str]:
    """The model's stored history (or `start`: the state's), or an empty one if the data starts before its
    end ('stored'/'state'/'none')."""
    h = start if start is not None else model.history_
    if first_ns is not None and h.max_ns is not None and first_ns < h.max_ns:
        log.warning("the file starts at %s, before the end of the model's stored history (%s): it is scored "
                    "with its own earlier rows as history", pd.Timestamp(first_ns, tz="UTC"),
                    pd.Timestamp(h.max_ns, tz="UTC"))
        return History(h.tail_seconds), "none"
    return h.copy(), "stored" if start is None else "state"


def _reject_path(output: Path) -> Path:
    suffix = "".join(output.suffixes) or ".csv"
    return output.with_name(output.name[: len(output.name) - len(suffix)] + ".rejects" + suffix)


def _partial(path: Path) -> Path:
    suffix = "".join(path.suffixes)
    return path.with_name(f".{path.name[: len(path.name) - len(suffix)]}.partial-{os.getpid()}{suffix}")


def _output_frame(chunk: pd.DataFrame, scored: pd.DataFrame, mapping: dict[str, str], keep: list[str]):
    out = pd.DataFrame({mapping["transaction_id"]: chunk["transaction_id"].to_numpy()}, index=chunk.index)
    for c in keep:
        if c != mapping["transaction_id"]:
            out[c] = chunk[f"_keep_{c}"].to_numpy()
    return pd.concat([out, scored], axis=1)


def score_file(model, input: str | Path, output: str | Path, mapping: dict[str, str] | None = None,
               rejects: str | Path | None = None, drift_path: str | Path | None = None,
               options: ScoreOptions | None = None, preset: str | None = None,
               state: StateStore | None = None) -> ScoreSummary:
    """Score `input` (CSV/Parquet) into `output` (same or chosen format) with rejects and drift; see the
    module docstring. Outputs appear only when the run succeeds (written to a partial file, then renamed).
    `state`: score after the service's state store (`fraud.serve.replays`; adds a `replay` column)."""


    opt = options or ScoreOptions()
    input, output = Path(input), Path(output)
    table_format(output)  # fail on a bad suffix before any work
    rejects = Path(rejects) if rejects else _reject_path(output)
    drift_path = Path(drift_path) if drift_path else output.with_name(output.name.split(".")[0] + ".drift.json")
    mapping = column_mapping() if preset else (mapping or column_mapping())
    keep = list(opt.keep)
    if preset and keep:
        raise ScoreError("--keep does not combine with --preset yet (the preset loader returns canonical "
                         "columns only); map columns with --mapping/--col-* to keep input columns")
    summary = ScoreSummary(str(input), str(output), str(rejects), drift_path=str(drift_path))
    t_start = time.perf_counter()
    drift = DriftMonitor.for_model(model, opt.drift)
    tmp_out, tmp_rej = _partial(output), _partial(rejects)
    scorer: ChunkScorer | None = None
    start, replays = state_start(model, state) if state is not None else (None, None)
    prev_last: tuple[int, int] | None = None  # (1-based file row, ns) of the last row scored
    raw_columns: list[str] = []
    try:
        # `behind` (inside the writers' block, so it has finished before they close): the output writes and
        # drift counts of a chunk, in order, while the next chunk is scored.
        with TableWriter(tmp_out) as out_w, TableWriter(tmp_rej) as rej_w, \
                tqdm(total=_row_count(input), unit="rows", desc="scoring", disable=not opt.progress,
                     smoothing=0.1) as bar, Behind(depth=2) as behind:
            for n_raw, canon, rej, raw_columns in _validated(  # noqa: B007 (used after the loop)
                    input, mapping, opt, keep, preset):
                summary.rows_read += n_raw
                results = []
                if replays is not None:
                    canon, (done, stored), conflicts = replays.split(canon, mapping)
                    rej = pd.concat([rej, conflicts], ignore_index=True) if len(conflicts) else rej
                    summary.replayed += len(done)
                    summary.flagged += int(stored["flag"].sum())
                    if len(done):
                        results.append(_output_frame(done, stored.drop(columns=[] if opt.reasons != "none" else [
                            c for c in stored.columns if c.startswith("reason_")]).assign(replay=True),
                            mapping, keep))
                summary.rejected += len(rej)
                if len(rej):
                    rej_w.write(rej)
                if not len(canon):
                    if results:
                        behind.submit(out_w.write, pd.concat(results).sort_index(kind="stable"))
                    bar.update(n_raw)
                    continue
                parts = _sorted_parts(canon, opt.chunk_rows) if opt.sort else [canon]
                for part in parts:
                    if scorer is None:
                        hist, summary.history = start_history(model, int(to_ns(part["timestamp"])[0]), start)
                        scorer = ChunkScorer(model, hist, opt, drift, behind)
                    try:
                        _, res = scorer.score(part)
                    except OutOfOrder as exc:
                        raise _order_error(input, part, exc, prev_last) from None
                    prev_last = (int(part.index[-1]) + 1, int(to_ns(part["timestamp"].iloc[-1:])[0]))
                    summary.flagged += int(res["flag"].sum())
                    summary.scored += len(part)
                    results.append(_output_frame(part, res.assign(replay=False) if replays else res, mapping, keep))
                    if opt.sort:
                        bar.update(len(part))
                # In sort mode the parts come in time order; the output goes back to file order.
                behind.submit(out_w.write, pd.concat(results).sort_index(kind="stable") if len(results) > 1
                              else results[0])
                if not opt.sort:
                    bar.update(n_raw)
            if summary.scored + summary.replayed == 0:
                empty = _empty_output(mapping, keep, opt)
                behind.submit(out_w.write, empty.assign(**({"replay": pd.Series(dtype="bool")} if replays else {})))
            if summary.rejected == 0:
                rej_w.write(empty_rejects(raw_columns))
    except BaseException:
        for p in (tmp_out, tmp_rej):
            p.unlink(missing_ok=True)
        raise
    os.replace(tmp_out, output)
    os.replace(tmp_rej, rejects)
    summary.drift = drift.write(drift_path)
    summary.elapsed_s = time.perf_counter() - t_start
    if scorer is not None:
        summary.timings = {k: round(v, 3) for k, v in scorer.timings.items()}
    if summary.rows_read != summary.scored + summary.replayed + summary.rejected:
        raise AssertionError(f"row accounting broke ({summary}); please report this")
    return summary


def _validated(input: Path, mapping: dict[str, str], opt: ScoreOptions, keep: list[str], preset: str | None):
    """Yield (raw rows, canonical chunk, rejects, raw column names) chunk by chunk (one chunk with --sort)."""

    if preset:
        yield from _preset_chunks(input, preset)
        return
    seen = SeenIds()

    def checked():
        for raw in iter_chunks(input, chunk_rows=None if opt.sort else opt.chunk_rows):
            canon, rej = validate_chunk(raw, mapping, seen, keep, opt.max_amount)
            yield len(raw), canon, rej, [str(c) for c in raw.columns]

    yield from prefetch(checked())  # the next chunk is read and checked while this one is scored


def _sorted_parts(canon: pd.DataFrame, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    order = np.argsort(to_ns(canon["timestamp"]), kind="stable")
    step = chunk_rows or max(len(canon), 1)
    for a in range(0, len(canon), step):
        yield canon.iloc[order[a:a + step]]


def _order_error(input: Path, canon: pd.DataFrame, exc: OutOfOrder, prev_last) -> ScoreError:
    row = int(canon.index[exc.pos]) + 1
    if exc.pos == 0 and prev_last is not None:
        prev_row = prev_last[0]
    else:
        prev_row = int(canon.index[exc.pos - 1]) + 1 if exc.pos else None
    where = f"row {prev_row:,}" if prev_row else "the model's stored history"
    return ScoreError(
        f"{input} is not in event order: row {row:,} ({pd.Timestamp(exc.t_ns, tz='UTC')}) is earlier than "
        f"{where} ({pd.Timestamp(exc.prev_ns, tz='UTC')}). Scores use each row's earlier history, so rows "
        "must come in timestamp order (ties are fine). Sort the file by timestamp, or pass --sort to sort it "
        "in memory (the output keeps the file's row order).")


def _empty_output(mapping: dict[str, str], keep: list[str], opt: ScoreOptions) -> pd.DataFrame:
    cols = {mapping["transaction_id"]: pd.Series(dtype="string")}
    cols.update({c: pd.Series(dtype="string") for c in keep if c != mapping["transaction_id"]})
    cols.update({"probability": pd.Series(dtype="float64"), "flag": pd.Series(dtype="bool")})
    if opt.reasons != "none":
        cols.update({f"reason_{i + 1}": pd.Series(dtype="string") for i in range(opt.top_k)})
    return pd.DataFrame(cols)


def _row_count(path: Path) -> int | None:
    """Rows of a Parquet file from its footer (None for CSV: the bar then counts without a total)."""
    try:

        if table_format(path) == "parquet" and path.is_file():

            return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # the reader reports unreadable files with a better message
        return None
    return None


def _preset_chunks(input: Path, preset: str):
    """One (rows, canonical, rejects, columns) from `fraud.data.load.load_transactions` (whole file)."""

    df, rej = load_transactions(input, preset=preset)
    df = df.reset_index(drop=True)
    yield len(df) + len(rej), df, rej, [str(c) for c in rej.columns]
