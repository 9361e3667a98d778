"""Time ranges that hold similar row counts and never split one time: how the graph pass and the hot
entities' slices cut a data set by time."""

from __future__ import annotations

import numpy as np


def time_sample(t_ns: np.ndarray, size: int = 1024) -> tuple[np.ndarray, float]:
    """(evenly ranked times [<= size], rows each stands for) of one part: what `time_divisions` needs."""
    if not len(t_ns):
        return np.zeros(0, np.int64), 0.0
    ranked = np.sort(t_ns)[np.linspace(0, len(t_ns) - 1, min(len(t_ns), size)).astype(np.int64)]
    return ranked, len(t_ns) / len(ranked)


def time_divisions(samples: list[tuple[np.ndarray, float]], ranges: int) -> list[int]:
    """Boundaries [first time, ..., last time] of about `ranges` time ranges holding similar row counts, from
    the parts' `time_sample`s (strictly increasing; fewer ranges when times repeat).

    Why not let `set_index` find them: given input parts already in time order, Dask 2026.8 may keep the parts
    as they are while reporting quantile divisions that do not describe them, and two parts that meet inside
    one second then split the rows of that second; the later range's graph window missed the earlier part's
    rows of it. Explicit divisions make every range hold exactly the times between its boundaries."""
    t = np.concatenate([s for s, _ in samples]) if samples else np.zeros(0, np.int64)
    if not len(t):
        raise ValueError("no rows to cut into time ranges")
    w = np.concatenate([np.full(len(s), wt) for s, wt in samples])
    order = np.argsort(t, kind="stable")
    t, cum = t[order], np.cumsum(w[order])
    inner = t[np.minimum(np.searchsorted(cum, cum[-1] * np.arange(1, ranges) / ranges), len(t) - 1)]
    lo, hi = int(t[0]), int(t[-1])
    cuts = [int(c) for c in np.unique(inner) if lo < c < hi]
    return [lo, *cuts, hi] if hi > lo else [lo, hi]
