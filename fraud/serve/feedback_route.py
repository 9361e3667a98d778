"""POST /feedback: confirmed labels into the running service's label book (writes need the service's key).

    POST /feedback  {"labels": [{transaction_id, label, labelled_at?}, ...]}   header X-API-Key: <key>
                    -> read, added, rejected [{index, transaction_id, reason}], labels (book size)

The same checks as `fraud feedback` (fraud/stack/feedback.py): ids must be in the model's labels or among
the transactions this service has absorbed; every item is added or rejected with its reason. Added labels
count for later requests from the time each became known. A service started without a key refuses
feedback with 403 (anyone who can reach the port could otherwise write the labels); a wrong or missing key
gets 401. The labels live in memory until the service stops (`fraud feedback` writes them to a model
directory).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 256


class FedLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    transaction_id: Annotated[str, Field(min_length=1, max_length=MAX_ID, examples=["tx-000123"])]
    label: Literal[0, 1] = Field(description="1 = confirmed fraud, 0 = confirmed legitimate")
    labelled_at: datetime | None = Field(None, description="When it became known (ISO 8601); default: the "
                                                           "payment's time + the model's labels.delay")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Annotated[list[FedLabel], Field(min_length=1)]


class Rejected(BaseModel):
    index: int
    transaction_id: str
    reason: str


class FeedbackResponse(BaseModel):
    read: int
    added: int
    rejected: list[Rejected]
    labels: int = Field(description="Labels in the service's book after this request")


def add_feedback_route(app: FastAPI, api_key: str | None) -> None:
    @app.post("/feedback", response_model=FeedbackResponse, summary="Add confirmed labels",
              responses={401: {"description": "Missing or wrong X-API-Key"},
                         403: {"description": "Feedback is disabled (service started without a key)"}})
    def feedback(req: FeedbackRequest, request: Request,
                 x_api_key: Annotated[str | None, Header()] = None) -> FeedbackResponse:
        if api_key is None:
            raise HTTPException(status_code=403, detail="feedback is disabled: start the service with "
                                                        "--api-key-file or FRAUD_API_KEY to accept label writes")
        if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")
        raw = pd.DataFrame({"transaction_id": [x.transaction_id for x in req.labels],
                            "label": [str(x.label) for x in req.labels],
                            "labelled_at": [x.labelled_at.isoformat() if x.labelled_at else "" for x in req.labels]})
        added, rej = request.app.state.svc.feedback(raw)
        return FeedbackResponse(read=len(raw), added=len(added), labels=len(request.app.state.svc.model.labels_),
                                rejected=[Rejected(index=int(r) - 1, transaction_id=str(t), reason=str(why))
                                          for r, t, why in zip(rej["row"], rej["transaction_id"], rej["reason"],
                                                               strict=True)])
