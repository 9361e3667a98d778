"""Who may change the service's state: writes (absorbing transactions, label feedback) need the service's API
key, sent as the X-API-Key header and compared in constant time; without a key, a store or with
--no-remember the service is read-only. Scoring without absorbing is open unless `open_scoring` is off."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import HTTPException

KEY_HEADER = "X-API-Key"


@dataclass
class Access:
    """The key (None: none configured), whether the service can write at all, and whether reads need the key."""

    api_key: str | None
    store: bool
    remember: bool = True
    open_scoring: bool = True

    @property
    def read_only_reason(self) -> str | None:
        """Why writes are off (None: they are on)."""
        if not self.store:
            return "no state store (start with --state FILE.sqlite)"
        if not self.remember:
            return "started with --no-remember"
        if self.api_key is None:
            return "no API key (set FRAUD_API_KEY or pass --api-key-file)"
        return None

    @property
    def writes(self) -> bool:
        return self.read_only_reason is None

    def require_write(self, header: str | None, what: str) -> None:
        """403 when writes are off, 401 when the key is missing or wrong."""
        why = self.read_only_reason
        if why is not None:
            raise HTTPException(status_code=403, detail=f"{what} is disabled: this service is read-only ({why})")
        self._check(header)

    def require_read(self, header: str | None) -> None:
        if self.open_scoring:
            return
        if self.api_key is None:
            raise HTTPException(status_code=403, detail="scoring needs a key but none is configured (set "
                                                        "FRAUD_API_KEY or pass --api-key-file)")
        self._check(header)

    def _check(self, header: str | None) -> None:
        if header is None or not hmac.compare_digest(header.encode(), self.api_key.encode()):
            raise HTTPException(status_code=401, detail=f"missing or wrong {KEY_HEADER} header")

    def describe(self) -> dict:
        return {"writes_enabled": self.writes, "read_only_reason": self.read_only_reason,
                "scoring_needs_key": not self.open_scoring}
