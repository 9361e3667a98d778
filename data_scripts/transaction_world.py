"""The benign side of the transaction generator: customers and merchants with habits, and their ordinary
payments, transfers, bill splits and recurring payments (all vectorised: no Python loop per row).

`World` also holds the draws the graph-only fraud typologies reuse (`times`, `transfer_amount`, `customers`),
so that their rows come out of the same distributions as ordinary rows. Entities are integer codes until
`make_transactions` names them: accounts >= 0 (`C<code>`), merchants < 0 (`M<-code-1>`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_scripts.transaction_config import TransactionConfig

DAY = 86400
CATEGORIES = {"grocery": (0.22, 0.8, 0.05), "restaurant": (0.18, 0.7, 0.05), "fuel": (0.08, 1.3, 0.0),
              "retail": (0.16, 1.2, 0.35), "online_shop": (0.12, 1.0, 1.0), "electronics": (0.05, 3.0, 0.5),
              "travel": (0.04, 4.0, 0.7), "health": (0.06, 1.1, 0.1), "entertainment": (0.05, 0.9, 0.6),
              "utilities": (0.04, 1.5, 1.0)}
CHANNELS = ("card", "online", "transfer")
# Relative activity per hour of the day (quiet nights, lunchtime and evening peaks) and per weekday (Mon..Sun).
HOURLY = np.array([0.6, 0.3, 0.2, 0.15, 0.2, 0.4, 1.0, 2.0, 3.0, 3.6, 3.8, 4.2, 5.0, 4.6, 4.0, 4.0, 4.3,
                   5.0, 5.4, 5.0, 4.0, 3.0, 2.0, 1.2])
WEEKLY = np.array([0.95, 0.95, 1.0, 1.05, 1.2, 1.25, 0.75])

class Columns:
    """Columns collected part by part (integer-coded) and assembled once at the end. A part added with a
    `name` can be read back and relabelled, for typologies that turn ordinary rows into fraud."""

    def __init__(self):
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "src", "dst", "amt", "typ", "chan", "cat",
                                                                  "case")}
        self.named: dict[str, int] = {}

    def add(self, t, src, dst, amt, chan, cat, typ=0, case=-1, name: str = "") -> None:
        n = len(t)
        if name:
            self.named[name] = len(self.cols["t"])
        for k, v in (("t", t), ("src", src), ("dst", dst), ("amt", amt), ("chan", chan), ("cat", cat),
                     ("typ", typ), ("case", case)):
            self.cols[k].append(np.broadcast_to(np.asarray(v), (n,)).copy())

    def part(self, name: str) -> dict[str, np.ndarray]:
        """Read-only views of the columns of the part added as `name`."""
        out = {}
        for k, v in self.cols.items():
            out[k] = v[self.named[name]].view()
            out[k].flags.writeable = False
        return out

    def relabel(self, name: str, rows: np.ndarray, typ: int, case: int) -> None:
        """Mark these rows (positions in part `name`) as fraud of typology code `typ` in case `case`."""
        i = self.named[name]
        self.cols["typ"][i][rows] = typ
        self.cols["case"][i][rows] = case

    def concat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.cols.items()}


class World:
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


def benign(w: World, parts: Columns) -> None:
    """Add every ordinary row; the card payments form the part "card_payments" (compromised_merchant
    relabels some of them, so its fraud keeps the merchant's ordinary volume, amounts and hours)."""
    cfg, rng = w.cfg, w.rng
    n = cfg.n_customers
    # Card payments.
    k = rng.poisson(w.activity.sum() * cfg.days)
    cust = w.customers(k)
    fav = w.favourites[cust, rng.choice(6, k, p=[0.33, 0.22, 0.16, 0.12, 0.09, 0.08])]
    other = rng.choice(cfg.n_merchants, k, p=w.popularity / w.popularity.sum())
    merch = np.where(rng.random(k) < 0.85, fav, other)
    parts.add(w.times(cust), cust, w.merchant_id(merch), w.payment_amount(cust, merch), w.payment_channel(merch),
              w.category[merch] + 1, name="card_payments")
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
