"""The fraud stack's configuration (one dataclass per part, filled from configs/fraud.yaml) and the checks
that stop unusable training data before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from fraud.data.frame import DataError
from fraud.features.behaviour import FeatureConfig
from fraud.features.graph import GraphConfig
from fraud.features.labels import LabelConfig
from fraud.models.autoencoder import AEConfig
from fraud.models.booster import BoosterConfig
from fraud.models.gnn import GNNConfig
from fraud.robust.config import AdversarialConfig
from fraud.stack.evaluate import EvalConfig


@dataclass
class PartsConfig:
    """Which parts feed XGBoost (all on = the full stack)."""

    neighbour: bool = True
    labels: bool = True  # entity risk from delayed known labels (fraud/features/risk.py)
    paths: bool = True
    autoencoder: bool = True
    gnn: bool = True
    # Stacking without leaks: the GNN and autoencoder learn on the first `base_fraction` of the training
    # rows (by time); XGBoost learns on the rest, where their outputs are out-of-sample as they will be on
    # new data. 0 = all parts on all training rows (in-sample GNN scores then look better than they are).
    base_fraction: float = 0.3
    # Also train XGBoost on those early rows, with their GNN/autoencoder columns set to missing.
    base_rows_in_booster: bool = True

    def __post_init__(self):
        if not 0 <= self.base_fraction < 1:
            raise ValueError(f"parts.base_fraction must be in [0, 1), got {self.base_fraction}")


@dataclass
class SplitConfig:
    """Temporal split fractions of the time span: train < validation < test (test = the rest)."""

    train: float = 0.6
    val: float = 0.2

    def __post_init__(self):
        if not (0 < self.train < 1 and 0 < self.val < 1 and self.train + self.val < 1):
            raise ValueError(f"split.train and split.val must be in (0, 1) and sum below 1, got {self.train}, {self.val}")


@dataclass
class FraudConfig:
    """Everything `fraud train` / `fraud evaluate` run with (configs/fraud.yaml fills it)."""

    seed: int = 0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    autoencoder: AEConfig = field(default_factory=AEConfig)
    booster: BoosterConfig = field(default_factory=BoosterConfig)
    parts: PartsConfig = field(default_factory=PartsConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    # The adversarial defences (fraud/robust/defence.py); off unless `fraud train --adversarial` or adversarial.enabled.
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    min_train_rows: int = 200
    min_frauds: int = 10


def check_training_data(train: pd.DataFrame, val: pd.DataFrame, cfg: FraudConfig) -> None:
    """Clear errors before any work: labels present, both classes, enough rows, train before validation."""
    for name, df in (("training", train), ("validation", val)):
        if "label" not in df.columns:
            raise DataError(f"{name} data has no 'label' column; training needs labelled transactions "
                            "(map your fraud flag column to 'label')")
        if df["label"].isna().any():
            raise DataError(f"{name} data has {int(df['label'].isna().sum())} rows without a label")
    if len(train) < cfg.min_train_rows:
        raise DataError(f"training period has only {len(train)} rows; need at least {cfg.min_train_rows}. "
                        "Use a larger file or a larger split.train")
    n_pos = int(train["label"].sum())
    if n_pos == 0 or n_pos == len(train):
        raise DataError(f"training period has one class only ({n_pos} frauds in {len(train)} rows); "
                        "a fraud model needs both fraud and legitimate rows")
    if n_pos < cfg.min_frauds:
        raise DataError(f"training period has only {n_pos} frauds; need at least {cfg.min_frauds}")
    if len(val) == 0:
        raise DataError("validation period is empty; use a larger file or a larger split.val")
    if len(train) and len(val) and train["timestamp"].max() > val["timestamp"].min():
        raise DataError("validation rows must all be later than training rows (temporal split)")


def _tail_seconds(cfg: FraudConfig) -> int:
    graph = cfg.parts.gnn or cfg.parts.paths
    return max(cfg.features.tail_seconds, cfg.graph.history_seconds if graph else 0)
