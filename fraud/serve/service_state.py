"""The running service's state and the one path every scoring request takes (`fraud serve`).

    state = ServiceState(model, model_dir, max_batch, AdmissionConfig(), store)   # restores from the store
    results = state.score(transactions, remember=True)                              # or raises Refused

A request with `remember` (absorbing) goes through, under one lock:
1. idempotency: ids already absorbed with the same payload are answered with their stored result (`replay`),
   the same id with another payload refuses the request (409);
2. admission (`fraud.serve.admission`): event-time rules, bounds, the state's integer capacity (422);
3. scoring of the new rows in event order against the live history (late rows as of their own time);
4. the rows and their results are committed to the store (`fraud.serve.store`), then absorbed in memory, then
   answered: an acknowledged transaction is always in the store, and the memory never holds one that is not.

Absorbing requests that wait for the lock are taken together by whichever of them gets it first: their new
rows are scored as one batch in event order and committed in one transaction (one fsync). A row sees every
absorbed row and every row of the same batch earlier than it, as if the requests had come one after another
in event order. Scoring without absorbing (`remember: false`, a what-if) runs alone and writes nothing.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fraud.data.columns import TxColumns
from fraud.features.graph import one_torch_thread
from fraud.models.booster import contributions
from fraud.models.treeshap import explainer
from fraud.serve.admission import AdmissionConfig, check_rows, to_ns
from fraud.serve.live_history import LiveHistory
from fraud.serve.pruning import PruneConfig, Pruner, restore
from fraud.serve.reasons import ReasonCoder
from fraud.serve.schemas import Reason, Scored, Transaction
from fraud.serve.store import StateStore, canonical_rows
from fraud.stack.feedback import check_feedback
from fraud.stack.model import PARALLEL_ROWS
from fraud.stack.scorer import LiveScorer
from shared.runs import load_manifest


class Refused(Exception):
    """A request refused as a whole: HTTP status and [(location, message)] (locations as pydantic gives them)."""

    def __init__(self, status: int, problems: list[tuple[list, str]]):
        super().__init__(problems[0][1] if problems else str(status))
        self.status, self.problems = status, problems


@dataclass
class _Request:
    txs: list[Transaction]
    rows: TxColumns  # canonical rows in request order
    remember: bool
    done: bool = False
    results: list[Scored] | None = None
    error: Exception | None = None
    stored: dict[str, dict] | None = None  # store rows of ids already absorbed (replays), by id
    new: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    ids: list[str] = field(default_factory=list)
    t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [n] ns


def _loc(i: int, name: str) -> list:
    return ["body", "transactions", i, name]


class ServiceState:
    """The model, its live history and store, counters, and the scoring path (module docstring)."""

    def __init__(self, model, model_dir: Path | None, max_batch: int, admission: AdmissionConfig,
                 store: StateStore | None = None, writes: bool = True, top_k: int = 3,
                 prune: PruneConfig | None = None):
        self.model, self.model_dir, self.max_batch, self.top_k = model, model_dir, max_batch, top_k
        self.admission, self.store = admission, store
        self.writes = writes and store is not None
        self.floor_ns = model.history_.max_ns  # the service scores only what comes after the training data
        lateness_s = admission.lateness_ns // 10**9
        self.pruner: Pruner | None = None
        if store is not None:
            live, self.restored = self._restore(model, lateness_s, prune or PruneConfig())
        else:
            live, self.restored = LiveHistory(model.history_, lateness_s), {"transactions": 0, "labels": 0}
        self.scorer = LiveScorer(model, live)
        self.coder = ReasonCoder(model.feature_names_, getattr(model, "reference_", None))
        explainer(model.booster_)  # the reason-code tables are built at start-up, not by the first request
        self.lock, self._queue_lock, self._queue = threading.Lock(), threading.Lock(), []
        self.started = time.time()
        self.counts = {"requests": 0, "scored": 0, "replays": 0, "absorbed": 0}
        self.manifest = load_manifest(model_dir, verify=False) if model_dir is not None else None

    @property
    def live(self) -> LiveHistory:
        return self.scorer.history

    def _restore(self, model, lateness_s: int, prune: PruneConfig) -> tuple[LiveHistory, dict]:
        """The live history from the store (checkpoint, then the rows after it) and the label book."""
        live, replayed, start = restore(model, self.store, lateness_s)
        if self.writes:
            self.pruner = Pruner(prune, self.store, live, start)
            self.pruner.absorbed(replayed, live)  # a long replay is checkpointed now, not by the first request
        labels = self.store.labels()
        known = set(model.labels_.rows["transaction_id"].tolist())
        fresh = labels[~labels["transaction_id"].isin(known)]  # fed to the model directory meanwhile: once
        model.labels_.add(fresh)
        return live, {"transactions": replayed, "from_checkpoint_seq": start["seq"], "labels": len(fresh)}

    # ---- scoring ---------------------------------------------------------------------------------------
    def score(self, txs: list[Transaction], remember: bool) -> list[Scored]:
        """Results in request order (module docstring); raises Refused for a request that is refused."""
        ids = [t.transaction_id for t in txs]
        if len(set(ids)) < len(ids):
            seen: set[str] = set()
            i = next(i for i, v in enumerate(ids) if v in seen or seen.add(v))
            raise Refused(422, [(_loc(i, "transaction_id"),
                                 f"duplicate transaction_id {txs[i].transaction_id!r} in this batch")])
        t = np.array([to_ns(x.timestamp) for x in txs], dtype=np.int64)
        rows = TxColumns(ids, t, [x.source for x in txs], [x.target for x in txs], [x.amount for x in txs])
        req = _Request(txs, rows, remember, ids=ids, t=t)
        if remember:
            if not self.writes:
                raise Refused(403, [(["body", "remember"], "this service does not absorb transactions (read-only); "
                                     "send \"remember\": false to score without absorbing")])
            with self._queue_lock:
                self._queue.append(req)
            while not req.done:  # whoever holds the lock serves every request waiting for it
                with self.lock:
                    if not req.done:
                        with self._queue_lock:
                            batch, self._queue = self._queue, []
                        self._absorb(batch)
        else:
            with self.lock:
                self._admit(req, self.live.max_ns)
                if req.error is None:
                    self._answer([req], absorb=False)
        if req.error is not None:
            raise req.error
        return req.results  # type: ignore[return-value]

    def _admit(self, req: _Request, newest: int | None) -> None:
        """Replays, conflicts (409), event-time rules, bounds and capacity (422): sets req.error or req.new."""
        rows = req.rows
        stored = self.store.lookup_rows(req.ids) if self.store is not None else None
        req.stored = stored or None
        req.new = np.ones(len(rows), bool)
        conflicts = []
        if req.stored is not None:
            for i, tid in enumerate(req.ids):
                if tid in req.stored:
                    diff = payload_differences(int(rows.t[i]), rows.source[i], rows.target[i],
                                               float(rows.amount[i]), req.stored[tid])
                    if diff:
                        conflicts.append((_loc(i, "transaction_id"), f"transaction_id {tid!r} was already absorbed "
                                          f"with another {diff}; a transaction_id names one transaction: send a "
                                          "new id for a new transaction"))
                    req.new[i] = False
        if conflicts:
            req.error = Refused(409, conflicts)
            return
        new = rows.take(np.flatnonzero(req.new)) if not req.new.all() else rows
        problems = [(_loc(int(np.flatnonzero(req.new)[i]), f), m)
                    for i, f, m in check_rows(new.t, new.amount, self.admission, newest, self.floor_ns,
                                              time.time_ns())]
        if not problems and len(new):
            over = np.flatnonzero(self.live.over_capacity_of(new.amount, new.source, new.target))
            problems = [(_loc(int(np.flatnonzero(req.new)[i]), "amount"),
                         "the sender's or receiver's running sums would pass the state's exact-integer capacity "
                         "(2^62); this entity cannot absorb more history") for i in over.tolist()]
        if problems:
            req.error = Refused(422, problems)

    def _absorb(self, batch: list[_Request]) -> None:
        """One pass over the waiting absorbing requests: admit each, score the admitted ones together."""
        try:
            self._absorb_pass(batch)
        except Exception as exc:  # no request of the pass may wait for an answer that will not come
            for req in batch:
                if not req.done:
                    req.error, req.done = exc, True
            raise

    def _absorb_pass(self, batch: list[_Request]) -> None:
        newest, claimed, admitted = self.live.max_ns, set(), []
        for req in batch:
            if req.done:
                continue
            ids = set(req.ids)
            if ids & claimed:  # the same id in two waiting requests: the second waits for the next pass
                with self._queue_lock:
                    self._queue.insert(0, req)
                continue
            self._admit(req, newest)
            if req.error is not None:
                req.done = True
                continue
            admitted.append(req)
            claimed |= ids
            if req.new.any():
                t = int(req.t[req.new].max())
                newest = t if newest is None else max(newest, t)
        if admitted:
            self._answer(admitted, absorb=True)

    def _answer(self, reqs: list[_Request], absorb: bool) -> None:
        """Score the requests' new rows as one batch in event order; store, absorb and fill the results."""
        try:
            if len(reqs) == 1 and reqs[0].new.all():  # the common case: one request, nothing replayed
                n = len(reqs[0].rows)
                rows, req_of, pos_of = reqs[0].rows, np.zeros(n, np.int64), np.arange(n)
                t = reqs[0].t
            else:
                rows = TxColumns.concat([r.rows.take(np.flatnonzero(r.new)) for r in reqs])
                req_of = np.concatenate([np.full(int(r.new.sum()), k, np.int64) for k, r in enumerate(reqs)])
                pos_of = np.concatenate([np.flatnonzero(r.new) for r in reqs])
                t = np.concatenate([r.t[r.new] for r in reqs])
            order = np.argsort(t, kind="stable")
            if (order != np.arange(len(order))).any():
                rows, req_of, pos_of = rows.take(order), req_of[order], pos_of[order]
            scored = self._score_rows(rows, t[order]) if len(rows) else None
            if absorb and scored is not None:
                self.store.append(scored)  # durable before anything is absorbed or answered
                self.scorer.absorb(rows)
                self.counts["absorbed"] += len(rows)
                if self.pruner is not None:
                    self.pruner.absorbed(len(rows), self.live)
            for k, r in enumerate(reqs):
                out: list[Scored | None] = [None] * len(r.rows)
                if scored is not None:
                    for j in np.flatnonzero(req_of == k).tolist():
                        out[int(pos_of[j])] = _result(_row(scored, j), replay=False)
                for i in np.flatnonzero(~r.new).tolist():
                    out[i] = _result(r.stored[r.ids[i]], replay=True, tid=r.ids[i])
                r.results = out  # type: ignore[assignment]
                self.counts["requests"] += 1
                self.counts["scored"] += int(r.new.sum())
                self.counts["replays"] += int((~r.new).sum())
        except Exception as exc:  # every waiting request learns what happened; nothing was absorbed
            for r in reqs:
                r.error = exc
            raise
        finally:
            for r in reqs:
                r.done = True

    def _score_rows(self, rows: TxColumns, t: np.ndarray) -> dict[str, list]:
        """Store rows (fraud.serve.store.TX_COLUMNS, as columns of lists) with probability, flag and reasons of
        `rows` (event order; t: their times in ns)."""
        m = self.model
        with one_torch_thread():  # a request's small matrices: a second intra-op thread only waits
            x, p = self.scorer.run(rows, remember=False)
        threads = m.cfg.booster.n_jobs if len(x) >= PARALLEL_ROWS else 1
        contrib = contributions(m.booster_, x, m.feature_names_, threads=threads)[:, :-1]
        reasons = self.coder.explain(contrib, x, self.top_k)
        return {"transaction_id": rows.transaction_id.tolist(), "ts_ns": t.tolist(),
                "source": rows.source.tolist(), "target": rows.target.tolist(),
                "amount": rows.amount.tolist(), "probability": p.tolist(),
                "flag": (p > m.threshold_).tolist(), "reasons": [json.dumps(r) for r in reasons],
                "threshold": [m.threshold_] * len(p)}

    # ---- labels ----------------------------------------------------------------------------------------
    def feedback(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Confirmed labels: checked as `fraud feedback` checks them, stored, then added to the book."""
        with self.lock:
            seen = canonical_rows(self.store.lookup(raw["transaction_id"].astype(str).str.strip().tolist())
                              .reset_index())
            add, rej = check_feedback(raw, self.model.labels_, seen, self.model.cfg.labels, "feedback request")
            if len(add):
                self.store.add_labels(add)
                self.model.labels_.add(add)
                self.scorer.forget_snapshots()  # a label known before a cached snapshot's end changes it
            return add, rej

    # ---- reports ---------------------------------------------------------------------------------------
    def health(self) -> dict:
        with self.lock:
            state = self.live.sizes()
        return {"status": "ok", "model_loaded": True, "writes_enabled": self.writes,
                "store": self.store.summary() if self.store is not None else None, "restored": self.restored,
                "checkpoint": None if self.pruner is None else {
                    "every": self.pruner.cfg.checkpoint_every, "remember_ids": self.pruner.cfg.remember_ids,
                    "since_last": self.pruner.since, "last": self.pruner.last},
                "state": state, "event_time": self.admission.describe(), "max_batch": self.max_batch,
                "requests": self.counts["requests"], "transactions_scored": self.counts["scored"],
                "replays": self.counts["replays"], "absorbed_since_start": self.counts["absorbed"],
                "labels": len(self.model.labels_), "uptime_s": round(time.time() - self.started, 1)}

    def model_summary(self) -> dict:
        m, cfg = self.model, self.model.cfg
        out = {"threshold": m.threshold_, "n_features": len(m.feature_names_), "feature_names": m.feature_names_,
               "parts": {k: getattr(cfg.parts, k) for k in ("neighbour", "autoencoder", "paths", "gnn")},
               "graph": {"every": cfg.graph.every, "window": cfg.graph.window},
               "fit_info": getattr(m, "fit_info_", {}),
               "stored_history_until": None if m.history_.max_ns is None else
               pd.Timestamp(m.history_.max_ns, tz="UTC").isoformat()}
        if self.manifest is not None:
            mf = self.manifest
            out.update({"model_dir": str(self.model_dir), "kind": mf.kind, "created": mf.created,
                        "git_commit": mf.git_commit, "format_version": mf.format_version,
                        "metrics": mf.metrics, "data": mf.data,
                        "packages": {k: v for k, v in mf.packages.items()
                                     if k in ("xgboost-cpu", "xgboost", "torch", "torch-geometric", "pandas")}})
        return out


def _row(cols: dict[str, list], j: int) -> dict:
    return {k: v[j] for k, v in cols.items()}


def payload_differences(t_ns: int, source: str, target: str, amount: float, stored) -> str:
    """'' when a sent row (time in ns, names, amount) equals the stored one (a store row: ts_ns, source,
    target, amount), else which fields differ (stored vs sent)."""
    diff = [f"timestamp (stored {pd.Timestamp(int(stored['ts_ns']), tz='UTC').isoformat()}, sent "
            f"{pd.Timestamp(int(t_ns), tz='UTC').isoformat()})"] if int(stored["ts_ns"]) != int(t_ns) else []
    diff += [f"{c} (stored {stored[c]!r}, sent {v!r})" for c, v in (("source", source), ("target", target))
             if str(stored[c]) != str(v)]
    if float(stored["amount"]) != float(amount):
        diff.append(f"amount (stored {float(stored['amount']):g}, sent {float(amount):g})")
    return ", ".join(diff)


def _result(row: pd.Series, replay: bool, tid: str | None = None) -> Scored:
    return Scored(transaction_id=str(tid if tid is not None else row["transaction_id"]),
                  probability=float(row["probability"]), flag=bool(row["flag"]),
                  reasons=[Reason(**r) for r in json.loads(row["reasons"])], replay=replay)
