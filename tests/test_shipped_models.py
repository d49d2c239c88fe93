"""The models in models/ are the original experiment's, trained on today's embedded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sae_core.config import N_PIXELS, ORIGINAL_SPARSITY_TARGETS, SAEConfig
from sae_core.model import encode, reconstruct
from sae_core.store import ModelStore

MODELS = Path(__file__).resolve().parents[1] / "models"
REGENERATE = "python -m sae_core figures --out figures"


@pytest.mark.parametrize("rho", ORIGINAL_SPARSITY_TARGETS)
def test_shipped_model_matches_code(rho, mnist):
    config = SAEConfig(sparsity_target=rho)
    model, problem = ModelStore(MODELS).lookup(config, mnist)
    assert problem is None, f"{problem}; regenerate with '{REGENERATE}'"
    assert model is not None, f"no shipped model for rho={rho}; regenerate with '{REGENERATE}'"
    assert model.metrics["config"] == config.with_samples_for(len(mnist)).to_dict()
    assert model.metrics["data_fingerprint"] == mnist.fingerprint
    assert model.metrics["iterations"] == 400


def test_shipped_default_model_quality(mnist):
    """The rho = 0.1 model: stored terms agree with a recomputation, sparsity and error hold."""
    config = SAEConfig()
    model, _ = ModelStore(MODELS).lookup(config, mnist)
    assert model is not None, f"regenerate with '{REGENERATE}'"
    w = model.weights
    x = mnist.images.astype(np.float64)
    a = encode(w, mnist.images).astype(np.float64)
    x_hat = reconstruct(w, mnist.images).astype(np.float64)
    rho_hat = a.mean(axis=0)
    recomputed = {
        "reconstruction": np.sum((x - x_hat) ** 2) / (2 * len(x)),
        "weight_decay": 1e-3 / 2 * (np.sum(w.W1.astype(np.float64) ** 2) + np.sum(w.W2.astype(np.float64) ** 2)),
        "sparsity": 3.0 * np.sum(0.1 * np.log(0.1 / rho_hat) + 0.9 * np.log(0.9 / (1 - rho_hat))),
    }
    for name, value in recomputed.items():
        assert model.metrics[name] == pytest.approx(value, rel=0.01), name
    assert abs(model.metrics["mean_activation"] - 0.1) <= 0.01
    assert np.mean((x - x_hat) ** 2) <= 0.015
    assert a.shape == (len(x), 200)
    assert x_hat.shape == (len(x), N_PIXELS)
