"""What `fraud train --adversarial` trains against: the defences' configuration (`adversarial.*` keys)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fraud.robust.threat import preset


@dataclass
class AdversarialConfig:
    """Which defences `fraud train --adversarial` turns on, and the attacks they train against."""

    enabled: bool = False         # `fraud train --adversarial` sets it; saved with the model's config
    threat: str = "full"          # threat model preset (fraud/robust/threat.py PRESETS)
    budget: float = 2.0           # budget multiplier trained against: the largest budget you want to resist
    candidates: int = 10          # random attacked copies of the training frauds (pipeline passes)
    rounds: int = 5               # augmentation rounds against the current booster
    pgd_candidate: bool = True    # also offer the white-box PGD edit as a candidate
    val_candidates: int = 1       # attacked copies of the validation frauds for early stopping
    drop_features: list[str] = field(default_factory=list)  # e.g. ["hour_sin", "hour_cos", "weekday"]
    monotone: bool = True         # score non-decreasing in src_cnt_* (sender velocity)
    gnn_adversarial: bool = True  # PGD-perturbed edge features for fraud edges while training the GNN
    gnn_pgd_steps: int = 5
    # XGBoost sample weight of each added worst-case row (clean rows weigh 1). Alone, full weight costs ~4
    # points of clean PR-AUC (the attacked copies outnumber the clean frauds) and 0.25 ~1.5 on seed 0 but 6.4
    # on the development seed; with `blend` 0.5 full weight keeps the robustness for ~1.3 there
    # (docs/fraud-robustness.md "Blending the pre-augmentation booster back in").
    augment_weight: float = 1.0
    # Robust feature options (fraud/features/robust.py): history-anchored pair/receiver ages, young-payee
    # sums, pair totals; `neighbour_windows` are added to features.neighbour_windows of the defended stack
    # (a 7d inflow window a ±12 h shift cannot empty). The standard stack's features stay unchanged.
    robust_features: bool = True
    neighbour_windows: list[str] = field(default_factory=list)

    # Weight of the booster before augmentation (robust features, clean rows only: trial round 0) in the final
    # margin, blended with the chosen augmented booster's (fraud.models.booster.blend_boosters, one model with both
    # tree sets): the round-0 booster keeps the clean ranking, the augmented one the robustness. 0 = the
    # augmented booster alone.
    blend: float = 0.5
    def __post_init__(self):
        preset(self.threat)
        if self.budget < 0 or self.candidates < 0 or self.rounds < 1:
            raise ValueError("adversarial.budget and candidates must be >= 0 and rounds >= 1")
        if not 0 <= self.blend < 1:
            raise ValueError(f"adversarial.blend must be in [0, 1) (0 = off), got {self.blend}")
        if not 0 < self.augment_weight <= 1:
            raise ValueError(f"adversarial.augment_weight must be in (0, 1], got {self.augment_weight}")
