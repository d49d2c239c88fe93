"""The float32 L-BFGS: minima of known functions, stopping, line search conditions, SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from sae_core.lbfgs import StopOptimization, minimize_lbfgs, strong_wolfe_search


def rosenbrock(x):
    """Value and gradient of the n-dimensional Rosenbrock function, minimum 0 at all ones."""
    x = np.asarray(x, dtype=np.float64)
    value = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    gradient = np.zeros_like(x)
    gradient[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    gradient[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return value, gradient.astype(np.float32)


def make_quadratic(n=50, condition=100.0, seed=0):
    """Return f(x) = x'Ax/2 - b'x with eigenvalues from 1 to `condition`, and its minimiser."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = basis @ np.diag(np.geomspace(1.0, condition, n)) @ basis.T
    b = rng.normal(size=n)

    def quadratic(x):
        x = np.asarray(x, dtype=np.float64)
        return 0.5 * x @ A @ x - b @ x, (A @ x - b).astype(np.float32)

    return quadratic, np.linalg.solve(A, b)


def make_logistic_regression(seed=0):
    """Return an L2-regularised logistic loss on random data: smooth, strictly convex."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(200, 20))
    labels = (features @ rng.normal(size=20) + rng.normal(size=200) > 0).astype(np.float64)

    def loss(w):
        w = np.asarray(w, dtype=np.float64)
        z = features @ w
        value = np.mean(np.logaddexp(0.0, z) - labels * z) + 0.05 * w @ w
        gradient = features.T @ (1.0 / (1.0 + np.exp(-z)) - labels) / len(z) + 0.1 * w
        return value, gradient

    return loss


def test_rosenbrock_reaches_minimum():
    result = minimize_lbfgs(rosenbrock, np.array([-1.2, 1.0, -0.5, 0.8]), max_iterations=500)
    assert result.stop_reason in ("gradient_tolerance", "no_decrease")
    np.testing.assert_allclose(result.x, np.ones(4), atol=2e-3)
    assert result.value < 1e-5


def test_quadratic_reaches_minimum():
    quadratic, minimiser = make_quadratic()
    result = minimize_lbfgs(quadratic, np.zeros(50), max_iterations=300)
    np.testing.assert_allclose(result.x, minimiser, atol=1e-4)
    assert result.x.dtype == np.float32
    assert result.iterations < 150  # far fewer than steepest descent needs at condition 100


def test_start_at_minimum_stops_at_once():
    quadratic, minimiser = make_quadratic(n=5, condition=2.0)
    calls = []
    result = minimize_lbfgs(lambda x: (calls.append(1), quadratic(x))[1], minimiser, 100,
                            gradient_tolerance=1e-3)
    assert result.stop_reason == "gradient_tolerance"
    assert result.iterations == 0
    assert len(calls) == 1


def test_stop_optimization_keeps_current_iterate():
    seen = {}

    def stop_at_third(iteration, x, value):
        seen[iteration] = (x.copy(), value)
        if iteration == 3:
            raise StopOptimization()

    result = minimize_lbfgs(rosenbrock, np.array([-1.2, 1.0]), 100, callback=stop_at_third)
    assert result.stop_reason == "stopped"
    assert result.iterations == 3
    assert sorted(seen) == [1, 2, 3]
    np.testing.assert_array_equal(result.x, seen[3][0])
    assert result.value == seen[3][1]


def test_callback_x_not_modified_later():
    points = []
    minimize_lbfgs(rosenbrock, np.array([-1.2, 1.0]), 20,
                   callback=lambda iteration, x, value: points.append((x, x.copy())))
    for passed, copied in points:
        np.testing.assert_array_equal(passed, copied)


def test_accepted_steps_satisfy_strong_wolfe():
    # The objective's third value (the gradient) reaches the callback with each accepted point.
    c1, c2 = 1e-4, 0.9
    quadratic_value = make_quadratic(n=30, condition=1000.0, seed=3)[0]

    def objective(x):
        value, gradient = quadratic_value(x)
        return value, gradient, gradient.astype(np.float64)

    x0 = np.full(30, 3.0, dtype=np.float32)
    states = [(x0.astype(np.float64), *objective(x0)[::2])]
    minimize_lbfgs(objective, x0, 60,
                   callback=lambda i, x, value, g: states.append((x.astype(np.float64), value, g)))

    assert len(states) > 10
    for (x, f, g), (x_new, f_new, g_new) in zip(states, states[1:]):
        step = x_new - x  # t * d, and both conditions are invariant to the scale of d
        slope, new_slope = g @ step, g_new @ step
        assert slope < 0
        assert f_new <= f + c1 * slope + 1e-9 * abs(f)
        assert abs(new_slope) <= c2 * abs(slope) * (1 + 1e-5)


@pytest.mark.parametrize("start", [1e-3, 1.0, 50.0])
def test_line_search_strong_wolfe_on_1d_function(start):
    # phi(t) = (t - 3)^2 + sin(3t): a descent direction at 0 with several local minima.
    def phi(t):
        return (t - 3.0) ** 2 + np.sin(3.0 * t), 2.0 * (t - 3.0) + 3.0 * np.cos(3.0 * t)

    f0, slope0 = phi(0.0)
    result = strong_wolfe_search(lambda t: (*phi(t), t), f0, slope0, start)
    f, slope = phi(result.step)
    assert result.wolfe
    assert result.trial == result.step
    assert f <= f0 + 1e-4 * result.step * slope0
    assert abs(slope) <= 0.9 * abs(slope0)
    assert result.evaluations <= 25


def test_line_search_without_decrease_returns_zero_step():
    # An ascent direction passed as if it were a descent one: no step lowers the value.
    result = strong_wolfe_search(lambda t: (t * t + t, 2 * t + 1, t), 0.0, -1.0, 1.0)
    assert result.step == 0.0
    assert result.trial is None
    assert not result.wolfe


def test_wrong_gradient_stops_without_decrease():
    quadratic, _ = make_quadratic(n=5)

    def wrong_sign(x):
        value, gradient = quadratic(x)
        return value, -gradient

    x0 = np.ones(5, dtype=np.float32)
    result = minimize_lbfgs(wrong_sign, x0, 50)
    assert result.stop_reason == "no_decrease"
    np.testing.assert_array_equal(result.x, x0)


def test_result_info_is_last_accepted_third_value():
    quadratic, _ = make_quadratic(n=5)
    result = minimize_lbfgs(lambda x: (*quadratic(x), x.copy()), np.zeros(5), 5)
    np.testing.assert_array_equal(result.info, result.x)


def test_agrees_with_scipy_lbfgsb():
    loss = make_logistic_regression()
    ours = minimize_lbfgs(loss, np.zeros(20), max_iterations=200)
    theirs = scipy.optimize.minimize(loss, np.zeros(20), jac=True, method="L-BFGS-B",
                                     options={"maxiter": 200, "gtol": 1e-10, "ftol": 1e-14})
    assert theirs.success
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-4)
    assert abs(ours.value - theirs.fun) <= 1e-6 * abs(theirs.fun)
    assert ours.iterations <= 2 * theirs.nit + 5  # the same method, so similar iteration counts
