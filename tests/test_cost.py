"""The sparse autoencoder cost and its gradient against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sae_core.config import SAEConfig
from sae_core.model import SAEWeights, initial_weights, reconstruct, sparse_autoencoder_cost
from sae_core.tf_quiet import tf
from sae_core.training import flatten, make_objective, unflatten


def _logit(p):
    return np.log(p / (1.0 - p))


# Activations of 3 hidden units on 4 examples. Column means (rho_hat, one per unit)
# are 0.2, 0.55 and 0.5; row means differ, so a per-example mean would be caught.
ACTIVATIONS = np.array([
    [0.1, 0.9, 0.5],
    [0.3, 0.7, 0.5],
    [0.1, 0.5, 0.5],
    [0.3, 0.1, 0.5],
])


def _hand_net():
    """A 4-3-4 net whose hidden activations on the 4 one-hot inputs are ACTIVATIONS."""
    x = np.eye(4)
    W1 = _logit(ACTIVATIONS).T  # z[i, j] = W1[j, i] for the one-hot input i
    b1 = np.zeros(3)
    W2 = np.array([[0.5, -1.0, 0.0], [1.0, 0.0, -0.5], [0.0, 0.5, 0.5], [-0.5, 0.0, 1.0]])
    b2 = np.array([0.1, -0.1, 0.0, 0.2])
    return x, W1, b1, W2, b2


def _cost(x, W1, b1, W2, b2, rho, beta, lam):
    args = [tf.constant(v, tf.float64) for v in (W1, b1, W2, b2, x)]
    total, terms = sparse_autoencoder_cost(*args, tf.constant(rho, tf.float64),
                                           tf.constant(beta, tf.float64), tf.constant(lam, tf.float64))
    return float(total), {k: np.asarray(v) for k, v in terms.items()}


def test_rho_hat_is_mean_per_hidden_unit():
    x, W1, b1, W2, b2 = _hand_net()
    _, terms = _cost(x, W1, b1, W2, b2, rho=0.1, beta=3.0, lam=0.001)
    assert terms["mean_activation"].shape == (3,)
    np.testing.assert_allclose(terms["mean_activation"], [0.2, 0.55, 0.5], rtol=1e-12)


def test_sparsity_term_by_hand():
    x, W1, b1, W2, b2 = _hand_net()
    _, terms = _cost(x, W1, b1, W2, b2, rho=0.1, beta=3.0, lam=0.001)
    kl_unit1 = 0.1 * math.log(0.1 / 0.2) + 0.9 * math.log(0.9 / 0.8)
    kl_unit2 = 0.1 * math.log(0.1 / 0.55) + 0.9 * math.log(0.9 / 0.45)
    kl_unit3 = 0.1 * math.log(0.1 / 0.5) + 0.9 * math.log(0.9 / 0.5)
    assert kl_unit1 == pytest.approx(0.036690, abs=1e-6)
    assert float(terms["sparsity"]) == pytest.approx(3.0 * (kl_unit1 + kl_unit2 + kl_unit3), rel=1e-12)


def test_weight_decay_term_by_hand():
    x, W1, b1, W2, b2 = _hand_net()
    _, terms = _cost(x, W1, b1, W2, b2, rho=0.1, beta=3.0, lam=0.001)
    squares_W2 = 0.25 + 1 + 1 + 0.25 + 0.25 + 0.25 + 0.25 + 1  # entries of W2 squared
    squares_W1 = float(np.sum(_logit(ACTIVATIONS) ** 2))
    assert float(terms["weight_decay"]) == pytest.approx(0.0005 * (squares_W1 + squares_W2), rel=1e-12)


def test_reconstruction_term_by_hand():
    x, W1, b1, W2, b2 = _hand_net()
    total, terms = _cost(x, W1, b1, W2, b2, rho=0.1, beta=3.0, lam=0.001)
    x_hat = 1.0 / (1.0 + np.exp(-(ACTIVATIONS @ W2.T + b2)))
    expected = np.sum((x - x_hat) ** 2) / (2 * 4)
    assert float(terms["reconstruction"]) == pytest.approx(expected, rel=1e-12)
    assert total == pytest.approx(
        float(terms["reconstruction"]) + float(terms["weight_decay"]) + float(terms["sparsity"]), rel=1e-12)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    n_in, n_hidden, m = 6, 4, 5
    x = rng.uniform(0, 1, size=(m, n_in))
    params = [rng.normal(0, 0.5, size=s) for s in ((n_hidden, n_in), (n_hidden,), (n_in, n_hidden), (n_in,))]
    hyper = dict(rho=0.1, beta=3.0, lam=0.01)

    variables = [tf.Variable(p, dtype=tf.float64) for p in params]
    with tf.GradientTape() as tape:
        total, _ = sparse_autoencoder_cost(*variables, tf.constant(x), *(tf.constant(v, tf.float64) for v in hyper.values()))
    analytic = np.concatenate([g.numpy().ravel() for g in tape.gradient(total, variables)])

    flat = np.concatenate([p.ravel() for p in params])
    shapes = [p.shape for p in params]
    splits = np.cumsum([p.size for p in params])[:-1]

    def cost_at(vector):
        parts = [part.reshape(shape) for part, shape in zip(np.split(vector, splits), shapes)]
        return _cost(x, *parts, **hyper)[0]

    numeric = np.empty_like(flat)
    step = 1e-5
    for i in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        numeric[i] = (cost_at(plus) - cost_at(minus)) / (2 * step)
    relative_error = np.linalg.norm(analytic - numeric) / np.linalg.norm(analytic + numeric)
    assert relative_error < 1e-6


def test_training_objective_gradient_float64(mnist):
    """The flat objective used by L-BFGS, on the 784-pixel shape, in float64."""
    config = SAEConfig(n_hidden=3, n_samples=10)
    objective, _ = make_objective(mnist.images[:10], config, dtype=tf.float64)
    flat = flatten(initial_weights(3, seed=0)).astype(np.float64)
    flat += np.random.default_rng(0).normal(0, 0.05, size=flat.shape)
    _, gradient = objective(flat)
    assert gradient.dtype == np.float64
    rng = np.random.default_rng(1)
    chosen = rng.choice(flat.size, size=40, replace=False)
    step = 1e-5
    for i in chosen:
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        numeric = (objective(plus)[0] - objective(minus)[0]) / (2 * step)
        assert abs(numeric - gradient[i]) <= 1e-6 * max(1.0, abs(numeric)) + 1e-8


def test_kl_finite_when_units_saturate():
    # sigmoid(17) is exactly 1.0 in float32, so 1 - rho_hat would be 0 without care.
    n_hidden = 3
    W1 = np.zeros((n_hidden, 784), np.float32)
    b1 = np.array([20.0, 40.0, -40.0], np.float32)  # always on, always on, always off
    W2 = np.zeros((784, n_hidden), np.float32)
    b2 = np.zeros(784, np.float32)
    x = np.random.default_rng(0).uniform(0, 1, size=(8, 784)).astype(np.float32)
    variables = [tf.Variable(v) for v in (W1, b1, W2, b2)]
    with tf.GradientTape() as tape:
        total, terms = sparse_autoencoder_cost(*variables, tf.constant(x), tf.constant(0.1),
                                               tf.constant(3.0), tf.constant(1e-3))
    gradients = tape.gradient(total, variables)
    assert np.isfinite(float(total))
    assert float(terms["sparsity"]) > 10.0  # saturated units are heavily penalised
    for gradient in gradients:
        assert np.all(np.isfinite(gradient.numpy()))


def test_numpy_forward_matches_tensorflow(mnist):
    weights = initial_weights(7, seed=2)
    x = mnist.images[:20]
    ours = reconstruct(weights, x)
    z = tf.sigmoid(tf.matmul(tf.sigmoid(tf.matmul(x, weights.W1.T) + weights.b1), weights.W2.T) + weights.b2)
    np.testing.assert_allclose(ours, z.numpy(), atol=1e-5)


def test_flatten_round_trip():
    weights = initial_weights(5, seed=4)
    back = unflatten(flatten(weights), 5)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(getattr(back, name), getattr(weights, name))


def test_weights_reject_bad_shapes():
    good = initial_weights(5, seed=0)
    with pytest.raises(ValueError, match="W2 has shape"):
        SAEWeights(good.W1, good.b1, good.W2.T, good.b2)
    with pytest.raises(ValueError, match="NaN"):
        SAEWeights(good.W1 * np.nan, good.b1, good.W2, good.b2)
