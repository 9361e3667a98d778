"""Which shuffled partition each row's entity copy goes to, so that no partition outgrows its row budget.

Hashing entities into buckets bounds a bucket only if no entity is large: real payment data has merchants
that receive a quarter of all payments, and such an entity's bucket grows with the data set however many
buckets there are. So an entity with more copies than half a partition is *hot*: its copies are cut by time
into slices of about half a partition each, and the slices are featurised one after another, each from the
history its predecessor leaves (`fraud.scale.features.hot_slice_task`), the way one process scores a file in
chunks. Every other entity is hashed into one of `buckets` partitions.

    plan = plan_entities(counts, copies, rows_per_partition=250_000, min_buckets=4, samples=time_samples)
    part = plan.partition(names, t_ns)   # partition number of each copy, 0 .. plan.parts - 1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fraud.scale.time_ranges import time_divisions

# Time ranges per slice the hot entities are cut on: a slice is then within a quarter of its target size of
# rows wherever the entity's rows fall among the ranges.
RANGES_PER_SLICE = 4


def bucket_of(names: pd.Series, buckets: int) -> np.ndarray:
    """Bucket [n] int64 of entity names: the same name lands in the same bucket in every process."""
    h = pd.util.hash_array(names.astype("string").fillna("").to_numpy(dtype=object))
    return (h % np.uint64(buckets)).astype(np.int64)


@dataclass(frozen=True)
class EntityPlan:
    """Partitions 0 .. buckets-1 hold hashed entities; then each hot entity's time slices in time order."""

    buckets: int
    hot: dict[str, int] = field(default_factory=dict)  # hot entity name -> number of time slices
    cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # inner time boundaries, ns

    @property
    def parts(self) -> int:
        return self.buckets + sum(self.hot.values())

    def first_part(self, name: str) -> int:
        """The partition of `name`'s first time slice (a hot entity)."""
        return self.buckets + sum(s for n, s in self.hot.items() if n < name)

    def slices(self) -> list[tuple[str, list[int]]]:
        """(hot entity, its partitions in time order), in name order."""
        return [(n, list(range(self.first_part(n), self.first_part(n) + self.hot[n]))) for n in sorted(self.hot)]

    def slice_starts(self, name: str) -> list[int]:
        """A lower bound (ns) on the times of each of `name`'s slices: its first time range's start (the
        int64 minimum for the first slice, the maximum for a slice past the last range)."""
        n, ranges = self.hot[name], len(self.cuts) + 1
        first = [-(-j * ranges // n) for j in range(n)]  # slice j holds ranges r with r * n // ranges == j
        lo, hi = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
        return [lo if r == 0 else int(self.cuts[r - 1]) if r <= len(self.cuts) else hi for r in first]

    def out_of_reach(self, name: str, reach_ns: int) -> list[int]:
        """Per slice of `name`: how many slices before it end more than `reach_ns` before it starts (no
        window reaches them; always a prefix of the earlier slices)."""
        starts = self.slice_starts(name)
        return [sum(1 for k in range(j) if starts[k + 1] <= starts[j] - reach_ns) for j in range(len(starts))]

    def partition(self, names: pd.Series, t_ns: np.ndarray) -> np.ndarray:
        """Partition [n] int64 of copies keyed by `names` at times `t_ns`."""
        part = bucket_of(names, self.buckets)
        if not self.hot:
            return part
        hot = sorted(self.hot)
        which = pd.Index(hot, dtype="string").get_indexer(names.astype("string"))
        is_hot = which >= 0
        if is_hot.any():
            n_slices = np.array([self.hot[n] for n in hot], np.int64)
            first = self.buckets + np.concatenate([[0], np.cumsum(n_slices)[:-1]])
            w = which[is_hot]
            ranges = len(self.cuts) + 1
            r = np.searchsorted(self.cuts, t_ns[is_hot], side="right")  # time range of each copy
            part[is_hot] = first[w] + r * n_slices[w] // ranges
        return part


def plan_entities(counts: pd.Series, copies: int, rows_per_partition: int, min_buckets: int,
                  samples: list[tuple[np.ndarray, float]], buckets: int | None = None) -> EntityPlan:
    """The plan for `copies` entity copies of which `counts` (name -> copies) lists at least every entity
    above half of `rows_per_partition`; `samples`: the rows' `time_sample`s; `buckets` overrides the count
    of hash buckets (default: enough for the other copies at `rows_per_partition`, at least `min_buckets`)."""
    half = max(1, rows_per_partition // 2)
    big = counts[counts > half]
    hot = {str(n): int(-(-int(c) // half)) for n, c in big.items()}
    rest = copies - int(big.sum())
    buckets = buckets or max(min_buckets, -(-rest // rows_per_partition))
    if not hot:
        return EntityPlan(buckets)
    cuts = np.asarray(time_divisions(samples, RANGES_PER_SLICE * max(hot.values()))[1:-1], np.int64)
    return EntityPlan(buckets, hot, cuts)
