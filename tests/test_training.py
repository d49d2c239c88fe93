"""Training on real MNIST digits: the cost falls, runs repeat exactly, callbacks work."""

from __future__ import annotations

import numpy as np
import pytest

from sae_core.config import SAEConfig
from sae_core.lbfgs import StopOptimization
from sae_core.training import train

CONFIG = SAEConfig(n_hidden=12, max_iterations=25, n_samples=300, seed=5)


def test_training_lowers_cost(mnist):
    result = train(CONFIG, mnist.images)
    costs = [row["cost"] for row in result.history]
    assert costs[-1] < 0.5 * costs[0]
    assert result.metrics["iterations"] == 25
    assert result.metrics["samples"] == 300
    for name in ("cost", "reconstruction", "weight_decay", "sparsity", "mean_activation"):
        assert np.isfinite(result.metrics[name])


def test_training_terms_add_up(mnist):
    metrics = train(CONFIG, mnist.images).metrics
    total = metrics["reconstruction"] + metrics["weight_decay"] + metrics["sparsity"]
    assert metrics["cost"] == pytest.approx(total, rel=1e-5)


def test_training_repeats_for_a_seed(mnist):
    first = train(CONFIG, mnist.images).weights
    second = train(CONFIG, mnist.images).weights
    np.testing.assert_array_equal(first.W1, second.W1)
    np.testing.assert_array_equal(first.b2, second.b2)


def test_training_seed_changes_result(mnist):
    other = SAEConfig(**(CONFIG.to_dict() | {"seed": 6}))
    assert not np.array_equal(train(CONFIG, mnist.images).weights.W1, train(other, mnist.images).weights.W1)


def test_training_does_not_modify_images(mnist):
    images = mnist.images[:300].copy()
    train(CONFIG, images)
    np.testing.assert_array_equal(images, mnist.images[:300])


def test_progress_reports_each_iteration(mnist):
    seen = []
    train(CONFIG, mnist.images, progress=seen.append)
    assert [p.iteration for p in seen] == list(range(1, 26))
    line = seen[-1].line()
    assert line.startswith("iteration 25/25 cost=")
    for name in ("reconstruction=", "weight_decay=", "sparsity="):
        assert name in line
    assert seen[-1].weights().W1.shape == (12, 784)


def test_progress_callback_can_stop(mnist):
    def stop_at_five(progress):
        if progress.iteration == 5:
            raise StopOptimization()

    result = train(CONFIG, mnist.images, progress=stop_at_five)
    assert result.metrics["iterations"] == 5
    assert result.metrics["stop_reason"] == "stopped"


def test_warm_start_continues(mnist):
    cold = train(CONFIG, mnist.images)
    warm = train(SAEConfig(**(CONFIG.to_dict() | {"max_iterations": 5})), mnist.images, start_from=cold.weights)
    assert warm.history[0]["cost"] < cold.history[0]["cost"]


def test_warm_start_needs_same_hidden_size(mnist, small_model):
    with pytest.raises(ValueError, match="warm start has 25 hidden units"):
        train(CONFIG, mnist.images, start_from=small_model.weights)
