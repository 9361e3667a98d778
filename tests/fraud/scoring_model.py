"""One tiny trained fraud model per test session for the scoring, drift and service tests."""

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from fraud_frames import planted

from fraud.features.graph import GraphConfig
from fraud.models.autoencoder import AEConfig
from fraud.models.booster import BoosterConfig
from fraud.models.gnn import GNNConfig
from fraud.stack.config import FraudConfig
from fraud.stack.evaluate import temporal_split
from fraud.stack.model import FraudModel


@functools.lru_cache(maxsize=1)
def tiny_model() -> tuple[FraudModel, Path, pd.DataFrame]:
    """(model, its saved directory, the later rows it never saw: canonical, in event order, no labels).

    Trained once per process (a few seconds); callers must not mutate the model or the frame.
    """
    df = planted(n=4000, days=16, seed=1)
    split = temporal_split(df, 0.6, 0.2)
    cfg = FraudConfig(gnn=GNNConfig(hidden=16, embed=4, epochs=2), autoencoder=AEConfig(epochs=3),
                      booster=BoosterConfig(n_estimators=40, n_jobs=1), graph=GraphConfig(every="2h", window="2d"))
    model = FraudModel(cfg).fit(split.train, split.val, progress=False)
    root = Path(tempfile.mkdtemp(prefix="fraud-score-model-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    run = model.save(root / "model")
    later = split.test.drop(columns=["label"]).reset_index(drop=True)
    return model, run, later


@functools.cache
def _torch():
    import torch

    return torch


def single_threaded():
    """Generator for an autouse fixture: torch on one thread while a test module runs, restored after.

    On this shared 2-core machine, OpenMP threads spinning for CPU made the tiny model's fit ~6x slower
    (3.5 s -> 22 s) whenever OMP_WAIT_POLICY=PASSIVE was not set before torch loaded.
    """
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
