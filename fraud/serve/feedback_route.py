"""POST /feedback: confirmed labels into the running service's label book (writes need the service's key).

    POST /feedback  {"labels": [{transaction_id, label, labelled_at?}, ...]}   header X-API-Key: <key>
                    -> read, added, rejected [{index, transaction_id, reason}], labels (book size)

The same checks as `fraud feedback` (fraud/stack/feedback.py): ids must be in the model's labels or among
the transactions this service has absorbed; every item is added or rejected with its reason. Added labels
count for later requests from the time each became known. A read-only service (no key, no store, or
--no-remember: `fraud.serve.access`) refuses feedback with 403; a wrong or missing key gets 401. Accepted
labels are in the state store before the answer is sent, and a restart restores them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import FastAPI, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from fraud.serve.access import Access
from fraud.serve.schemas import MAX_ID


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


def add_feedback_route(app: FastAPI, access: Access) -> None:
    @app.post("/feedback", response_model=FeedbackResponse, summary="Add confirmed labels",
              responses={401: {"description": "Missing or wrong X-API-Key"},
                         403: {"description": "The service is read-only (see /health)"}})
    def feedback(req: FeedbackRequest, request: Request,
                 x_api_key: Annotated[str | None, Header()] = None) -> FeedbackResponse:
        access.require_write(x_api_key, "feedback")
        raw = pd.DataFrame({"transaction_id": [x.transaction_id for x in req.labels],
                            "label": [str(x.label) for x in req.labels],
                            "labelled_at": [x.labelled_at.isoformat() if x.labelled_at else "" for x in req.labels]})
        added, rej = request.app.state.svc.feedback(raw)
        return FeedbackResponse(read=len(raw), added=len(added), labels=len(request.app.state.svc.model.labels_),
                                rejected=[Rejected(index=int(r) - 1, transaction_id=str(t), reason=str(why))
                                          for r, t, why in zip(rej["row"], rej["transaction_id"], rej["reason"],
                                                               strict=True)])
