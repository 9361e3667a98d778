"""A stand-in transaction generator for the fraud model benchmark, used only while issue 3's
`data_scripts.make_transactions` is not available (the benchmark prefers that one when it imports).

It follows issue 3's typology definitions with graph-only typologies kept ordinary at row level:
amounts drawn from the sender's own profile, normal hours, ordinary customers as participants.
- card_testing: 8 tiny amounts at random merchants within minutes, then a large one;
- account_takeover: 3 transfers of 8-20x the profile amount to random payees at night;
- mule_ring: 12 victims pay 5 mule accounts within 2 h, mules pay each other, then cash out;
- laundering_cycle: a chain of 3-5 accounts returns money to its origin, 1-12 h per hop, 1-7 % skimmed;
- colluding_merchant: 25 customers pay one merchant within 6 h at their usual amounts.
`holdout` typology starts only after `holdout_after` of the period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRESETS = {"demo": {"n_cust": 2000, "n_merch": 150, "days": 30, "scale": 0.4},
           "report": {"n_cust": 5000, "n_merch": 300, "days": 45, "scale": 1.0}}


def generate(n_cust: int = 5000, n_merch: int = 300, days: int = 45, seed: int = 0, scale: float = 1.0,
             holdout: str = "", holdout_after: float = 0.6, rate_per_day: float = 1.0) -> pd.DataFrame:
    """A canonical labelled transactions frame with a `typology` column, sorted by time."""
    rng = np.random.default_rng(seed)
    span = days * 86400
    frames = []
    rate = rng.gamma(2, rate_per_day / 2, n_cust)
    prof = rng.lognormal(3, 0.6, n_cust)
    n_b = int(rate.sum() * days)
    cust = rng.choice(n_cust, n_b, p=rate / rate.sum())
    fav = rng.integers(0, n_merch, (n_cust, 5))
    merch = np.where(rng.random(n_b) < 0.8, fav[cust, rng.integers(0, 5, n_b)], rng.integers(0, n_merch, n_b))
    frames.append(pd.DataFrame({"t": rng.integers(0, span, n_b), "s": np.char.add("C", cust.astype(str)),
                                "d": np.char.add("M", merch.astype(str)), "a": prof[cust] * rng.lognormal(0, 0.7, n_b),
                                "typ": ""}))
    n_p = n_b // 8  # person-to-person transfers to a few regular payees
    pc = rng.integers(0, n_cust, n_p)
    payee = (pc * 7 + rng.integers(1, 4, n_p) * 13) % n_cust
    frames.append(pd.DataFrame({"t": rng.integers(0, span, n_p), "s": np.char.add("C", pc.astype(str)),
                                "d": np.char.add("C", payee.astype(str)), "a": prof[pc] * rng.lognormal(0.5, 0.8, n_p),
                                "typ": ""}))
    events: list[tuple] = []

    def start(typ: str) -> float:
        return rng.uniform(holdout_after * span if typ == holdout else 0, span - 86400)

    def count(n: int) -> int:
        return max(1, int(round(n * scale)))

    for _ in range(count(60)):
        t0, mules = start("mule_ring"), rng.choice(n_cust, 5, replace=False)
        for v in rng.choice(n_cust, 12, replace=False):
            events.append((t0 + rng.uniform(0, 7200), f"C{v}", f"C{rng.choice(mules)}", prof[v] * rng.lognormal(0.5, 0.8),
                           "mule_ring"))
        for _ in range(8):
            a, b = rng.choice(mules, 2, replace=False)
            events.append((t0 + 7200 + rng.uniform(0, 7200), f"C{a}", f"C{b}", prof[a] * rng.lognormal(0.5, 0.8),
                           "mule_ring"))
        for m in mules:
            events.append((t0 + 4 * 3600 + rng.uniform(0, 3600), f"C{m}", f"C{rng.integers(0, n_cust)}",
                           prof[m] * rng.lognormal(0.5, 0.8), "mule_ring"))
    for _ in range(count(80)):
        n = rng.integers(3, 6)
        acc, tt = rng.choice(n_cust, n, replace=False), start("laundering_cycle")
        amount = prof[acc[0]] * rng.lognormal(0.5, 0.5)
        for i in range(n):
            tt += rng.uniform(3600, 12 * 3600)
            amount *= rng.uniform(0.93, 0.99)
            events.append((tt, f"C{acc[i]}", f"C{acc[(i + 1) % n]}", amount, "laundering_cycle"))
    for _ in range(count(60)):
        c, t0 = rng.integers(0, n_cust), start("card_testing")
        for k in range(8):
            events.append((t0 + k * rng.uniform(20, 200), f"C{c}", f"M{rng.integers(0, n_merch)}", rng.uniform(0.5, 3),
                           "card_testing"))
        events.append((t0 + 3600, f"C{c}", f"M{rng.integers(0, n_merch)}", prof[c] * 20, "card_testing"))
    for _ in range(count(150)):
        c, t0 = rng.integers(0, n_cust), start("account_takeover")
        t0 = t0 - t0 % 86400 + rng.uniform(1, 5) * 3600
        for k in range(3):
            events.append((t0 + k * 600, f"C{c}", f"C{rng.integers(0, n_cust)}", prof[c] * rng.uniform(8, 20),
                           "account_takeover"))
    for _ in range(count(20)):
        m, t0 = rng.integers(0, n_merch), start("colluding_merchant")
        for v in rng.choice(n_cust, 25, replace=False):
            events.append((t0 + rng.uniform(0, 6 * 3600), f"C{v}", f"M{m}", prof[v] * rng.lognormal(0, 0.7),
                           "colluding_merchant"))
    frames.append(pd.DataFrame(events, columns=["t", "s", "d", "a", "typ"]))
    df = pd.concat(frames, ignore_index=True)
    df = df[df["t"] < span].sort_values("t", kind="stable").reset_index(drop=True)
    return pd.DataFrame({
        "transaction_id": pd.array([f"T{i}" for i in range(len(df))], dtype="string"),
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(df["t"].astype("int64"), unit="s"),
        "source": pd.array(df["s"], dtype="string"), "target": pd.array(df["d"], dtype="string"),
        "amount": df["a"].round(2).astype("float64"), "label": (df["typ"] != "").astype("int8"),
        "typology": pd.array(df["typ"], dtype="string")})
