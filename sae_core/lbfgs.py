"""Limited-memory BFGS with a strong Wolfe line search, on float32 NumPy vectors.

The objective is any callable returning (value, gradient) for a flat parameter vector,
optionally followed by a third item (for example the cost terms) that is passed on to
the callback with the accepted point. This replaces scipy.optimize's L-BFGS-B for
training: at 314,584 parameters its own work per iteration took 19 ms on 2 cores,
against 3.4 ms for this code and 52 ms for one cost evaluation at m = 5,000
(benchmarks/train_speed.py measures all three). The search directions follow
Nocedal and Wright, "Numerical Optimization" (2nd ed.), Algorithm 7.4 (two-loop
recursion) and Algorithms 3.5-3.6 (line search).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.linalg import blas

Objective = Callable[[np.ndarray], tuple]


@dataclass
class LBFGSResult:
    x: np.ndarray
    value: float
    gradient: np.ndarray
    iterations: int
    evaluations: int
    stop_reason: str  # max_iterations, gradient_tolerance, no_decrease or stopped
    info: Any = None  # the objective's third return value at x, if it returns one


@dataclass
class LineSearchResult:
    step: float  # 0.0 when no point with a lower value was found
    value: float
    trial: Any  # what evaluate(step) returned with the value and slope; None for step 0
    evaluations: int
    wolfe: bool  # True when the strong Wolfe conditions hold at step


class StopOptimization(Exception):
    """Raised by a callback to end the run early; the current iterate is kept."""


def _cubic_minimiser(a, fa, ga, b, fb, gb):
    """Return the minimiser of the cubic through (a, fa, ga) and (b, fb, gb), or None."""
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    radicand = d1 * d1 - ga * gb
    if radicand < 0:
        return None
    d2 = np.sign(b - a) * np.sqrt(radicand)
    denominator = gb - ga + 2.0 * d2
    if denominator == 0:
        return None
    return b - (b - a) * (gb + d2 - d1) / denominator


def _interpolate(a, fa, ga, b, fb, gb):
    """Return a trial step between a and b, kept at least 10% of the gap from both ends."""
    low, high = min(a, b), max(a, b)
    trial = _cubic_minimiser(a, fa, ga, b, fb, gb)
    margin = 0.1 * (high - low)
    if trial is None or not np.isfinite(trial) or not (low + margin <= trial <= high - margin):
        trial = 0.5 * (low + high)
    return trial


def strong_wolfe_search(evaluate, f0, slope0, step, c1=1e-4, c2=0.9, max_evaluations=25):
    """Find a step length t satisfying the strong Wolfe conditions along a descent direction.

    `evaluate(t)` returns (value, slope, trial): f(x + t d), the directional derivative
    there, and anything the caller wants back for the accepted step (the point and its
    gradient, say). f0 and slope0 < 0 are the value and slope at t = 0. When no step
    satisfies both conditions within max_evaluations, the step with the lowest value
    seen is returned with wolfe=False.
    """
    previous = (0.0, f0, slope0)
    best = LineSearchResult(0.0, f0, None, 0, False)
    evaluations = 0
    t = step

    def sufficient_decrease(t, f):
        return np.isfinite(f) and f <= f0 + c1 * t * slope0

    def record(t, f, trial):
        nonlocal best
        if np.isfinite(f) and f < best.value:
            best = LineSearchResult(t, f, trial, 0, False)

    def accept(t, f, trial):
        return LineSearchResult(t, f, trial, evaluations, True)

    # Bracketing phase: grow t until [low, high] is known to contain a good step.
    while True:
        if evaluations >= max_evaluations:
            best.evaluations = evaluations
            return best
        f, slope, trial = evaluate(t)
        evaluations += 1
        record(t, f, trial)
        if not sufficient_decrease(t, f) or (evaluations > 1 and f >= previous[1]):
            low, high = previous, (t, f if np.isfinite(f) else np.inf, slope)
            break
        if abs(slope) <= -c2 * slope0:
            return accept(t, f, trial)
        if slope >= 0:
            low, high = (t, f, slope), previous
            break
        # Extrapolate to the cubic's minimiser beyond t, kept within [1.1 t, 10 t].
        extrapolated = _cubic_minimiser(*previous, t, f, slope)
        previous = (t, f, slope)
        if extrapolated is None or not np.isfinite(extrapolated):
            extrapolated = 10.0 * t
        t = min(max(extrapolated, 1.1 * t), 10.0 * t)

    # Zoom phase: shrink the bracket until the strong Wolfe conditions hold.
    while evaluations < max_evaluations:
        if abs(high[0] - low[0]) < 1e-12 * max(1.0, abs(low[0])):
            break
        if np.isfinite(high[1]) and np.isfinite(high[2]):
            t = _interpolate(*low, *high)
        else:
            t = 0.5 * (low[0] + high[0])
        f, slope, trial = evaluate(t)
        evaluations += 1
        record(t, f, trial)
        if not sufficient_decrease(t, f) or f >= low[1]:
            high = (t, f if np.isfinite(f) else np.inf, slope)
            continue
        if abs(slope) <= -c2 * slope0:
            return accept(t, f, trial)
        if slope * (high[0] - low[0]) >= 0:
            high = low
        low = (t, f, slope)
    best.evaluations = evaluations
    return best


def _two_loop_direction(gradient, s_history, y_history, rho_history):
    """Return -H g, with H the L-BFGS inverse Hessian estimate from the stored pairs.

    The updates are BLAS saxpy calls, which work in place without the temporary array
    that `q -= alpha * y` allocates and so read and write memory once instead of twice.
    """
    q = gradient.copy()
    alphas = []
    for s, y, rho in zip(reversed(s_history), reversed(y_history), reversed(rho_history)):
        alpha = rho * float(blas.sdot(s, q))
        q = blas.saxpy(y, q, a=-alpha)
        alphas.append(alpha)

    # Scale the initial Hessian by s'y / y'y of the newest pair.
    if s_history:
        s, y = s_history[-1], y_history[-1]
        q = blas.sscal(float(blas.sdot(s, y)) / float(blas.sdot(y, y)), q)

    for s, y, rho, alpha in zip(s_history, y_history, rho_history, reversed(alphas)):
        beta = rho * float(blas.sdot(y, q))
        q = blas.saxpy(s, q, a=alpha - beta)
    return blas.sscal(-1.0, q)


def minimize_lbfgs(
    objective: Objective,
    x0: np.ndarray,
    max_iterations: int,
    history_size: int = 10,
    gradient_tolerance: float = 1e-5,
    callback: Callable[..., None] | None = None,
) -> LBFGSResult:
    """Minimise `objective` from x0 for at most max_iterations L-BFGS iterations.

    `callback(iteration, x, value)` runs after each iteration, with the objective's
    third return value as a fourth argument when it returns one, and may raise
    StopOptimization to end the run. The run also stops when the largest gradient
    component falls below gradient_tolerance or the line search finds no decrease.
    All vector arithmetic is float32; x passed to the callback is never modified later.
    """
    x = np.array(x0, dtype=np.float32).ravel()
    value, gradient, *info = objective(x)
    gradient = np.asarray(gradient, dtype=np.float32)
    evaluations = 1
    s_history: list[np.ndarray] = []
    y_history: list[np.ndarray] = []
    rho_history: list[float] = []
    stop_reason = "max_iterations"
    iteration = 0

    while iteration < max_iterations:
        if float(np.max(np.abs(gradient))) < gradient_tolerance:
            stop_reason = "gradient_tolerance"
            break

        direction = _two_loop_direction(gradient, s_history, y_history, rho_history)
        slope0 = float(np.dot(gradient, direction))
        if not slope0 < 0:  # not a descent direction: restart from steepest descent
            s_history.clear(), y_history.clear(), rho_history.clear()
            direction = -gradient
            slope0 = -float(np.dot(gradient, gradient))

        # Line search; without curvature pairs the first step is 1 / sum|g|, as in minFunc.
        first_step = 1.0 if s_history else min(1.0, 1.0 / max(float(np.sum(np.abs(gradient))), 1e-12))

        def evaluate(t):
            point = x + np.float32(t) * direction
            trial_value, trial_gradient, *trial_info = objective(point)
            trial_gradient = np.asarray(trial_gradient, dtype=np.float32)
            slope = float(np.dot(trial_gradient, direction))
            return float(trial_value), slope, (point, trial_gradient, trial_info)

        search = strong_wolfe_search(evaluate, float(value), slope0, first_step)
        evaluations += search.evaluations
        if search.step == 0.0:
            stop_reason = "no_decrease"
            break

        # Keep the curvature pair when s'y > 0, so H stays positive definite.
        new_x, new_gradient, new_info = search.trial
        s = new_x - x
        y = new_gradient - gradient
        sy = float(np.dot(s, y))
        if sy > 1e-10 * float(np.dot(y, y)):
            s_history.append(s)
            y_history.append(y)
            rho_history.append(1.0 / sy)
            if len(s_history) > history_size:
                del s_history[0], y_history[0], rho_history[0]
        x, value, gradient, info = new_x, search.value, new_gradient, new_info
        iteration += 1

        if callback is not None:
            try:
                callback(iteration, x, value, *info)
            except StopOptimization:
                stop_reason = "stopped"
                break

    return LBFGSResult(x, float(value), gradient, iteration, evaluations, stop_reason,
                       info[0] if info else None)
