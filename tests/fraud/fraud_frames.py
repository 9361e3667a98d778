"""Tiny hand-made canonical transaction frames for the model-stack tests (no generator needed)."""

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def frame(secs, src, dst, amount, label=None) -> pd.DataFrame:
    """A canonical frame from parallel lists (seconds after 2024-01-01 UTC)."""
    n = len(secs)
    df = pd.DataFrame({"transaction_id": pd.array([f"t{i}" for i in range(n)], dtype="string"),
                       "timestamp": T0 + pd.to_timedelta(np.asarray(secs), unit="s"),
                       "source": pd.array(list(src), dtype="string"), "target": pd.array(list(dst), dtype="string"),
                       "amount": np.asarray(amount, dtype="float64")})
    if label is not None:
        df["label"] = np.asarray(label, dtype="int8")
    return df


def random_frame(n=400, days=10, n_ent=12, seed=0) -> pd.DataFrame:
    """Random transfers among a few entities, with a few shared timestamps (ties)."""
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.integers(0, days * 86400, n))
    secs[5] = secs[4]
    secs[100:103] = secs[100]
    ents = [f"E{i}" for i in range(n_ent)]
    return frame(secs, rng.choice(ents, n), rng.choice(ents, n), rng.gamma(2, 30, n),
                 (rng.random(n) < 0.1).astype(int))


def planted(n=12000, days=30, seed=0, rate=0.03) -> pd.DataFrame:
    """Customers pay merchants; fraud rows go to a few 'collector' accounts that fan money in from many
    customers, then forward it onward (visible through who-transacts-with-whom, amounts ordinary)."""
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.integers(0, days * 86400, n))
    src = np.array([f"C{i}" for i in rng.integers(0, 600, n)], dtype=object)
    dst = np.array([f"M{i}" for i in rng.integers(0, 80, n)], dtype=object)
    fraud = rng.random(n) < rate
    dst[fraud] = np.array([f"X{i}" for i in rng.integers(0, 6, fraud.sum())], dtype=object)
    fwd = fraud & (rng.random(n) < 0.5)  # collectors forward to other collectors
    src[fwd] = dst[fwd]
    dst[fwd] = np.array([f"X{i}" for i in rng.integers(6, 9, fwd.sum())], dtype=object)
    return frame(secs, src, dst, rng.lognormal(3, 1, n), fraud.astype(int))
