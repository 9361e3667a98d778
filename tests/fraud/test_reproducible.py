"""The same seed gives the same standard and defended models in any process, thread setting and order."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fingerprint(omp: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": omp, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "random"}
    return subprocess.Popen([sys.executable, "-m", "tests.fixtures.fit_fingerprint", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_models_and_scores_are_identical_across_processes_threads_and_order():
    # One process on one OpenMP/torch thread, standard first; the other on two, defended first and attacked
    # before the standard stack is trained. Each has its own random string-hash seed.
    runs = [_fingerprint("1", "--threads", "1", "--order", "standard,adversarial"),
            _fingerprint("2", "--threads", "2", "--order", "adversarial,standard", "--attack-between")]
    outs = []
    for p in runs:
        stdout, stderr = p.communicate(timeout=900)
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    a, b = outs
    for name in ("standard", "adversarial"):
        for part in ("booster", "gnn", "autoencoder", "scores"):
            assert a[name][part] == b[name][part], f"{name} {part} differs between the two processes"
    assert a["standard"]["booster"] != a["adversarial"]["booster"]
    # The same attack seed gives the same attack on the same model, whatever ran before it.
    assert a["standard"]["attack"] == b["standard"]["attack"]
