"""Autoencoder: learns legitimate behaviour, flags what does not look like it, stays differentiable."""

import json

import numpy as np
import pytest
import torch

from fraud.models.autoencoder import AEConfig, AutoEncoder, Scaler, ae_outputs, fit_autoencoder


def _legit(n, rng):
    z = rng.normal(size=(n, 2))
    return np.column_stack([z, z @ [[1.0], [0.5]], z @ [[-0.3], [2.0]], rng.normal(0, 0.05, (n, 1))]).astype(np.float32)


def test_unusual_rows_reconstruct_worse_than_legitimate_ones():
    rng = np.random.default_rng(0)
    model, scaler = fit_autoencoder(_legit(4000, rng), AEConfig(hidden=16, latent=2, epochs=20), seed=0,
                                    progress=False)
    err_legit, z = ae_outputs(model, scaler, _legit(500, rng))
    odd = _legit(500, rng)
    odd[:, 2] = -odd[:, 2]  # breaks the correlation structure, same marginal distribution
    err_odd, _ = ae_outputs(model, scaler, odd)
    assert z.shape == (500, 2)
    assert np.median(err_odd) > 3 * np.median(err_legit)


def test_same_seed_same_model_and_scaler_is_json_safe():
    x = _legit(600, np.random.default_rng(1))
    a, sa = fit_autoencoder(x, AEConfig(epochs=2), seed=5, progress=False)
    b, sb = fit_autoencoder(x, AEConfig(epochs=2), seed=5, progress=False)
    assert sa == sb
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert Scaler(**json.loads(json.dumps(sa.__dict__))) == sa


def test_error_is_differentiable_in_the_input_features():
    model = AutoEncoder(5, AEConfig(hidden=8, latent=2))
    x = torch.randn(3, 5, requires_grad=True)
    model.error(x).sum().backward()
    assert x.grad.shape == (3, 5) and x.grad.abs().sum() > 0


def test_nan_input_stops_training_loudly():
    x = _legit(300, np.random.default_rng(2))
    x[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="autoencoder loss"):
        fit_autoencoder(x, AEConfig(epochs=1), seed=0, progress=False)
