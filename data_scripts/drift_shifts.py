"""Later files with a known shift, for testing a drift check: amounts scaled, a category's share changed,
new entities, or fraud of another typology mix (same world, same benign rows).

    later = later_rows(generate(cfg), after_ns)                 # same distribution: the next period
    scale_amounts(later, 3.0)                                   # every amount x3
    thin_category(later, "p2p", keep=0.2, seed=0)               # 80 % of transfers gone: their share drops
    rename_entities(later, "source", share=0.3, seed=0)         # 30 % of the senders are new customers
    later_rows(generate(replace(cfg, typology_mix={"card_testing": 1.0})), after_ns)   # another fraud mix

Each takes and returns a canonical frame in event order (the generator's extra columns kept), never
changing its input. `generate` draws the benign world before any fraud case, so a config that differs
only in `typology_mix` gives the same benign rows and other fraud cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["later_rows", "rename_entities", "scale_amounts", "thin_category"]


def later_rows(df: pd.DataFrame, after_ns: int) -> pd.DataFrame:
    """Rows of `df` at or after `after_ns` (ns since the epoch, e.g. a model's `history_.max_ns`), in order."""
    t = df["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    return df[t >= after_ns].sort_values("timestamp", kind="stable").reset_index(drop=True)


def scale_amounts(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Every amount times `factor` (a currency change, a price level, a new customer segment)."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    return df.assign(amount=df["amount"] * factor)


def thin_category(df: pd.DataFrame, category: str, keep: float, seed: int) -> pd.DataFrame:
    """Keep a random `keep` share of the rows of `category` (the generator's `category` column: p2p,
    grocery, ...) and every other row: that category's share of the file drops."""
    if "category" not in df.columns:
        raise ValueError("the frame has no `category` column; thin a frame from data_scripts.make_transactions")
    known = sorted(df["category"].dropna().unique())
    if category not in known:
        raise ValueError(f"category {category!r} is not in the frame; known: {', '.join(known)}")
    if not 0 <= keep <= 1:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    rng = np.random.default_rng(seed)
    drop = (df["category"] == category).to_numpy() & (rng.random(len(df)) >= keep)
    return df[~drop].reset_index(drop=True)


def rename_entities(df: pd.DataFrame, role: str, share: float, seed: int) -> pd.DataFrame:
    """A random `share` of the distinct names in column `role` ('source' or 'target') renamed to names
    nobody has seen (all rows of a chosen entity): new customers or merchants behaving like the old ones."""
    if role not in ("source", "target"):
        raise ValueError(f"role must be 'source' or 'target', got {role!r}")
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    rng = np.random.default_rng(seed)
    names = pd.unique(df[role].to_numpy())
    chosen = set(names[rng.random(len(names)) < share].tolist())
    col = df[role].astype("string")
    new = col.where(~col.isin(chosen), "NEW-" + col)
    return df.assign(**{role: new})
