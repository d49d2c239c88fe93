"""Limited-memory BFGS with a strong Wolfe line search, on float32 NumPy vectors.

The objective is any callable returning (value, gradient) for a flat parameter vector.
This replaces scipy.optimize's L-BFGS-B for training: its Fortran bookkeeping costs
about as much per iteration as the autoencoder's whole cost evaluation at 314,584
parameters. The search directions follow Nocedal and Wright, "Numerical Optimization"
(2nd ed.), Algorithm 7.4 (two-loop recursion) and Algorithms 3.5-3.6 (line search).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class LBFGSResult:
    x: np.ndarray
    value: float
    gradient: np.ndarray
    iterations: int
    evaluations: int
    stop_reason: str


class StopOptimization(Exception):
    """Raised by a callback to end the run early; the best point so far is kept."""


def _cubic_minimiser(a, fa, ga, b, fb, gb):
    """Minimiser of the cubic through (a, fa, ga) and (b, fb, gb), or None."""
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
    """A trial step between a and b, kept away from both ends."""
    low, high = min(a, b), max(a, b)
    trial = _cubic_minimiser(a, fa, ga, b, fb, gb)
    margin = 0.1 * (high - low)
    if trial is None or not np.isfinite(trial) or not (low + margin <= trial <= high - margin):
        trial = 0.5 * (low + high)
    return trial


def strong_wolfe_search(evaluate, f0, g0_dot_d, step, c1=1e-4, c2=0.9, max_evaluations=25):
    """Find a step length t satisfying the strong Wolfe conditions along a direction.

    `evaluate(t)` returns (f(x + t d), gradient there, directional derivative). Returns
    (t, f, gradient, evaluations); t is 0.0 when no decrease was found.
    """
    previous_t, previous_f, previous_slope = 0.0, f0, g0_dot_d
    best = (0.0, f0, None)
    evaluations = 0
    t = step

    # Bracketing phase: grow t until the interval [previous_t, t] contains a good step.
    while evaluations < max_evaluations:
        f, g, slope = evaluate(t)
        evaluations += 1
        if np.isfinite(f) and f < best[1]:
            best = (t, f, g)
        if not np.isfinite(f) or f > f0 + c1 * t * g0_dot_d or (evaluations > 1 and f >= previous_f):
            low = (previous_t, previous_f, previous_slope)
            high = (t, f if np.isfinite(f) else np.inf, slope if np.isfinite(f) else np.inf)
            break
        if abs(slope) <= -c2 * g0_dot_d:
            return t, f, g, evaluations
        if slope >= 0:
            low = (t, f, slope)
            high = (previous_t, previous_f, previous_slope)
            break
        previous_t, previous_f, previous_slope = t, f, slope
        t = 2.0 * t
    else:
        return best[0], best[1], best[2], evaluations

    # Zoom phase: shrink the bracket until the strong Wolfe conditions hold.
    while evaluations < max_evaluations:
        if np.isfinite(high[1]) and np.isfinite(high[2]):
            t = _interpolate(low[0], low[1], low[2], high[0], high[1], high[2])
        else:
            t = 0.5 * (low[0] + high[0])
        if abs(high[0] - low[0]) < 1e-12 * max(1.0, abs(low[0])):
            break
        f, g, slope = evaluate(t)
        evaluations += 1
        if np.isfinite(f) and f < best[1]:
            best = (t, f, g)
        if not np.isfinite(f) or f > f0 + c1 * t * g0_dot_d or f >= low[1]:
            high = (t, f if np.isfinite(f) else np.inf, slope if np.isfinite(f) else np.inf)
            continue
        if abs(slope) <= -c2 * g0_dot_d:
            return t, f, g, evaluations
        if slope * (high[0] - low[0]) >= 0:
            high = low
        low = (t, f, slope)
    return best[0], best[1], best[2], evaluations


def minimize_lbfgs(
    objective: Objective,
    x0: np.ndarray,
    max_iterations: int,
    history_size: int = 10,
    gradient_tolerance: float = 1e-5,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> LBFGSResult:
    """Minimise `objective` from x0 for at most max_iterations L-BFGS iterations.

    `callback(iteration, x, value)` runs after each iteration and may raise
    StopOptimization to end the run. Stops early when the largest gradient component
    falls below gradient_tolerance or the line search finds no decrease.
    """
    x = np.array(x0, dtype=np.float32)
    f, g = objective(x)
    evaluations = 1
    s_history: list[np.ndarray] = []
    y_history: list[np.ndarray] = []
    rho_history: list[float] = []
    stop_reason = "max_iterations"
    iteration = 0

    while iteration < max_iterations:
        if float(np.max(np.abs(g))) < gradient_tolerance:
            stop_reason = "gradient_tolerance"
            break

        # Two-loop recursion: direction = -H g.
        q = g.astype(np.float64)
        alphas = []
        for s, y, rho in zip(reversed(s_history), reversed(y_history), reversed(rho_history)):
            alpha = rho * float(np.dot(s, q))
            q -= alpha * y
            alphas.append(alpha)
        if s_history:
            gamma = float(np.dot(s_history[-1], y_history[-1])) / float(np.dot(y_history[-1], y_history[-1]))
        else:
            gamma = 1.0
        r = gamma * q
        for (s, y, rho), alpha in zip(zip(s_history, y_history, rho_history), reversed(alphas)):
            beta = rho * float(np.dot(y, r))
            r += (alpha - beta) * s
        direction = (-r).astype(np.float32)
        slope0 = float(np.dot(g.astype(np.float64), direction))
        if slope0 >= 0:  # not a descent direction: restart from steepest descent
            s_history.clear(), y_history.clear(), rho_history.clear()
            direction = -g
            slope0 = -float(np.dot(g.astype(np.float64), g))

        # Line search along the direction; the first step is scaled as minFunc does.
        first_step = 1.0 if s_history else min(1.0, 1.0 / max(float(np.sum(np.abs(g))), 1e-12))

        def evaluate(t):
            value, gradient = objective(x + np.float32(t) * direction)
            return value, gradient, float(np.dot(gradient.astype(np.float64), direction))

        t, f_new, g_new, used = strong_wolfe_search(evaluate, f, slope0, first_step)
        evaluations += used
        if t == 0.0 or g_new is None:
            stop_reason = "no_decrease"
            break

        # Update the curvature history and the iterate.
        s = np.float32(t) * direction
        y = g_new - g
        sy = float(np.dot(s.astype(np.float64), y))
        if sy > 1e-10 * float(np.dot(y.astype(np.float64), y)):
            s_history.append(s)
            y_history.append(y)
            rho_history.append(1.0 / sy)
            if len(s_history) > history_size:
                s_history.pop(0), y_history.pop(0), rho_history.pop(0)
        x = x + s
        f, g = f_new, g_new
        iteration += 1
        if callback is not None:
            try:
                callback(iteration, x, f)
            except StopOptimization:
                stop_reason = "stopped"
                break

    return LBFGSResult(x, float(f), g, iteration, evaluations, stop_reason)
