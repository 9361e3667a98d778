"""Autoencoder trained on legitimate transactions only: reconstruction error and latent code as features.

    x [n, d] (standardised features) --encoder--> z [n, latent] --decoder--> x_hat [n, d]
    error = mean((x - x_hat)^2, dim=1)  [n]

Trained on legitimate training rows, so a high error means "unlike normal behaviour"; alone it is an
unsupervised detector, and its error + code are inputs to XGBoost. The scaler (mean/std per feature) is part
of the model and stored as JSON. `AutoEncoder` is a plain differentiable module over the standardised
feature tensor, for the PGD attack (fraud/robust/attacks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class AEConfig:
    """Autoencoder size and training (small on purpose: it must not learn to copy fraud too)."""

    hidden: int = 32
    latent: int = 4
    epochs: int = 15
    batch_size: int = 512
    lr: float = 2e-3
    max_rows: int = 200_000
    graph_inputs: bool = True  # also reconstruct neighbour aggregates and return-path hops

    def __post_init__(self):
        if min(self.hidden, self.latent, self.batch_size, self.max_rows) < 1 or self.epochs < 0:
            raise ValueError("autoencoder sizes must be >= 1 and epochs >= 0")


class AutoEncoder(nn.Module):
    """MLP autoencoder: [n, d] -> (x_hat [n, d], z [n, latent])."""

    def __init__(self, dim: int, cfg: AEConfig):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.latent))
        self.decoder = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z

    def error(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction error per row [n] (differentiable)."""
        x_hat, _ = self(x)
        return ((x - x_hat) ** 2).mean(dim=1)


@dataclass
class Scaler:
    """Per-feature standardisation learned on training rows (JSON-safe lists)."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        return cls(mean=x.mean(0).astype(float).tolist(), std=np.maximum(x.std(0), 1e-3).astype(float).tolist())

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = x - np.asarray(self.mean, np.float32)  # in place from here: the same values, fewer temporaries
        z /= np.asarray(self.std, np.float32)
        return np.clip(z, -10, 10, out=z).astype(np.float32, copy=False)  # clipping bounds one extreme value


def fit_autoencoder(x_legit: np.ndarray, cfg: AEConfig, seed: int, progress: bool = True,
                    log_fn=lambda msg: None) -> tuple[AutoEncoder, Scaler]:
    """Train on legitimate rows [n, d] (raw features); returns the model and its scaler."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if len(x_legit) > cfg.max_rows:
        x_legit = x_legit[np.sort(rng.choice(len(x_legit), cfg.max_rows, replace=False))]
    scaler = Scaler.fit(x_legit)
    x = torch.from_numpy(scaler.transform(x_legit))
    model = AutoEncoder(x.shape[1], cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for epoch in tqdm(range(cfg.epochs), desc="autoencoder", disable=not progress, leave=False):
        perm = torch.from_numpy(rng.permutation(len(x)))
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            xb = x[perm[i:i + cfg.batch_size]]
            loss = model.error(xb).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"autoencoder loss became {loss.item()} in epoch {epoch}; lower autoencoder.lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        log_fn(f"autoencoder epoch {epoch + 1}/{cfg.epochs}: reconstruction error {total / len(x):.4f}")
    model.eval()
    return model, scaler


@torch.no_grad()
def ae_outputs(model: AutoEncoder, scaler: Scaler, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reconstruction error [n], latent code [n, latent]) for raw feature rows [n, d]."""
    xt = torch.from_numpy(scaler.transform(x))
    x_hat, z = model(xt)
    return ((xt - x_hat) ** 2).mean(dim=1).numpy(), z.numpy()
