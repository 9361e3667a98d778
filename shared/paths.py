"""Where the project keeps generated data, caches and runs, so nothing lands in the home folder."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The project's cache directory: $DLCS_CACHE_DIR, else `.cache/` at the project root."""
    path = Path(os.environ.get("DLCS_CACHE_DIR") or PROJECT_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def runs_dir() -> Path:
    """Default root for run directories: $DLCS_RUNS_DIR, else `runs/` at the project root."""
    path = Path(os.environ.get("DLCS_RUNS_DIR") or PROJECT_ROOT / "runs")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()
