"""Seeded generator of labelled transactions with five fraud typologies, in the fraud app's canonical format.

    python -m data_scripts.make_transactions --out data/tx.parquet --seed 0 --customers 5000 --days 45
    df = generate(TransactionConfig(n_customers=2000, days=30, seed=0, holdout_typology="mule_ring"))

Entities: customers `C<i>` (cards and accounts; `C<i>` with i >= n_customers are outside accounts first seen
in a takeover), merchants `M<j>`. Output columns: the canonical `transaction_id, timestamp, source, target,
amount, label, typology` plus `channel` (card / online / transfer), `category` (merchant category or p2p) and
`case_id` (which fraud case a row belongs to, -1 for benign; for tests and analysis, never a model input).

Benign behaviour (all vectorised, no Python loop per row):
- card payments at a customer-specific rate (gamma, a share of dormant accounts), amounts log-normal around a
  per-customer median (itself log-normal: heavy tails across and within customers) times the merchant
  category's scale; 85 % go to a handful of favourite merchants, the rest to merchants by popularity
  (Pareto-distributed), so new merchants appear at a realistic rate;
- daily seasonality (lunchtime and evening peaks, quiet nights, shifted per customer) and weekly seasonality
  (busier Fridays and Saturdays, quieter Sundays);
- person-to-person transfers to a few regular payees (mostly in the customer's own community), a share
  `new_payee_rate` to someone new, round amounts half of the time;
- recurring payments (monthly or weekly, fixed amount, posted in the early morning like direct debits);
- bill splits: a few friends pay one of them within hours (benign fan-in that looks like a mule's).

Fraud typologies (`TYPOLOGIES`; rows per typology follow `fraud_rate` and `typology_mix`):
- card_testing: bursts of 5-12 tiny online amounts at different merchants within minutes, then 1-2 large ones;
- account_takeover: a dormant or normal account sends 2-5 large round amounts to new payees at 01-05 h;
- mule_ring: 8-16 victims pay 4-7 connected mule accounts, the mules pass money among themselves and pay it
  out to cash-out accounts, all within a 2-6 hour window;
- laundering_cycle: money leaves an account and returns to it through a chain of 2-6 others, 1-12 h per hop,
  a few percent skimmed per hop;
- colluding_merchant: a small merchant receives a burst from 15-40 cards within a few hours.
mule_ring and laundering_cycle are graph-only (`GRAPH_TYPOLOGIES`): every transfer uses an ordinary customer
account, an amount drawn exactly as that sender's ordinary transfers are, and an ordinary daytime hour; only
who pays whom (fan-in to connected accounts, a path back to the origin) gives them away.
A `holdout_typology` starts only after `holdout_after` of the period (new fraud the training never saw).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

TYPOLOGIES = ("card_testing", "account_takeover", "mule_ring", "laundering_cycle", "colluding_merchant")
GRAPH_TYPOLOGIES = ("mule_ring", "laundering_cycle")
DEFAULT_MIX = {"card_testing": 0.15, "account_takeover": 0.12, "mule_ring": 0.35, "laundering_cycle": 0.18,
               "colluding_merchant": 0.20}
# Mean rows per fraud case, to turn a row budget into a number of cases.
ROWS_PER_CASE = {"card_testing": 10.0, "account_takeover": 3.5, "mule_ring": 24.0, "laundering_cycle": 4.5,
                 "colluding_merchant": 27.5}
# Merchant categories: (share of merchants, amount scale vs the customer's median, probability online).
CATEGORIES = {"grocery": (0.22, 0.8, 0.05), "restaurant": (0.18, 0.7, 0.05), "fuel": (0.08, 1.3, 0.0),
              "retail": (0.16, 1.2, 0.35), "online_shop": (0.12, 1.0, 1.0), "electronics": (0.05, 3.0, 0.5),
              "travel": (0.04, 4.0, 0.7), "health": (0.06, 1.1, 0.1), "entertainment": (0.05, 0.9, 0.6),
              "utilities": (0.04, 1.5, 1.0)}
CHANNELS = ("card", "online", "transfer")
# Relative activity per hour of the day (quiet nights, lunchtime and evening peaks) and per weekday (Mon..Sun).
HOURLY = np.array([0.6, 0.3, 0.2, 0.15, 0.2, 0.4, 1.0, 2.0, 3.0, 3.6, 3.8, 4.2, 5.0, 4.6, 4.0, 4.0, 4.3,
                   5.0, 5.4, 5.0, 4.0, 3.0, 2.0, 1.2])
WEEKLY = np.array([0.95, 0.95, 1.0, 1.05, 1.2, 1.25, 0.75])
SIZES = {"tiny": {"n_customers": 300, "n_merchants": 40, "days": 14},
         "demo": {"n_customers": 2000, "n_merchants": 150, "days": 30},
         "report": {"n_customers": 5000, "n_merchants": 300, "days": 45}}
DAY = 86400


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


class _Parts:
    """Columns collected part by part (integer-coded) and assembled once at the end."""

    def __init__(self):
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "src", "dst", "amt", "typ", "chan", "cat",
                                                                  "case")}

    def add(self, t, src, dst, amt, chan, cat, typ=0, case=-1) -> None:
        n = len(t)
        for k, v in (("t", t), ("src", src), ("dst", dst), ("amt", amt), ("chan", chan), ("cat", cat),
                     ("typ", typ), ("case", case)):
            self.cols[k].append(np.broadcast_to(np.asarray(v), (n,)).copy())

    def concat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.cols.items()}


class _World:
    """Customers and merchants with their habits; draws benign-looking times, amounts and counterparties."""

    def __init__(self, cfg: TransactionConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        n, m = cfg.n_customers, cfg.n_merchants
        self.span = cfg.days * DAY
        self.activity = rng.gamma(2.0, cfg.tx_per_day / 2.0, n)
        self.dormant = rng.random(n) < cfg.dormant_share
        self.activity[self.dormant] *= 0.03
        self.median = np.exp(rng.normal(np.log(30.0), 0.7, n))  # per-customer median amount
        self.sigma = rng.uniform(0.45, 0.9, n)
        self.shift = np.rint(rng.normal(0, 1.2, n)).astype(np.int64)  # early birds and night owls (hours)
        self.active = np.flatnonzero(~self.dormant)
        self.active_by_median = self.active[np.argsort(self.median[self.active])]
        self.active_medians = self.median[self.active_by_median]
        # Merchants: heavy-tailed popularity, a category each.
        self.popularity = rng.pareto(1.2, m) + 1.0
        shares = np.array([v[0] for v in CATEGORIES.values()])
        self.category = rng.choice(len(CATEGORIES), m, p=shares / shares.sum())
        self.cat_scale = np.array([v[1] for v in CATEGORIES.values()])
        self.cat_online = np.array([v[2] for v in CATEGORIES.values()])
        self.favourites = rng.choice(m, (n, 6), p=self.popularity / self.popularity.sum())
        # Regular payees: mostly in the customer's community (blocks of 40 ids), a few popular "hubs".
        community = np.arange(n) // 40
        lo, size = community * 40, np.minimum(40, n - community * 40)
        inside = lo[:, None] + (rng.random((n, 4)) * size[:, None]).astype(np.int64)
        hubs = rng.choice(n, max(1, n // 50), replace=False)
        anyone = np.where(rng.random((n, 4)) < 0.3, hubs[rng.integers(0, len(hubs), (n, 4))],
                          rng.integers(0, n, (n, 4)))
        self.payees = np.where(rng.random((n, 4)) < 0.8, inside, anyone)
        self.payees = np.where(self.payees == np.arange(n)[:, None], (self.payees + 1) % n, self.payees)
        self.community_lo, self.community_size = lo, size
        self.hour_p = HOURLY / HOURLY.sum()
        day_w = WEEKLY[(pd.Timestamp(cfg.start).day_of_week + np.arange(cfg.days)) % 7]
        self.day_p = day_w / day_w.sum()

    # ---- draws shared by benign rows and the graph-only typologies (so they cannot be told apart) ----
    def customers(self, k: int) -> np.ndarray:
        """k customers drawn by activity (busy customers transact more)."""
        return self.rng.choice(len(self.activity), k, p=self.activity / self.activity.sum())

    def times(self, cust: np.ndarray, day_lo: int = 0, day_hi: int | None = None,
              hours: tuple[int, int] | None = None) -> np.ndarray:
        """Seconds since start: a weekday-weighted day in [day_lo, day_hi), an hour from the daily profile
        shifted by the customer's own rhythm (or, with `hours`, from the profile restricted to that range)."""
        rng, k = self.rng, len(cust)
        day_hi = self.cfg.days if day_hi is None else day_hi
        p = self.day_p[day_lo:day_hi] / self.day_p[day_lo:day_hi].sum()
        day = day_lo + rng.choice(day_hi - day_lo, k, p=p)
        if hours is None:
            hour = (rng.choice(24, k, p=self.hour_p) + self.shift[cust]) % 24
        else:
            hp = np.zeros(24)
            hp[hours[0]:hours[1]] = HOURLY[hours[0]:hours[1]]
            hour = rng.choice(24, k, p=hp / hp.sum())
        return day * DAY + hour * 3600 + rng.integers(0, 3600, k)

    def transfer_amount(self, cust: np.ndarray) -> np.ndarray:
        """Person-to-person amounts of these senders: twice their median, log-normal, often round."""
        rng = self.rng
        a = self.median[cust] * 2.0 * np.exp(rng.normal(0, self.sigma[cust] + 0.1))
        round_ = rng.random(len(cust)) < 0.5
        a = np.where(round_, np.maximum(5.0, np.round(a / 5) * 5), a)
        return np.round(np.maximum(a, 1.0), 2)

    def payment_amount(self, cust: np.ndarray, merch: np.ndarray) -> np.ndarray:
        """Card amounts of these customers at these merchants: median x category scale x log-normal."""
        a = self.median[cust] * self.cat_scale[self.category[merch]] * np.exp(
            self.rng.normal(0, self.sigma[cust]))
        return np.round(np.maximum(a, 0.5), 2)

    def payment_channel(self, merch: np.ndarray) -> np.ndarray:
        return (self.rng.random(len(merch)) < self.cat_online[self.category[merch]]).astype(np.int8)

    @staticmethod
    def merchant_id(m: np.ndarray) -> np.ndarray:
        """Entity codes: accounts are >= 0 (C<code>), merchants negative (M<-code-1>)."""
        return -np.asarray(m, np.int64) - 1


def _benign(w: _World, parts: _Parts) -> None:
    cfg, rng = w.cfg, w.rng
    n = cfg.n_customers
    # Card payments.
    k = rng.poisson(w.activity.sum() * cfg.days)
    cust = w.customers(k)
    fav = w.favourites[cust, rng.choice(6, k, p=[0.33, 0.22, 0.16, 0.12, 0.09, 0.08])]
    other = rng.choice(cfg.n_merchants, k, p=w.popularity / w.popularity.sum())
    merch = np.where(rng.random(k) < 0.85, fav, other)
    parts.add(w.times(cust), cust, w.merchant_id(merch), w.payment_amount(cust, merch), w.payment_channel(merch),
              w.category[merch] + 1)
    # Transfers to regular payees, sometimes to someone new.
    k = rng.poisson(k * cfg.p2p_share)
    cust = w.customers(k)
    payee = w.payees[cust, rng.integers(0, 4, k)]
    new = rng.random(k) < cfg.new_payee_rate
    payee[new] = (cust[new] + rng.integers(1, n, new.sum())) % n
    parts.add(w.times(cust), cust, payee, w.transfer_amount(cust), 2, 0)
    # Bill splits: 2-6 community members pay the organiser back within 3 hours, similar amounts.
    g = max(1, int(k * 0.1 / 4))
    org = w.customers(g)
    size = rng.integers(2, 7, g)
    who = np.repeat(org, size)
    friend = w.community_lo[who] + (rng.random(len(who)) * w.community_size[who]).astype(np.int64)
    friend = np.where(friend == who, (friend + 1 - w.community_lo[who]) % w.community_size[who]
                      + w.community_lo[who], friend)
    t = np.repeat(w.times(org, 0, cfg.days - 1, hours=(8, 21)), size) + rng.integers(0, 3 * 3600, len(who))
    share = np.repeat(w.median[org] * np.exp(rng.normal(0.3, 0.5, g)), size)
    parts.add(t, friend, who, np.round(share * rng.uniform(0.9, 1.1, len(who)), 2), 2, 0)
    # Recurring payments: monthly (70 %) or weekly, same amount, posted early in the morning (direct debits).
    s_cust = np.repeat(np.arange(n), np.minimum(rng.poisson(1.5, n), 4))
    s = len(s_cust)
    period = np.where(rng.random(s) < 0.7, 30, 7)
    phase = (rng.random(s) * period).astype(np.int64)
    to_payee = rng.random(s) < 0.25  # rent or an allowance to a regular payee; else a utility-like merchant
    utilities = np.flatnonzero(w.category == list(CATEGORIES).index("utilities"))
    merch = rng.choice(cfg.n_merchants, s, p=w.popularity / w.popularity.sum())
    if len(utilities):
        merch = np.where(rng.random(s) < 0.5, utilities[rng.integers(0, len(utilities), s)], merch)
    dst = np.where(to_payee, w.payees[s_cust, 0], w.merchant_id(merch))
    amount = np.where(to_payee, np.round(w.median[s_cust] * rng.uniform(5, 20, s), -1),
                      np.round(w.median[s_cust] * rng.uniform(0.3, 3, s), 2))
    hour = rng.integers(1, 7, s)
    count = (cfg.days - phase + period - 1) // period
    idx = np.repeat(np.arange(s), count)
    occurrence = np.arange(len(idx)) - np.repeat(np.cumsum(count) - count, count)
    day = phase[idx] + occurrence * period[idx]
    parts.add(day * DAY + hour[idx] * 3600 + rng.integers(0, 600, len(idx)), s_cust[idx], dst[idx], amount[idx],
              np.where(to_payee[idx], 2, 1), np.where(to_payee[idx], 0, w.category[merch[idx]] + 1))


# ---- fraud typologies: each adds `cases` cases starting on days [day_lo, ...), case ids from `case0` ----------
def _group_offsets(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(case index per row, position of the row inside its case) for cases of these sizes."""
    idx = np.repeat(np.arange(len(sizes)), sizes)
    return idx, np.arange(len(idx)) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _cumulative(gaps: np.ndarray, idx: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per-case running sums of `gaps` (rows grouped by case, in order)."""
    total = np.cumsum(gaps)
    return total - np.repeat(total[np.cumsum(sizes) - sizes] - gaps[np.cumsum(sizes) - sizes], sizes)


def card_testing(w: _World, parts: _Parts, cases: int, day_lo: int, case0: int) -> None:
    """Tiny online amounts at many merchants within minutes, then one or two large purchases."""
    rng, cfg = w.rng, w.cfg
    card = w.customers(cases)
    t0 = rng.integers(day_lo, cfg.days - 1, cases) * DAY + rng.integers(0, DAY - 6 * 3600, cases)  # bots: any hour
    n_tiny = rng.integers(5, 13, cases)
    idx, _ = _group_offsets(n_tiny)
    t = t0[idx] + _cumulative(rng.uniform(10, 180, len(idx)), idx, n_tiny).astype(np.int64)
    merch = rng.integers(0, cfg.n_merchants, len(idx))
    parts.add(t, card[idx], w.merchant_id(merch), np.round(rng.uniform(0.5, 3.0, len(idx)), 2), 1,
              w.category[merch] + 1, TYPOLOGIES.index("card_testing") + 1, case0 + idx)
    last = np.full(cases, 0, np.int64)
    np.maximum.at(last, idx, t)
    n_big = rng.integers(1, 3, cases)
    big_idx, _ = _group_offsets(n_big)
    t_big = last[big_idx] + _cumulative(rng.uniform(600, 3600, len(big_idx)), big_idx, n_big).astype(np.int64)
    pricey = np.flatnonzero(np.isin(w.category, [list(CATEGORIES).index(c) for c in
                                                 ("electronics", "travel", "online_shop")]))
    pool = pricey if len(pricey) else np.arange(cfg.n_merchants)
    merch = pool[rng.integers(0, len(pool), len(big_idx))]
    amount = np.maximum(w.median[card[big_idx]] * rng.uniform(15, 40, len(big_idx)), rng.uniform(300, 1500,
                                                                                                  len(big_idx)))
    parts.add(t_big, card[big_idx], w.merchant_id(merch), np.round(amount, 2), 1, w.category[merch] + 1,
              TYPOLOGIES.index("card_testing") + 1, case0 + big_idx)


def account_takeover(w: _World, parts: _Parts, cases: int, day_lo: int, case0: int) -> int:
    """Large round transfers to new payees at 01-05 h from a dormant (half the cases) or normal account.
    Returns how many outside accounts (never seen before) it created as payees."""
    rng, cfg = w.rng, w.cfg
    dormant = np.flatnonzero(w.dormant)
    victim = w.customers(cases)
    if len(dormant):
        victim = np.where(rng.random(cases) < 0.5, dormant[rng.integers(0, len(dormant), cases)], victim)
    t0 = rng.integers(day_lo, cfg.days - 1, cases) * DAY + rng.integers(3600, 5 * 3600, cases)
    n = rng.integers(2, 6, cases)
    idx, _ = _group_offsets(n)
    t = t0[idx] + _cumulative(rng.uniform(120, 1200, len(idx)), idx, n).astype(np.int64)
    outside = rng.random(len(idx)) < 0.5
    payee = (victim[idx] + rng.integers(1, cfg.n_customers, len(idx))) % cfg.n_customers
    payee[outside] = cfg.n_customers + np.arange(outside.sum())
    amount = np.maximum(np.round(w.median[victim[idx]] * rng.uniform(8, 25, len(idx)), -1), 200.0)
    parts.add(t, victim[idx], payee, amount, 2, 0, TYPOLOGIES.index("account_takeover") + 1, case0 + idx)
    return int(outside.sum())


def mule_ring(w: _World, parts: _Parts, cases: int, day_lo: int, case0: int) -> None:
    """Victims pay mules, mules pay each other (a chain through all of them plus a few more links), mules pay
    cash-out accounts, all within one 2-6 hour window; every amount and hour is ordinary for its sender."""
    rng, cfg = w.rng, w.cfg
    code = TYPOLOGIES.index("mule_ring") + 1
    for c in range(cases):
        m, v, k = int(rng.integers(4, 8)), int(rng.integers(8, 17)), int(rng.integers(2, 5))
        acc = w.active[rng.choice(len(w.active), m + v + k, replace=False)]  # ordinary accounts with a history
        mules, victims, cash = acc[:m], acc[m:m + v], acc[m + v:]
        t0 = w.times(mules[:1], day_lo, cfg.days - 1, hours=(7, 18))[0]
        width = rng.uniform(2, 6) * 3600
        perm = rng.permutation(mules)
        extra = rng.choice(mules, (m // 2, 2))
        extra = extra[extra[:, 0] != extra[:, 1]]
        inner_src = np.concatenate([perm[:-1], extra[:, 0]])
        inner_dst = np.concatenate([perm[1:], extra[:, 1]])
        src = np.concatenate([victims, inner_src, mules])
        dst = np.concatenate([mules[rng.integers(0, m, v)], inner_dst, cash[rng.integers(0, k, m)]])
        lo = np.concatenate([np.zeros(v), np.full(len(inner_src), 0.3), np.full(m, 0.6)])
        hi = np.concatenate([np.full(v, 0.5), np.full(len(inner_src), 0.8), np.ones(m)])
        t = t0 + (rng.uniform(lo, hi) * width).astype(np.int64)
        parts.add(t, src, dst, w.transfer_amount(src), 2, 0, code, case0 + c)


def laundering_cycle(w: _World, parts: _Parts, cases: int, day_lo: int, case0: int) -> None:
    """Money leaves an origin and returns to it through 2-6 accounts of similar means, 1-12 h per hop, a few
    percent skimmed per hop, each hop during the day."""
    rng, cfg = w.rng, w.cfg
    code = TYPOLOGIES.index("laundering_cycle") + 1
    for c in range(cases):
        hops = int(rng.integers(3, 8))
        origin = w.customers(1)
        t = np.empty(hops, np.int64)
        t[0] = w.times(origin, day_lo, cfg.days - 4, hours=(8, 18))[0]
        for i in range(1, hops):
            nxt = t[i - 1] + int(rng.uniform(1, 12) * 3600)
            hour = (nxt % DAY) // 3600
            if hour < 7 or hour >= 22:  # night: the next morning instead
                nxt = (nxt // DAY + (hour >= 22)) * DAY + int(rng.uniform(7, 10) * 3600)
            t[i] = nxt
        amount = np.empty(hops)
        amount[0] = w.transfer_amount(origin)[0]
        for i in range(1, hops):
            a = amount[i - 1] * rng.uniform(0.93, 0.99)
            amount[i] = np.floor(a / 5) * 5 if rng.random() < 0.5 and a > 10 else np.round(a, 2)
        # Each next account is one for whom the amount it forwards is an ordinary transfer: its median is the
        # amount divided by a ratio drawn like the benign transfers' (2 x log-normal).
        want = amount[1:] / (2.0 * np.exp(rng.normal(0, 0.75, hops - 1)))
        pos = np.searchsorted(w.active_medians, want) + rng.integers(-3, 4, hops - 1)
        near = w.active_by_median[np.clip(pos, 0, len(w.active_by_median) - 1)]
        near = pd.unique(np.concatenate([near[near != origin[0]], w.customers(2 * hops)]))
        near = near[near != origin[0]][:hops - 1]
        acc = np.concatenate([origin, near])
        parts.add(t, acc, np.roll(acc, -1), amount, 2, 0, code, case0 + c)


def colluding_merchant(w: _World, parts: _Parts, cases: int, day_lo: int, case0: int) -> None:
    """A small merchant receives a burst of ordinary-sized payments from 15-40 cards within 2-8 hours."""
    rng, cfg = w.rng, w.cfg
    small = np.flatnonzero(w.popularity <= np.median(w.popularity))
    merch = small[rng.integers(0, len(small), cases)]
    n = rng.integers(15, 41, cases)
    idx, _ = _group_offsets(n)
    cards = w.customers(len(idx))
    t0 = w.times(cards[np.cumsum(n) - n], day_lo, cfg.days - 1, hours=(9, 16))
    t = t0[idx] + (rng.random(len(idx)) * rng.uniform(2, 8, cases)[idx] * 3600).astype(np.int64)
    m = merch[idx]
    parts.add(t, cards, w.merchant_id(m), w.payment_amount(cards, m), w.payment_channel(m), w.category[m] + 1,
              TYPOLOGIES.index("colluding_merchant") + 1, case0 + idx)


def fraud_cases(cfg: TransactionConfig, benign_rows: int) -> dict[str, int]:
    """Number of cases per typology so that fraud rows are about `fraud_rate` of all rows."""
    if cfg.fraud_rate == 0:
        return {t: 0 for t in TYPOLOGIES}
    rows = cfg.fraud_rate / (1 - cfg.fraud_rate) * benign_rows
    total = sum(cfg.typology_mix.values())
    out = {}
    for t in TYPOLOGIES:
        share = cfg.typology_mix.get(t, 0.0) / total
        out[t] = max(1, int(round(rows * share / ROWS_PER_CASE[t]))) if share > 0 else 0
    return out


def generate(cfg: TransactionConfig, progress: bool = False) -> pd.DataFrame:
    """The canonical labelled transactions frame of `cfg`, sorted by time (same seed, same frame)."""
    from tqdm.auto import tqdm

    steps = ["benign", *TYPOLOGIES, "assemble"]
    bar = tqdm(total=len(steps), desc="generating", unit="step", disable=not progress)
    rng = np.random.default_rng(cfg.seed)
    w = _World(cfg, rng)
    parts = _Parts()
    _benign(w, parts)
    bar.update()
    cases = fraud_cases(cfg, sum(len(a) for a in parts.cols["t"]))
    makers = {"card_testing": card_testing, "account_takeover": account_takeover, "mule_ring": mule_ring,
              "laundering_cycle": laundering_cycle, "colluding_merchant": colluding_merchant}
    case0, outside = 0, 0
    for name in TYPOLOGIES:
        day_lo = int(np.ceil(cfg.holdout_after * cfg.days)) if name == cfg.holdout_typology else 0
        if cases[name]:
            made = makers[name](w, parts, cases[name], day_lo, case0)
            outside += made or 0
        case0 += cases[name]
        bar.update()
    df = _assemble(cfg, parts.concat(), cfg.n_customers + outside)
    bar.update()
    bar.close()
    return df


def _assemble(cfg: TransactionConfig, c: dict[str, np.ndarray], n_accounts: int) -> pd.DataFrame:
    span = cfg.days * DAY
    if len(c["t"]) and (c["t"].min() < 0 or c["t"].max() >= span):  # every part is built inside the period
        raise AssertionError(f"generated times outside [0, {span}) s; please report this with the config")
    order = np.argsort(c["t"], kind="stable")
    c = {k: v[order] for k, v in c.items()}
    accounts = np.char.add("C", np.arange(n_accounts).astype("U")).astype(object)
    merchants = np.char.add("M", np.arange(cfg.n_merchants).astype("U")).astype(object)

    def names(code: np.ndarray) -> pd.arrays.StringArray:
        out = np.where(code >= 0, accounts[np.clip(code, 0, None)], merchants[np.clip(-code - 1, 0, None)])
        return pd.array(out, dtype="string")

    start_ns = pd.Timestamp(cfg.start, tz="UTC").value
    typ_names = np.array(["", *TYPOLOGIES], dtype=object)
    cat_names = np.array(["p2p", *CATEGORIES], dtype=object)
    n = len(order)
    return pd.DataFrame({
        "transaction_id": pd.array(np.char.add("T", np.arange(n).astype("U")).astype(object), dtype="string"),
        "timestamp": pd.to_datetime(start_ns + c["t"].astype(np.int64) * 1_000_000_000, utc=True, unit="ns"),
        "source": names(c["src"]),
        "target": names(c["dst"]),
        "amount": c["amt"].astype(np.float64),
        "label": (c["typ"] > 0).astype(np.int8),
        "typology": pd.array(typ_names[c["typ"]], dtype="string"),
        "channel": pd.array(np.array(CHANNELS, dtype=object)[c["chan"]], dtype="string"),
        "category": pd.array(cat_names[c["cat"]], dtype="string"),
        "case_id": c["case"].astype(np.int32),
    })


# ---- command line ----------------------------------------------------------------------------------------
def parse_mix(text: str) -> dict[str, float]:
    """'mule_ring=0.5,card_testing=0.5' -> {'mule_ring': 0.5, 'card_testing': 0.5}."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"typology mix item {item!r} is not NAME=WEIGHT (e.g. mule_ring=0.4)")
    return out


def write(df: pd.DataFrame, out: str | Path) -> Path:
    """Write the frame as Parquet or CSV by the suffix of `out` (timestamps as ISO-8601 UTC in CSV)."""
    from shared.tabular import write_table

    return write_table(df, out)


def summary(df: pd.DataFrame) -> list[dict]:
    """One row per typology (and benign): rows, cases, share of all rows, first and last day."""
    t0 = df["timestamp"].min()
    rows = []
    typ = df["typology"].fillna("")
    for name in ["", *TYPOLOGIES]:
        part = df[typ == name]
        if len(part):
            rows.append({"typology": name or "(benign)", "rows": len(part),
                         "cases": int(part["case_id"].nunique()) if name else 0,
                         "share": len(part) / len(df),
                         "first_day": float((part["timestamp"].min() - t0).total_seconds() / DAY),
                         "last_day": float((part["timestamp"].max() - t0).total_seconds() / DAY)})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output file: .parquet or .csv")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    ap.add_argument("--size", choices=sorted(SIZES), default=None,
                    help="named size (customers/merchants/days); other flags override it")
    ap.add_argument("--rows", type=int, default=None, help="about this many rows (solves the number of customers)")
    for f in fields(TransactionConfig):
        if f.name in ("seed", "typology_mix"):
            continue
        flag = "--" + {"n_customers": "customers", "n_merchants": "merchants"}.get(f.name, f.name.replace("_", "-"))
        ap.add_argument(flag, dest=f.name, type=type(f.default), default=None,
                        help=f"TransactionConfig.{f.name} (default {f.default})")
    ap.add_argument("--mix", default=None, help="typology weights, e.g. mule_ring=0.5,card_testing=0.5")
    args = ap.parse_args(argv)
    cfg = config_from(size=args.size, rows=args.rows, mix=args.mix, seed=args.seed,
                      **{f.name: getattr(args, f.name) for f in fields(TransactionConfig)
                         if f.name not in ("seed", "typology_mix")})
    df = generate(cfg, progress=True)
    path = write(df, args.out)
    from shared.reporting import text_table

    print(text_table(summary(df), digits=4))
    print(f"{len(df):,} transactions -> {path}")


def config_from(size: str | None = None, rows: int | None = None, mix: str | None = None,
                **values) -> TransactionConfig:
    """A TransactionConfig from a named size, then explicit values (None = keep), then `rows` if given."""
    if size is not None and size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    kwargs = dict(SIZES[size]) if size else {}
    kwargs.update({k: v for k, v in values.items() if v is not None})
    if mix:
        kwargs["typology_mix"] = parse_mix(mix)
    if rows is not None:
        kwargs.pop("n_customers", None)
        return TransactionConfig.for_rows(rows, **kwargs)
    return TransactionConfig(**kwargs)


if __name__ == "__main__":
    main()
