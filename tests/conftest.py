"""Test-wide settings: keep caches and runs in a temp folder so tests never touch the checkout."""

import os

import pytest

# Before any test module imports torch/xgboost (collection does), so OpenMP reads it: spinning OpenMP threads
# slow XGBoost and torch several-fold whenever other jobs share the CPU (`make test` exports it too).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dlcs")
    os.environ.setdefault("DLCS_RUNS_DIR", str(root / "runs"))
    yield
