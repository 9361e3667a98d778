"""The six fraud typologies of the transaction generator; each adds whole cases to the generated columns.

Each function draws `cases` cases starting on days >= `day_lo` (the holdout cut for a held-out typology),
numbers them from `case0`, and adds their rows to `parts` (compromised_merchant relabels benign card payments
instead of adding rows). See `make_transactions`' docstring for what each typology does and
docs/fraud-data.md for why mule_ring and laundering_cycle are visible only in the graph and
compromised_merchant only through delayed labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_scripts.transaction_config import TransactionConfig
from data_scripts.transaction_world import CATEGORIES, DAY, Columns, World
from fraud.data.frame import TYPOLOGIES

GRAPH_TYPOLOGIES = ("mule_ring", "laundering_cycle")
# Mean rows per fraud case, to turn a row budget into a number of cases.
ROWS_PER_CASE = {"card_testing": 10.0, "account_takeover": 3.5, "mule_ring": 24.0, "laundering_cycle": 4.5,
                 "colluding_merchant": 27.5, "compromised_merchant": 44.0}


def _group_offsets(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(case index per row, position of the row inside its case) for cases of these sizes."""
    idx = np.repeat(np.arange(len(sizes)), sizes)
    return idx, np.arange(len(idx)) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _cumulative(gaps: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per-case running sums of `gaps` (rows grouped by case, in order)."""
    total = np.cumsum(gaps)
    return total - np.repeat(total[np.cumsum(sizes) - sizes] - gaps[np.cumsum(sizes) - sizes], sizes)


def card_testing(w: World, parts: Columns, cases: int, day_lo: int, case0: int) -> None:
    """Tiny online amounts at many merchants within minutes, then one or two large purchases."""
    rng, cfg = w.rng, w.cfg
    card = w.customers(cases)
    t0 = rng.integers(day_lo, cfg.days - 1, cases) * DAY + rng.integers(0, DAY - 6 * 3600, cases)  # bots: any hour
    n_tiny = rng.integers(5, 13, cases)
    idx, _ = _group_offsets(n_tiny)
    t = t0[idx] + _cumulative(rng.uniform(10, 180, len(idx)), n_tiny).astype(np.int64)
    merch = rng.integers(0, cfg.n_merchants, len(idx))
    parts.add(t, card[idx], w.merchant_id(merch), np.round(rng.uniform(0.5, 3.0, len(idx)), 2), 1,
              w.category[merch] + 1, TYPOLOGIES.index("card_testing") + 1, case0 + idx)
    last = np.full(cases, 0, np.int64)
    np.maximum.at(last, idx, t)
    n_big = rng.integers(1, 3, cases)
    big_idx, _ = _group_offsets(n_big)
    t_big = last[big_idx] + _cumulative(rng.uniform(600, 3600, len(big_idx)), n_big).astype(np.int64)
    pricey = np.flatnonzero(np.isin(w.category, [list(CATEGORIES).index(c) for c in
                                                 ("electronics", "travel", "online_shop")]))
    pool = pricey if len(pricey) else np.arange(cfg.n_merchants)
    merch = pool[rng.integers(0, len(pool), len(big_idx))]
    amount = np.maximum(w.median[card[big_idx]] * rng.uniform(15, 40, len(big_idx)), rng.uniform(300, 1500,
                                                                                                  len(big_idx)))
    parts.add(t_big, card[big_idx], w.merchant_id(merch), np.round(amount, 2), 1, w.category[merch] + 1,
              TYPOLOGIES.index("card_testing") + 1, case0 + big_idx)


def account_takeover(w: World, parts: Columns, cases: int, day_lo: int, case0: int) -> int:
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
    t = t0[idx] + _cumulative(rng.uniform(120, 1200, len(idx)), n).astype(np.int64)
    outside = rng.random(len(idx)) < 0.5
    payee = (victim[idx] + rng.integers(1, cfg.n_customers, len(idx))) % cfg.n_customers
    regular = (w.payees[victim[idx]] == payee[:, None]).any(axis=1)  # must be new: step past regular payees
    while regular.any():
        payee[regular] = (payee[regular] + 1) % cfg.n_customers
        payee[regular & (payee == victim[idx])] += 1
        payee %= cfg.n_customers
        regular = (w.payees[victim[idx]] == payee[:, None]).any(axis=1) | (payee == victim[idx])
    payee[outside] = cfg.n_customers + np.arange(outside.sum())
    amount = np.maximum(np.round(w.median[victim[idx]] * rng.uniform(8, 25, len(idx)), -1), 200.0)
    parts.add(t, victim[idx], payee, amount, 2, 0, TYPOLOGIES.index("account_takeover") + 1, case0 + idx)
    return int(outside.sum())


def mule_ring(w: World, parts: Columns, cases: int, day_lo: int, case0: int) -> None:
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
        paid = rng.permutation(np.concatenate([np.arange(m), rng.integers(0, m, v - m)]))  # each mule receives
        dst = np.concatenate([mules[paid], inner_dst, cash[rng.integers(0, k, m)]])
        lo = np.concatenate([np.zeros(v), np.full(len(inner_src), 0.3), np.full(m, 0.6)])
        hi = np.concatenate([np.full(v, 0.5), np.full(len(inner_src), 0.8), np.ones(m)])
        t = t0 + (rng.uniform(lo, hi) * width).astype(np.int64)
        parts.add(t, src, dst, w.transfer_amount(src), 2, 0, code, case0 + c)


def laundering_cycle(w: World, parts: Columns, cases: int, day_lo: int, case0: int) -> None:
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
            rounded = np.floor(a / 5) * 5  # round when that still skims at most 7 % (not on small amounts)
            amount[i] = rounded if rng.random() < 0.5 and rounded >= 0.93 * amount[i - 1] else np.round(a, 2)
        # Each next account is one for whom the amount it forwards is an ordinary transfer: its median is the
        # amount divided by a ratio drawn like the benign transfers' (2 x log-normal).
        want = amount[1:] / (2.0 * np.exp(rng.normal(0, 0.75, hops - 1)))
        pos = np.searchsorted(w.active_medians, want) + rng.integers(-3, 4, hops - 1)
        near = w.active_by_median[np.clip(pos, 0, len(w.active_by_median) - 1)]
        near = pd.unique(np.concatenate([near[near != origin[0]], w.customers(2 * hops)]))
        near = near[near != origin[0]][:hops - 1]
        acc = np.concatenate([origin, near])
        parts.add(t, acc, np.roll(acc, -1), amount, 2, 0, code, case0 + c)


def colluding_merchant(w: World, parts: Columns, cases: int, day_lo: int, case0: int) -> None:
    """A small merchant receives a burst of ordinary-sized payments from 15-40 cards within 2-8 hours. The
    cards were compromised at one breached merchant they all shop at regularly (a common point of purchase,
    visible in the graph: the cards share an earlier merchant)."""
    rng, cfg = w.rng, w.cfg
    small = np.flatnonzero(w.popularity <= np.median(w.popularity))
    merch = small[rng.integers(0, len(small), cases)]
    n = rng.integers(15, 41, cases)
    idx, _ = _group_offsets(n)
    top = w.favourites[:, :2]  # the two favourites a customer uses most (55 % of its card payments)
    regulars = np.bincount(top[~w.dormant, 0], minlength=cfg.n_merchants) + np.bincount(
        top[~w.dormant & (top[:, 1] != top[:, 0]), 1], minlength=cfg.n_merchants)
    cards = np.empty(len(idx), np.int64)
    for c in range(cases):  # per case, not per row: a few hundred cases even at 1M rows
        big = regulars >= n[c]
        p = np.where(big, w.popularity, 0.0) if big.any() else (regulars == regulars.max()).astype(float)
        breached = rng.choice(cfg.n_merchants, p=p / p.sum())
        shoppers = np.flatnonzero((top == breached).any(axis=1) & ~w.dormant)
        take = rng.permutation(shoppers)[:n[c]]
        fill = w.customers(n[c] - len(take))  # a breach smaller than the burst: the rest from elsewhere
        cards[idx == c] = np.concatenate([take, fill])
    t0 = w.times(cards[np.cumsum(n) - n], day_lo, cfg.days - 1, hours=(9, 16))
    t = t0[idx] + (rng.random(len(idx)) * rng.uniform(2, 8, cases)[idx] * 3600).astype(np.int64)
    m = merch[idx]
    parts.add(t, cards, w.merchant_id(m), w.payment_amount(cards, m), w.payment_channel(m), w.category[m] + 1,
              TYPOLOGIES.index("colluding_merchant") + 1, case0 + idx)


def compromised_merchant(w: World, parts: Columns, cases: int, day_lo: int, case0: int) -> None:
    """A merchant's terminal or checkout page is skimmed for 2-5 weeks: 50-90 % of the card payments made
    there in that window become fraud. They are relabelled benign payments, so the merchant's volume and the
    amounts, hours, channels and payers stay exactly ordinary; only its earlier payments' labels show it."""
    rng, cfg = w.rng, w.cfg
    code = TYPOLOGIES.index("compromised_merchant") + 1
    card = parts.part("card_payments")
    merch, day = -card["dst"] - 1, card["t"] // DAY
    # Card payments per merchant and day over the whole period: choosing by the window's own count would
    # favour windows that happen to be busy, and the volume inside would give the case away.
    daily = np.bincount(merch, minlength=cfg.n_merchants) / cfg.days
    used = np.zeros(cfg.n_merchants, bool)
    # In a busy world even the quietest merchant gives a case hundreds of rows: stop at the row budget.
    budget = cases * ROWS_PER_CASE["compromised_merchant"]
    for c in range(cases):
        if budget <= 0:
            break
        length, share, want = int(rng.integers(14, 36)), rng.uniform(0.5, 0.9), int(rng.integers(20, 61))
        lo = day_lo + int(rng.integers(0, max(1, cfg.days - 7 - day_lo)))  # >= a week inside the period
        hi = min(cfg.days, lo + length)
        expect = share * daily * (hi - lo)
        # A merchant whose traffic gives the case about `want` rows (tens), each merchant compromised once.
        fits = np.flatnonzero(~used & (expect >= want / 1.5) & (expect <= 1.5 * want))
        m = rng.choice(fits) if len(fits) else int(np.argmin(np.abs(expect - want) + np.where(used, 1e9, 0.0)))
        rows = np.flatnonzero((merch == m) & (day >= lo) & (day < hi) & (card["typ"] == 0))
        take = rng.choice(rows, min(len(rows), max(1, int(round(share * len(rows))))), replace=False)
        parts.relabel("card_payments", take, code, case0 + c)
        used[m] = True
        budget -= len(take)


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


MAKERS = {"card_testing": card_testing, "account_takeover": account_takeover, "mule_ring": mule_ring,
          "laundering_cycle": laundering_cycle, "colluding_merchant": colluding_merchant,
          "compromised_merchant": compromised_merchant}
