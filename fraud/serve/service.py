"""HTTP scoring service: a FastAPI app over one loaded FraudModel (`fraud serve`).

    POST /score    {"transactions": [{transaction_id, timestamp, source, target, amount}, ...]}
                   -> per transaction: probability, flag, reasons (in request order)
    POST /feedback {"labels": [{transaction_id, label, labelled_at?}, ...]}  (X-API-Key; fraud/serve/feedback_route.py)
    GET  /health   liveness + what the service has absorbed
    GET  /model    manifest summary of the loaded model
    GET  /docs     OpenAPI UI (schema at /openapi.json)

The model loads once, in the app's lifespan, before the first request is accepted.

History (why a score here equals the batch score of the same rows): the service starts from the model's
stored history and, after scoring a request, absorbs its transactions (`remember`, the default), exactly as
`fraud score` carries history from chunk to chunk. So sending a file's rows in event order, in requests of any
size, gives the scores `fraud score` gives that file. Scoring and absorbing run under one lock (requests are
serialised: scoring is CPU-bound anyway). A request whose earliest transaction is older than the newest
transaction already absorbed is refused with 422 naming that row's `timestamp` field (its features
would otherwise see later rows). `"remember": false` in a request scores it without absorbing it (a what-if
query; it must still not be older than the history). Bound: the raw history kept is time-bounded (the
model's tail: longest feature window or graph window); per-entity and per-pair totals grow with the number of
distinct entities and pairs seen, as in batch scoring; `GET /health` reports their sizes. `--no-remember`
(`remember=False` here) makes the service stateless: every request is scored against the model's stored
history only and nothing is absorbed, so requests may come in any order (each after the stored history).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraud.data.durations import to_ns
from fraud.features.graph import SnapshotCache
from fraud.models.booster import contributions
from fraud.models.treeshap import explainer
from fraud.serve.feedback_route import add_feedback_route
from fraud.serve.reasons import ReasonCoder
from fraud.stack.model import FraudModel
from fraud.stack.scorer import OutOfOrder, Scorer
from shared.runs import load_manifest

log = logging.getLogger("fraud.serve.service")
MAX_ID = 256
BYTES_PER_TX = 2048  # generous upper bound of one transaction's JSON, for the body-size guard


class Transaction(BaseModel):
    """One transaction in the canonical schema (extra fields are ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    transaction_id: Annotated[str, Field(min_length=1, max_length=MAX_ID, examples=["tx-000123"])]
    timestamp: Annotated[datetime, Field(description="ISO 8601 (a time without zone is taken as UTC) or Unix "
                                                     "seconds", examples=["2024-03-01T12:30:00Z"])]
    source: Annotated[str, Field(min_length=1, max_length=MAX_ID, description="Paying entity",
                                 examples=["C1042"])]
    target: Annotated[str, Field(min_length=1, max_length=MAX_ID, description="Receiving entity",
                                 examples=["M17"])]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False, description="Amount, >= 0", examples=[42.5])]

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v.astimezone(UTC)


class ScoreRequest(BaseModel):
    """A batch of transactions to score (at most the service's --max-batch)."""

    model_config = ConfigDict(extra="forbid")

    transactions: Annotated[list[Transaction], Field(min_length=1)]
    remember: bool = Field(True, description="Absorb these transactions into the history after scoring "
                                             "(ignored when the service runs with --no-remember)")


class Reason(BaseModel):
    reason: str = Field(description="Model input named in human terms (high/low vs the validation period's median)")
    contribution: float = Field(description="Its push on the fraud score, in log-odds (> 0)")


class Scored(BaseModel):
    transaction_id: str
    probability: float
    flag: bool
    reasons: list[Reason]


class ScoreResponse(BaseModel):
    threshold: float
    results: list[Scored]


class ServiceState:
    """The loaded model, its live history and counters; one lock serialises scoring + absorbing."""

    def __init__(self, model, model_dir: Path | None, max_batch: int, remember: bool, top_k: int = 3):

        self.model, self.model_dir, self.max_batch, self.remember = model, model_dir, max_batch, remember
        self.top_k = top_k
        # The live history (absorbs requests) and the stored one (what-if / stateless requests), each with
        # its own snapshot cache.
        self.live, self.stored = Scorer(model, model.history_.copy()), Scorer(model, model.history_)
        self.coder = ReasonCoder(model.feature_names_, getattr(model, "reference_", None))
        explainer(model.booster_)  # built at start-up (~2 s on the default model), not by the first request
        self.lock = threading.Lock()
        self.started = time.time()
        self.requests = 0
        self.scored = 0
        self.absorbed: list[pd.DataFrame] = []  # (id, time, source, target) of absorbed rows: feedback finds them
        self.manifest = None
        if model_dir is not None:

            self.manifest = load_manifest(model_dir, verify=False)  # load() has just verified the hashes

    def score(self, txs: list[Transaction], remember: bool) -> list[Scored]:

        df = pd.DataFrame({"transaction_id": pd.array([t.transaction_id for t in txs], dtype="string"),
                           "timestamp": pd.to_datetime([t.timestamp for t in txs], utc=True).as_unit("ns"),
                           "source": pd.array([t.source for t in txs], dtype="string"),
                           "target": pd.array([t.target for t in txs], dtype="string"),
                           "amount": np.array([t.amount for t in txs], dtype=np.float64)})
        dup = df["transaction_id"].duplicated(keep="first").to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            _unprocessable(["body", "transactions", i, "transaction_id"],
                           f"duplicate transaction_id {txs[i].transaction_id!r} in this batch")
        # Event order inside the batch is ours to fix; the response goes back in request order.
        order = np.argsort(to_ns(df["timestamp"]), kind="stable")
        batch = df.iloc[order].reset_index(drop=True)
        with self.lock:
            scorer = self.live if self.remember else self.stored
            try:
                x, p = scorer.run(batch, remember=remember and self.remember)
            except OutOfOrder as exc:
                i = int(order[exc.pos])
                _unprocessable(["body", "transactions", i, "timestamp"],
                               f"timestamp {txs[i].timestamp.isoformat()} is earlier than the newest transaction "
                               f"the service has seen ({pd.Timestamp(exc.prev_ns, tz='UTC').isoformat()}); "
                               "scores use strictly earlier history, so send transactions in event order")
            self.requests += 1
            self.scored += len(batch)
            if remember and self.remember:
                self.absorbed.append(batch[["transaction_id", "timestamp", "source", "target"]])
        contrib = contributions(self.model.booster_, x, self.model.feature_names_,
                                threads=self.model.cfg.booster.n_jobs)[:, :-1]
        reasons = self.coder.explain(contrib, x, self.top_k)
        thr = self.model.threshold_
        out: list[Scored | None] = [None] * len(txs)
        for j, i in enumerate(order.tolist()):
            out[i] = Scored(transaction_id=txs[i].transaction_id, probability=float(p[j]), flag=bool(p[j] > thr),
                            reasons=[Reason(**r) for r in reasons[j]])
        return out  # type: ignore[return-value]

    def feedback(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Confirmed labels into the model's book (under the scoring lock: no request sees half a book)."""
        with self.lock:
            if len(self.absorbed) > 1:
                self.absorbed = [pd.concat(self.absorbed, ignore_index=True)]
            seen = self.absorbed[0] if self.absorbed else None
            added, rejects = self.model.add_labels(raw, seen, where="feedback request")
            if len(added):  # cached snapshot encodings hold the old known-fraud node state
                self.live.graph_cache, self.stored.graph_cache = SnapshotCache(), SnapshotCache()
            return added, rejects

    def model_summary(self) -> dict:
        m, cfg = self.model, self.model.cfg
        out = {"threshold": m.threshold_, "n_features": len(m.feature_names_), "feature_names": m.feature_names_,
               "parts": {k: getattr(cfg.parts, k) for k in ("neighbour", "autoencoder", "paths", "gnn")},
               "graph": {"every": cfg.graph.every, "window": cfg.graph.window},
               "fit_info": getattr(m, "fit_info_", {}),
               "stored_history_until": _iso(m.history_.max_ns)}
        if self.manifest is not None:
            mf = self.manifest
            out.update({"model_dir": str(self.model_dir), "kind": mf.kind, "created": mf.created,
                        "git_commit": mf.git_commit, "format_version": mf.format_version,
                        "metrics": mf.metrics, "data": mf.data,
                        "packages": {k: v for k, v in mf.packages.items()
                                     if k in ("xgboost-cpu", "xgboost", "torch", "torch-geometric", "pandas")}})
        return out


def _iso(ns: int | None) -> str | None:
    return None if ns is None else pd.Timestamp(ns, tz="UTC").isoformat()


def _unprocessable(loc: list, msg: str) -> None:
    raise HTTPException(status_code=422, detail=[{"loc": loc, "msg": msg, "type": "value_error"}])


def _field(loc) -> str:
    """'body.transactions[3].amount' from a pydantic location tuple."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def create_app(model_dir: str | Path | None = None, model=None, max_batch: int = 1000,
               remember: bool = True, api_key: str | None = None) -> FastAPI:
    """The scoring app; the model is loaded from `model_dir` at start-up (or `model` is used as given).
    `api_key`: the X-API-Key that label writes (POST /feedback) must send; None disables them."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if model is None and model_dir is None:
        raise ValueError("create_app needs model_dir or model")

    @asynccontextmanager
    async def lifespan(app: FastAPI):

        t0 = time.perf_counter()
        loaded = model if model is not None else FraudModel.load(model_dir)
        app.state.svc = ServiceState(loaded, Path(model_dir) if model_dir else None, max_batch, remember)
        log.info("model loaded in %.2f s (threshold %.4f)", time.perf_counter() - t0, loaded.threshold_)
        yield
        app.state.svc = None

    app = FastAPI(title="fraud scoring", version="1", lifespan=lifespan,
                  description="Scores transactions with a trained fraud model stack (features + GNN + "
                              "autoencoder + XGBoost) and explains each score with reason codes.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        return JSONResponse(status_code=422, content={
            "message": f"{_field(first['loc']) or 'body'}: {first['msg']}", "detail": errors})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            message = f"{_field(detail[0].get('loc', [])) or 'body'}: {detail[0].get('msg', '')}"
        else:
            message = str(detail)
        return JSONResponse(status_code=exc.status_code, content={"message": message, "detail": detail})

    @app.middleware("http")
    async def _body_size(request: Request, call_next):
        # Refuse oversized bodies before they are parsed (a batch limit checked after parsing would still
        # let one huge request eat the memory).
        length = request.headers.get("content-length")
        limit = max_batch * BYTES_PER_TX + 4096
        if request.method == "POST" and length is not None and length.isdigit() and int(length) > limit:
            return JSONResponse(status_code=413, content={
                "message": f"body: {int(length):,} bytes is larger than this service accepts ({limit:,} bytes "
                           f"for --max-batch {max_batch})", "detail": [{"loc": ["body"], "msg": "too large",
                                                                         "type": "too_large"}]})
        return await call_next(request)

    @app.post("/score", response_model=ScoreResponse, summary="Score a batch of transactions",
              responses={413: {"description": "Batch or body too large"},
                         422: {"description": "Invalid field (the message names it)"}})
    def score(req: ScoreRequest, request: Request) -> ScoreResponse:
        svc: ServiceState = request.app.state.svc
        if len(req.transactions) > svc.max_batch:
            raise HTTPException(status_code=413, detail=[{
                "loc": ["body", "transactions"], "type": "too_long",
                "msg": f"batch of {len(req.transactions)} transactions exceeds this service's --max-batch "
                       f"{svc.max_batch}; split it"}])
        results = svc.score(req.transactions, req.remember)
        return ScoreResponse(threshold=svc.model.threshold_, results=results)

    add_feedback_route(app, api_key)

    @app.get("/health", summary="Liveness and what the service has absorbed")
    def health(request: Request) -> dict:
        svc: ServiceState = request.app.state.svc
        h = (svc.live if svc.remember else svc.stored).history
        return {"status": "ok", "model_loaded": True, "remember": svc.remember, "max_batch": svc.max_batch,
                "requests": svc.requests, "transactions_scored": svc.scored, "labels": len(svc.model.labels_),
                "history": {"tail_rows": len(h.tail), "entities": len(h.entities), "pairs": len(h.pairs),
                            "newest": _iso(h.max_ns)},
                "uptime_s": round(time.time() - svc.started, 1)}

    @app.get("/model", summary="Manifest summary of the loaded model")
    def model_info(request: Request) -> dict:
        return _json_safe(request.app.state.svc.model_summary())

    return app


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.integer, np.floating)):
        return _json_safe(obj.item())
    return obj


@contextmanager
def serve_in_subprocess(model_dir: str | Path, log_path: str | Path, *args: str, timeout_s: float = 180):
    """Run `fraud serve --model DIR` on a free loopback port in a child process; yield its base URL once
    GET /health answers, stop it on exit. For tests and benchmarks that must talk to the real server.

    A child that exits early, or no answer within `timeout_s` (start-up imports torch: > 60 s was seen on a
    shared 2-core machine), raises RuntimeError with the end of its log.
    """

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from fraud.cli import app; app()", "serve", "--model",
                                 str(model_dir), "--host", "127.0.0.1", "--port", str(port), *args],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"fraud serve exited with {proc.returncode}: "
                                       f"{Path(log_path).read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fraud serve did not answer /health within {timeout_s:g} s")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
