"""HTTP scoring service: a FastAPI app over one loaded FraudModel and its durable state (`fraud serve`).

    POST /score    {"transactions": [{transaction_id, timestamp, source, target, amount}, ...], "remember": true}
                   -> per transaction: probability, flag, reasons, replay (in request order)
    POST /feedback {"labels": [{transaction_id, label, labelled_at?}, ...]}  (fraud/serve/feedback_route.py)
    GET  /health   liveness, whether writes are enabled, the store and what the state holds
    GET  /model    manifest summary of the loaded model
    GET  /docs     OpenAPI UI (schema at /openapi.json)

The model loads once, in the app's lifespan, and the state is restored from the store (`--state`) before the
first request is accepted. What a request goes through (idempotency, event-time rules, bounds, scoring,
the store, absorbing) is `fraud.serve.service_state`; who may write is `fraud.serve.access`. Sending a file's
rows in event order, in requests of any size, gives the scores `fraud score` gives that file.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from fraud.data.durations import parse_duration
from fraud.serve.access import Access
from fraud.serve.admission import AdmissionConfig
from fraud.serve.feedback_route import add_feedback_route
from fraud.serve.launcher import serve_in_subprocess  # noqa: F401 - where tests and benchmarks find it
from fraud.serve.pruning import PruneConfig
from fraud.serve.schemas import ScoreRequest, ScoreResponse
from fraud.serve.service_state import Refused, ServiceState
from fraud.serve.store import StateStore, StoreError, model_identity
from fraud.stack.model import FraudModel

log = logging.getLogger("fraud.serve.service")
BYTES_PER_TX = 2048  # generous upper bound of one transaction's JSON, for the body-size guard


def _field(loc) -> str:
    """'body.transactions[3].amount' from a pydantic location tuple."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def create_app(model_dir: str | Path | None = None, model=None, max_batch: int = 1000, state: str | Path | None = None,
               api_key: str | None = None, admission: AdmissionConfig | None = None, remember: bool = True,
               open_scoring: bool = True, sync: str = "full", prune: PruneConfig | None = None) -> FastAPI:
    """The scoring app; the model is loaded from `model_dir` at start-up (or `model` is used as given).

    state: the SQLite store (created when missing); without it the service is read-only. api_key: the
    X-API-Key that writes (absorbing transactions, feedback) must send; None: read-only. remember=False:
    read-only even with both. open_scoring=False: scoring without absorbing needs the key too. prune: how
    long ids are remembered and how often the state is checkpointed (`fraud.serve.pruning`).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if model is None and model_dir is None:
        raise ValueError("create_app needs model_dir or model")
    admission = admission or AdmissionConfig()
    prune = prune or PruneConfig()
    if parse_duration(prune.remember_ids) * 10**9 < admission.lateness_ns:
        raise ValueError(f"remember_ids ({prune.remember_ids}) must be at least the lateness ({admission.lateness}): "
                         "a transaction that may still arrive must still be recognised when it is sent again")
    access = Access(api_key, store=state is not None, remember=remember, open_scoring=open_scoring)

    @asynccontextmanager
    async def lifespan(app: FastAPI):

        t0 = time.perf_counter()
        loaded = model if model is not None else FraudModel.load(model_dir)
        store = StateStore(state, model_identity(loaded), sync=sync) if state is not None else None
        app.state.svc = ServiceState(loaded, Path(model_dir) if model_dir else None, max_batch, admission, store,
                                     writes=access.writes, prune=prune)
        log.info("model loaded and %s transactions restored in %.2f s (writes %s)",
                 app.state.svc.restored["transactions"], time.perf_counter() - t0,
                 "enabled" if access.writes else f"disabled: {access.read_only_reason}")
        yield
        if store is not None:
            store.close()
        app.state.svc = None

    app = FastAPI(title="fraud scoring", version="2", lifespan=lifespan,
                  description="Scores transactions with a trained fraud model stack (features + GNN + "
                              "autoencoder + XGBoost), explains each score with reason codes and keeps the "
                              "absorbed history in a durable store.")

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

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        detail = [{"loc": loc, "msg": msg, "type": "conflict" if exc.status == 409 else "value_error"}
                  for loc, msg in exc.problems]
        return JSONResponse(status_code=exc.status, content={
            "message": f"{_field(detail[0]['loc'])}: {detail[0]['msg']}", "detail": detail})

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"message": f"state store: {exc}; nothing was absorbed, "
                                                                 "retry later", "detail": str(exc)})

    app.add_middleware(BodySizeLimit, limit=max_batch * BYTES_PER_TX + 4096, max_batch=max_batch)

    @app.post("/score", response_model=ScoreResponse, summary="Score a batch of transactions",
              responses={401: {"description": "Missing or wrong X-API-Key (absorbing needs it)"},
                         403: {"description": "The service is read-only (see /health)"},
                         409: {"description": "A transaction_id already absorbed with another payload"},
                         413: {"description": "Batch or body too large"},
                         422: {"description": "Invalid field or refused timestamp/amount (the message names it)"},
                         503: {"description": "The state store could not be written; nothing was absorbed"}})
    def score(req: ScoreRequest, request: Request,
              x_api_key: Annotated[str | None, Header()] = None) -> Response:
        svc: ServiceState = request.app.state.svc
        if req.remember:
            access.require_write(x_api_key, "absorbing transactions (\"remember\": true)")
        else:
            access.require_read(x_api_key)
        if len(req.transactions) > svc.max_batch:
            raise HTTPException(status_code=413, detail=[{
                "loc": ["body", "transactions"], "type": "too_long",
                "msg": f"batch of {len(req.transactions)} transactions exceeds this service's --max-batch "
                       f"{svc.max_batch}; split it"}])
        results = svc.score(req.transactions, req.remember)
        # Serialised here, once: returned as a model, FastAPI would dump it, validate it again and
        # serialise it on a second worker-thread hop (about a third of a request's cost outside scoring).
        return Response(ScoreResponse(threshold=svc.model.threshold_, results=results).model_dump_json(),
                        media_type="application/json")

    add_feedback_route(app, access)

    @app.get("/health", summary="Liveness, whether writes are enabled, the store and what the state holds")
    def health(request: Request) -> dict:
        return _json_safe({**request.app.state.svc.health(), **access.describe()})

    @app.get("/model", summary="Manifest summary of the loaded model")
    def model_info(request: Request) -> dict:
        return _json_safe(request.app.state.svc.model_summary())

    return app


class BodySizeLimit:
    """ASGI middleware refusing POST bodies larger than `limit` bytes (by Content-Length) with 413 before
    they are read or parsed: a batch limit checked after parsing would still let one huge request eat the
    memory. Plain ASGI, not `BaseHTTPMiddleware`, which costs every request a task group and two streams."""

    def __init__(self, app, limit: int, max_batch: int):
        self.app, self.limit, self.max_batch = app, limit, max_batch

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
            if length.isdigit() and int(length) > self.limit:
                response = JSONResponse(status_code=413, content={
                    "message": f"body: {int(length):,} bytes is larger than this service accepts ({self.limit:,} "
                               f"bytes for --max-batch {self.max_batch})",
                    "detail": [{"loc": ["body"], "msg": "too large", "type": "too_large"}]})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
