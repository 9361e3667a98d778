"""One call that makes a run repeatable: the same seed gives the same data, weights and metrics."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, deterministic_torch: bool = True) -> np.random.Generator:
    """Seed Python, NumPy and (when imported) torch; return a NumPy Generator for local use.

    torch is seeded only if something already imported it, so light commands stay free of it.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import sys

    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        if deterministic_torch:
            torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def named_rng(seed: int, name: str) -> np.random.Generator:
    """A NumPy Generator for one consumer of `seed` (e.g. "attack.blackbox"), independent of every other name.

    Each consumer draws from its own stream (SeedSequence spawn key from a stable hash of `name`, not
    Python's per-process `hash`), so adding draws to one (more candidates, another attack, another budget)
    leaves the others' draws, and so the models and the other attacks, unchanged.
    """
    import zlib

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),)))
