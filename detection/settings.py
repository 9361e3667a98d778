"""The detection training commands' configuration: configs/detection.yaml, one section per command.

    cfg = load_config(DetectionConfig, "configs/detection.yaml", ["train.epochs=5", "mine.rounds=2"])

`train` fills `detection.train.TrainConfig`, `evaluate` `detection.evaluate.EvalConfig`, `mine`
`detection.mining.MineConfig` (its `finetune` section is a TrainConfig), `transfer`
`detection.transfer.TransferConfig` (its `pretrain` and `finetune` sections are TrainConfigs). `seed` is copied into every part
that draws random numbers; command-line flags override the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from detection.evaluate import EvalConfig
from detection.mining import MineConfig
from detection.train import TrainConfig
from detection.transfer import TransferConfig


@dataclass
class DetectionConfig:
    """Sections of configs/detection.yaml; unknown keys fail with a suggestion (shared.config)."""

    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    mine: MineConfig = field(default_factory=MineConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    def with_seed(self, seed: int | None) -> DetectionConfig:
        """A copy whose training and fine-tuning use `seed` (or the file's `seed` when None)."""
        s = self.seed if seed is None else seed
        ft = dataclasses.replace(self.mine.finetune, seed=s)
        return dataclasses.replace(self, seed=s, train=dataclasses.replace(self.train, seed=s),
                                   mine=dataclasses.replace(self.mine, finetune=ft),
                                   transfer=dataclasses.replace(self.transfer, seed=s))
