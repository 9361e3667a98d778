"""The JSON bodies of `fraud serve` (pydantic models: what OpenAPI at /docs shows and what requests must be)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraud.serve.admission import YEARS

MAX_ID = 256


class Transaction(BaseModel):
    """One transaction in the canonical schema; a field not listed here is refused (422 naming it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    transaction_id: Annotated[str, Field(min_length=1, max_length=MAX_ID, examples=["tx-000123"])]
    timestamp: Annotated[datetime, Field(description="ISO 8601 (a time without zone is taken as UTC) or Unix "
                                                     "seconds; years 1970-2199", examples=["2024-03-01T12:30:00Z"])]
    source: Annotated[str, Field(min_length=1, max_length=MAX_ID, description="Paying entity",
                                 examples=["C1042"])]
    target: Annotated[str, Field(min_length=1, max_length=MAX_ID, description="Receiving entity",
                                 examples=["M17"])]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False, description="Amount, >= 0 and at most the "
                                   "service's --max-amount", examples=[42.5])]

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        if not YEARS[0] <= v.year < YEARS[1]:
            raise ValueError(f"timestamp {v.isoformat()} is outside the years {YEARS[0]}-{YEARS[1] - 1} the "
                             "service accepts; check the value (Unix seconds, not milliseconds?)")
        return v


class ScoreRequest(BaseModel):
    """A batch of transactions to score (at most the service's --max-batch)."""

    model_config = ConfigDict(extra="forbid")

    transactions: Annotated[list[Transaction], Field(min_length=1)]
    remember: bool = Field(True, description="Absorb these transactions into the service's state after scoring "
                                             "(needs X-API-Key; false: score only, a what-if query)")


class Reason(BaseModel):
    reason: str = Field(description="Model input named in human terms (high/low vs the validation period's median)")
    contribution: float = Field(description="Its push on the fraud score, in log-odds (> 0)")


class Scored(BaseModel):
    transaction_id: str
    probability: float
    flag: bool
    reasons: list[Reason]
    replay: bool = Field(False, description="true: this transaction_id was already absorbed with this payload; "
                                            "the stored result is returned and nothing is absorbed again")


class ScoreResponse(BaseModel):
    threshold: float
    results: list[Scored]
