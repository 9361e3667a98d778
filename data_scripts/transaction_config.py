"""The transaction generator's settings: `TransactionConfig`, the named `SIZES` and the default typology mix.

The bottom of the generator's one-way import chain: `transaction_world` and `fraud_typologies` import from
here, `make_transactions` imports all three; this module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from fraud.data.frame import TYPOLOGIES

__all__ = ["DEFAULT_MIX", "SIZES", "TransactionConfig"]

SIZES = {"tiny": {"n_customers": 300, "n_merchants": 40, "days": 14},
         "demo": {"n_customers": 2000, "n_merchants": 150, "days": 30},
         "report": {"n_customers": 5000, "n_merchants": 300, "days": 45}}
# Shares of the fraud rows (weights are divided by their sum, so any scale works); these sum to 1: the first
# five are 0.85 x their earlier shares, which keeps their ratios, and compromised_merchant takes 0.15.
DEFAULT_MIX = {"card_testing": 0.1275, "account_takeover": 0.102, "mule_ring": 0.2975, "laundering_cycle": 0.153,
               "colluding_merchant": 0.17, "compromised_merchant": 0.15}


@dataclass
class TransactionConfig:
    """How much data, how it behaves and how much of it is fraud; invalid combinations fail at construction."""

    n_customers: int = 5000
    n_merchants: int = 300
    days: int = 45
    seed: int = 0
    start: str = "2024-01-01"  # first day (UTC); 2024-01-01 is a Monday
    tx_per_day: float = 1.0  # mean card payments per customer and day (dormant accounts far fewer)
    p2p_share: float = 0.12  # person-to-person transfers per card payment
    new_payee_rate: float = 0.06  # share of transfers to someone the sender does not pay regularly
    dormant_share: float = 0.08  # accounts with ~3 % of the usual activity (takeover targets)
    fraud_rate: float = 0.015  # fraud rows / all rows (approximate: cases come whole)
    typology_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    holdout_typology: str = ""  # this typology starts only after holdout_after of the period ("" = none)
    holdout_after: float = 0.6

    def __post_init__(self):
        if self.n_customers < 100:
            raise ValueError(f"n_customers must be >= 100 (rings and cycles need accounts), got {self.n_customers}")
        if self.n_merchants < 20:
            raise ValueError(f"n_merchants must be >= 20, got {self.n_merchants}")
        if self.days < 7:
            raise ValueError(f"days must be >= 7 (laundering cycles last up to 3.5 days), got {self.days}")
        for name in ("tx_per_day", "p2p_share"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("new_payee_rate", "dormant_share", "fraud_rate"):
            if not 0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        unknown = sorted(set(self.typology_mix) - set(TYPOLOGIES))
        if unknown:
            raise ValueError(f"typology_mix has unknown typologies {unknown}; known: {', '.join(TYPOLOGIES)}")
        if any(v < 0 for v in self.typology_mix.values()) or (self.fraud_rate > 0 and not
                                                               sum(self.typology_mix.values()) > 0):
            raise ValueError(f"typology_mix weights must be >= 0 with a positive sum, got {self.typology_mix}")
        if self.holdout_typology:
            if self.holdout_typology not in TYPOLOGIES:
                raise ValueError(f"holdout_typology {self.holdout_typology!r} is not one of {', '.join(TYPOLOGIES)}")
            if not self.typology_mix.get(self.holdout_typology, 0) > 0:
                raise ValueError(f"holdout_typology {self.holdout_typology} has no weight in typology_mix")
        if not 0 <= self.holdout_after < 1:
            raise ValueError(f"holdout_after is a fraction of the period in [0, 1), got {self.holdout_after}")
        if self.holdout_typology and self.days * (1 - self.holdout_after) < 5:
            raise ValueError(f"only {self.days * (1 - self.holdout_after):.1f} days follow holdout_after="
                             f"{self.holdout_after}; the held-out typology needs >= 5 (raise days)")
        pd.Timestamp(self.start)  # fails early on a bad date

    def expected_rows(self) -> float:
        """Rows this config generates on average (benign + fraud), for sizing by row count."""
        return self.n_customers * self.days * _rows_per_customer_day(self) / (1 - self.fraud_rate)

    @classmethod
    def for_rows(cls, rows: int, **kwargs) -> TransactionConfig:
        """A config of about `rows` transactions: n_customers is solved from the other settings."""
        probe = cls(**{**kwargs, "n_customers": 1000})
        per_customer = probe.expected_rows() / 1000
        return cls(**{**kwargs, "n_customers": max(100, int(round(rows / per_customer)))})


def _rows_per_customer_day(cfg: TransactionConfig) -> float:
    active = cfg.tx_per_day * (1 - cfg.dormant_share * 0.97)
    return active * (1 + cfg.p2p_share * 1.1) + 1.5 * (0.7 / 30 + 0.3 / 7)
