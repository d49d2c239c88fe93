"""What keeps training fast, checked without timing anything.

The hand-written gradient must equal GradientTape's gradient of the model's cost. Each
L-BFGS evaluation must be one call of one traced function, because progress reports
reuse its cost terms. New configs must not retrace it, and a seed must give the same
weights.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sae_core import training
from sae_core.config import SAEConfig
from sae_core.data import training_indices
from sae_core.model import initial_weights, sparse_autoencoder_cost
from sae_core.tf_quiet import tf
from sae_core.training import flatten, make_objective, train

ROOT = Path(__file__).resolve().parents[1]


def tape_gradient(flat, images, config):
    """Return (J, gradient) of model.sparse_autoencoder_cost by GradientTape, float64."""
    n_hidden = config.n_hidden
    split = np.cumsum(training._sizes(n_hidden))[:-1]
    W1, b1, W2, b2 = np.split(flat, split)
    variables = [tf.Variable(W1.reshape(n_hidden, 784)), tf.Variable(b1),
                 tf.Variable(W2.reshape(784, n_hidden)), tf.Variable(b2)]
    hyper = [tf.constant(value, tf.float64) for value in
             (config.sparsity_target, config.sparsity_weight, config.weight_decay)]
    with tf.GradientTape() as tape:
        cost, _ = sparse_autoencoder_cost(*variables, tf.constant(images, tf.float64), *hyper)
    gradients = tape.gradient(cost, variables)
    return float(cost), np.concatenate([g.numpy().ravel() for g in gradients])


@pytest.mark.parametrize("config", [
    SAEConfig(n_hidden=7),
    SAEConfig(n_hidden=4, sparsity_target=0.01, sparsity_weight=5.0, weight_decay=0.1),
    SAEConfig(n_hidden=5, sparsity_target=0.8, sparsity_weight=0.0, weight_decay=0.0),
])
def test_hand_gradient_equals_tape(mnist, config):
    images = mnist.images[:50].astype(np.float64)
    flat = flatten(initial_weights(config.n_hidden, seed=2)).astype(np.float64)
    flat += np.random.default_rng(0).normal(0, 0.3, size=flat.shape)
    objective, evaluate_terms = make_objective(images, config, dtype=tf.float64)

    cost, gradient = objective(flat)
    tape_cost, tape_grad = tape_gradient(flat, images, config)
    assert abs(cost - tape_cost) <= 1e-12 * abs(tape_cost)
    assert np.max(np.abs(gradient - tape_grad)) <= 1e-12 * np.max(np.abs(tape_grad))
    assert evaluate_terms(flat)["cost"] == pytest.approx(tape_cost, rel=1e-12)


def test_hand_gradient_with_saturated_units():
    # Units always on or always off: 1 - rho_hat underflows unless computed with care.
    config = SAEConfig(n_hidden=3)
    images = np.random.default_rng(0).uniform(0, 1, size=(8, 784))
    weights = initial_weights(3, seed=0)
    flat = flatten(weights).astype(np.float64)
    flat[3 * 784:3 * 784 + 3] = [20.0, 40.0, -40.0]  # b1
    cost, gradient = make_objective(images, config, dtype=tf.float64)[0](flat)
    tape_cost, tape_grad = tape_gradient(flat, images, config)
    assert np.isfinite(cost)
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, tape_grad, rtol=1e-9, atol=1e-12)


def test_progress_costs_no_extra_evaluation(mnist, monkeypatch):
    calls = {"evaluate": 0, "terms": 0}
    real_evaluator = training._make_evaluator
    real_terms = training._cost_terms

    def counting_evaluator(*args):
        evaluate = real_evaluator(*args)

        def counted(flat):
            calls["evaluate"] += 1
            return evaluate(flat)

        return counted

    def counting_terms(*args):
        calls["terms"] += 1
        return real_terms(*args)

    monkeypatch.setattr(training, "_make_evaluator", counting_evaluator)
    monkeypatch.setattr(training, "_cost_terms", counting_terms)
    reports = []
    config = SAEConfig(n_hidden=10, max_iterations=15, n_samples=200)
    result = train(config, mnist.images, progress=reports.append)

    assert calls["evaluate"] == result.metrics["evaluations"]
    assert calls["terms"] == 0
    assert len(reports) == result.metrics["iterations"]


def test_progress_terms_match_a_fresh_evaluation(mnist):
    reports = []
    config = SAEConfig(n_hidden=10, max_iterations=12, n_samples=200)
    result = train(config, mnist.images, progress=reports.append, term_every=4)
    rows = training_indices(len(mnist.images), 200)
    _, evaluate_terms = make_objective(mnist.images[rows], config)

    assert [report.iteration for report in reports] == [4, 8, 12]
    for report in reports:
        fresh = evaluate_terms(report.parameters)
        assert report.cost == pytest.approx(fresh["cost"], rel=1e-6)
        assert report.sparsity == pytest.approx(fresh["sparsity"], rel=1e-5, abs=1e-7)
    assert result.metrics["cost"] == reports[-1].cost
    assert [entry["iteration"] for entry in result.history] == [4, 8, 12]


def test_new_configs_reuse_traced_function(mnist):
    train(SAEConfig(n_hidden=6, max_iterations=2, n_samples=100), mnist.images)
    compiled = training._compiled(training._cost_terms_and_gradient, tf.float32)
    traces = compiled.experimental_get_tracing_count()
    for config in (SAEConfig(n_hidden=9, max_iterations=2, n_samples=150, sparsity_target=0.3),
                   SAEConfig(n_hidden=6, max_iterations=2, n_samples=80, weight_decay=0.0)):
        train(config, mnist.images)
    assert compiled.experimental_get_tracing_count() == traces


def weights_digest(weights) -> str:
    digest = hashlib.sha256()
    for array in (weights.W1, weights.b1, weights.W2, weights.b2):
        digest.update(array.tobytes())
    return digest.hexdigest()


DETERMINISM_CONFIG = dict(n_hidden=20, max_iterations=25, n_samples=400, seed=3)


def test_training_deterministic_in_process(mnist):
    config = SAEConfig(**DETERMINISM_CONFIG)
    first, second = train(config, mnist.images), train(config, mnist.images)
    assert weights_digest(first.weights) == weights_digest(second.weights)
    assert first.metrics["cost"] == second.metrics["cost"]


@pytest.mark.slow
def test_training_deterministic_across_processes(mnist):
    script = (
        "import hashlib\n"
        "from sae_core.config import SAEConfig\n"
        "from sae_core.data import load_dataset\n"
        "from sae_core.training import train\n"
        f"w = train(SAEConfig(**{DETERMINISM_CONFIG!r}), load_dataset('embedded').images).weights\n"
        "d = hashlib.sha256()\n"
        "[d.update(a.tobytes()) for a in (w.W1, w.b1, w.W2, w.b2)]\n"
        "print(d.hexdigest())\n"
    )
    other = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, check=True)
    here = weights_digest(train(SAEConfig(**DETERMINISM_CONFIG), mnist.images).weights)
    assert other.stdout.strip().splitlines()[-1] == here
