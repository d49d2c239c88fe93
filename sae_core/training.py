"""Full-batch L-BFGS training of the sparse autoencoder, with TensorFlow gradients.

Each L-BFGS evaluation is one call of a compiled TensorFlow function that returns the
cost, its three terms, the mean activations and the gradient of the flat parameter
vector together, so progress reports need no extra forward pass. The gradient is the
backpropagation of model.sparse_autoencoder_cost written out by hand: it runs the five
matrix multiplies of a forward and backward pass with fewer element-wise passes than
GradientTape, and tests/test_training_speed_invariants.py checks it against the tape.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import threadpoolctl

from .config import N_PIXELS, SAEConfig
from .data import training_indices
from .lbfgs import StopOptimization, minimize_lbfgs
from .model import SAEWeights, initial_weights, kl_divergence
from .tf_quiet import tf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingProgress:
    """One L-BFGS iteration's state, passed to progress callbacks."""

    iteration: int
    max_iterations: int
    cost: float
    reconstruction: float
    weight_decay: float
    sparsity: float
    seconds: float
    parameters: np.ndarray = field(repr=False)  # flat float32 vector
    n_hidden: int = 200

    def weights(self) -> SAEWeights:
        """Return the weights at this iteration (copies the flat vector)."""
        return unflatten(self.parameters, self.n_hidden)

    def line(self) -> str:
        """Return the fixed-format progress line the CLI prints."""
        return (
            f"iteration {self.iteration}/{self.max_iterations} "
            f"cost={self.cost:.6f} reconstruction={self.reconstruction:.6f} "
            f"weight_decay={self.weight_decay:.6f} sparsity={self.sparsity:.6f}"
        )


@dataclass(frozen=True)
class TrainingResult:
    weights: SAEWeights
    metrics: dict
    history: list[dict]


ProgressCallback = Callable[[TrainingProgress], None]


def flatten(weights: SAEWeights) -> np.ndarray:
    """Return W1, b1, W2, b2 concatenated into one float32 vector, in that order."""
    return np.concatenate([weights.W1.ravel(), weights.b1, weights.W2.ravel(), weights.b2])


def _sizes(n_hidden: int) -> list[int]:
    return [n_hidden * N_PIXELS, n_hidden, N_PIXELS * n_hidden, N_PIXELS]


def unflatten(parameters: np.ndarray, n_hidden: int) -> SAEWeights:
    """Split a vector made by flatten back into SAEWeights (float32 copies)."""
    W1, b1, W2, b2 = np.split(np.asarray(parameters), np.cumsum(_sizes(n_hidden))[:-1])
    return SAEWeights(
        W1=W1.reshape(n_hidden, N_PIXELS), b1=b1, W2=W2.reshape(N_PIXELS, n_hidden), b2=b2
    )


def _split(flat, n_hidden):
    """Return W1 (h, 784), b1 (h,), W2 (784, h), b2 (784,) as views of a flat tensor."""
    W1_size = n_hidden * N_PIXELS
    W1 = tf.reshape(flat[:W1_size], (n_hidden, N_PIXELS))
    b1 = flat[W1_size:W1_size + n_hidden]
    W2 = tf.reshape(flat[W1_size + n_hidden:2 * W1_size + n_hidden], (N_PIXELS, n_hidden))
    b2 = flat[2 * W1_size + n_hidden:]
    return W1, b1, W2, b2


def _column_sums(a, ones):
    """Return the sums over the rows of a (m, n) as a product with a ones vector.

    TensorFlow 2.21's reduce_sum over axis 0 of (5000, 784) takes about twice as long
    on 2 cores as this matrix-vector product, which oneDNN runs at memory speed.
    """
    return tf.linalg.matvec(a, ones, transpose_a=True)


def _forward(flat, x, rho, beta, lam, n_hidden):
    """Return the cost terms and the activations that backpropagation reuses.

    Computes the same cost as model.sparse_autoencoder_cost, with (1/2m) sum diff^2
    and (lambda/2) sum W^2 written as l2_loss, which sums squares in one pass.
    """
    W1, b1, W2, b2 = _split(flat, n_hidden)
    m = tf.cast(tf.shape(x)[0], x.dtype)

    z2 = tf.nn.bias_add(tf.matmul(x, W1, transpose_b=True), b1)  # (m, h)
    a2 = tf.sigmoid(z2)
    x_hat = tf.sigmoid(tf.nn.bias_add(tf.matmul(a2, W2, transpose_b=True), b2))  # (m, 784)
    diff = x_hat - x

    reconstruction = tf.nn.l2_loss(diff) / m
    weight_decay = lam * (tf.nn.l2_loss(W1) + tf.nn.l2_loss(W2))
    a2_complement = tf.sigmoid(-z2)  # 1 - a2 without cancellation where a2 rounds to 1
    ones = tf.ones(tf.shape(x)[:1], x.dtype)
    rho_hat = _column_sums(a2, ones) / m  # (h,)
    one_minus_rho_hat = _column_sums(a2_complement, ones) / m
    sparsity = beta * tf.reduce_sum(kl_divergence(rho, rho_hat, one_minus_rho_hat))

    terms = tf.stack([reconstruction + weight_decay + sparsity, reconstruction, weight_decay, sparsity])
    saved = (W1, W2, m, ones, a2, a2_complement, x_hat, diff, one_minus_rho_hat)
    return terms, rho_hat, saved


def _cost_terms_and_gradient(flat, x, rho, beta, lam, n_hidden):
    """Return ([J, reconstruction, weight_decay, sparsity], rho_hat, dJ/dflat).

    Backpropagation, with every (m, .) array scaled by m to save a pass:
        m delta3 = (x_hat - x) * x_hat (1 - x_hat)                      (m, 784)
        m delta2 = (m delta3 W2 + beta (-rho/rho_hat + (1-rho)/(1-rho_hat)))
                   * a2 sigmoid(-z2)                                    (m, h)
        dJ/dW2 = (m delta3)' a2 / m + lambda W2,   dJ/db2 = sum_i m delta3 / m
        dJ/dW1 = (m delta2)' x / m + lambda W1,    dJ/db1 = sum_i m delta2 / m
    """
    terms, rho_hat, saved = _forward(flat, x, rho, beta, lam, n_hidden)
    W1, W2, m, ones, a2, a2_complement, x_hat, diff, one_minus_rho_hat = saved
    tiny = np.finfo(x.dtype.as_numpy_dtype).tiny

    m_delta3 = tf.raw_ops.SigmoidGrad(y=x_hat, dy=diff)  # (m, 784)
    sparsity_slope = beta * (
        -rho / tf.maximum(rho_hat, tiny) + (1.0 - rho) / tf.maximum(one_minus_rho_hat, tiny)
    )  # (h,)
    # sigmoid'(z2) as a2 * sigmoid(-z2) stays positive for saturated units, so the
    # sparsity term still pulls a unit that is always on (a2 * (1 - a2) would be 0).
    m_delta2 = tf.nn.bias_add(tf.matmul(m_delta3, W2), sparsity_slope) * a2 * a2_complement  # (m, h)

    inverse_m = 1.0 / m
    grad_W2 = tf.matmul(m_delta3, a2, transpose_a=True) * inverse_m + lam * W2  # (784, h)
    grad_W1 = tf.matmul(m_delta2, x, transpose_a=True) * inverse_m + lam * W1  # (h, 784)
    grad_b2 = _column_sums(m_delta3, ones) * inverse_m
    grad_b1 = _column_sums(m_delta2, ones) * inverse_m
    gradient = tf.concat(
        [tf.reshape(grad_W1, [-1]), grad_b1, tf.reshape(grad_W2, [-1]), grad_b2], axis=0
    )
    return terms, rho_hat, gradient


def _cost_terms(flat, x, rho, beta, lam, n_hidden):
    terms, rho_hat, _ = _forward(flat, x, rho, beta, lam, n_hidden)
    return terms, rho_hat


_COMPILED: dict[tuple[str, str], Callable] = {}


def _compiled(function, dtype):
    """Return `function` as a tf.function traced once per dtype for any m and n_hidden.

    Every shape is left unknown in the input signature, so moving a slider (which
    changes rho, beta, lambda, m or n_hidden) reuses the traced graph instead of
    paying a new trace.
    """
    key = (function.__name__, dtype.name)
    if key not in _COMPILED:
        signature = [
            tf.TensorSpec([None], dtype),  # flat parameters
            tf.TensorSpec([None, N_PIXELS], dtype),  # x
            tf.TensorSpec([], dtype),  # rho
            tf.TensorSpec([], dtype),  # beta
            tf.TensorSpec([], dtype),  # lambda
            tf.TensorSpec([], tf.int32),  # n_hidden
        ]
        _COMPILED[key] = tf.function(function, input_signature=signature, jit_compile=False)
    return _COMPILED[key]


def make_objective(images: np.ndarray, config: SAEConfig, dtype=tf.float32):
    """Return objective(flat) -> (J, gradient) and evaluate_terms(flat) -> dict, for L-BFGS.

    Both run compiled TensorFlow functions on one copy of the images, in `dtype`
    (float32 for training, float64 for the gradient check). evaluate_terms returns cost,
    reconstruction, weight_decay, sparsity and mean_activation_per_unit (rho_hat).
    """
    evaluate = _make_evaluator(images, config, dtype)
    terms_function = _compiled(_cost_terms, dtype)
    arguments = evaluate.arguments

    def objective(flat: np.ndarray):
        value, gradient, _ = evaluate(flat)
        return value, gradient

    def evaluate_terms(flat: np.ndarray) -> dict:
        terms, rho_hat = terms_function(tf.constant(flat, dtype=dtype), *arguments)
        return _terms_dict(terms.numpy(), rho_hat.numpy())

    return objective, evaluate_terms


def _make_evaluator(images, config, dtype):
    """Return evaluate(flat) -> (J, gradient, (terms, rho_hat)) as NumPy values."""
    function = _compiled(_cost_terms_and_gradient, dtype)
    arguments = (
        tf.constant(np.asarray(images).reshape(-1, N_PIXELS), dtype=dtype),
        tf.constant(config.sparsity_target, dtype),
        tf.constant(config.sparsity_weight, dtype),
        tf.constant(config.weight_decay, dtype),
        tf.constant(config.n_hidden, tf.int32),
    )

    def evaluate(flat: np.ndarray):
        terms, rho_hat, gradient = function(tf.constant(flat, dtype=dtype), *arguments)
        terms = terms.numpy()
        return float(terms[0]), gradient.numpy(), (terms, rho_hat)

    evaluate.arguments = arguments
    return evaluate


def warm_up() -> float:
    """Trace the float32 training function on a one-digit problem; return the seconds taken.

    Tracing happens once per process and takes about a second on 2 cores. An app that
    calls this in a background thread at start-up keeps it out of the first training
    after a slider move. Later trainings of any size reuse the trace.
    """
    started = time.perf_counter()
    config = SAEConfig(n_hidden=1, max_iterations=1)
    evaluate = _make_evaluator(np.zeros((1, N_PIXELS), np.float32), config, tf.float32)
    evaluate(np.zeros(2 * N_PIXELS + 1 + N_PIXELS, np.float32))
    return time.perf_counter() - started


def _terms_dict(terms: np.ndarray, rho_hat: np.ndarray) -> dict:
    return {
        "cost": float(terms[0]),
        "reconstruction": float(terms[1]),
        "weight_decay": float(terms[2]),
        "sparsity": float(terms[3]),
        "mean_activation_per_unit": np.asarray(rho_hat),
    }


_blas_lock = threading.Lock()
_blas_state = {"users": 0, "limiter": None}


@contextlib.contextmanager
def _single_threaded_blas():
    """Run NumPy's and SciPy's OpenBLAS on one thread while any training is under way.

    L-BFGS's vector updates call OpenBLAS between TensorFlow evaluations. With more
    threads, OpenBLAS's idle threads spin for a while after each call and take cores
    from TensorFlow's matrix multiplies: 40 iterations at m = 5,000 took about 1.5 x as
    long on 2 cores. The limit is process-wide, so it is counted: the last training to
    finish restores the original thread counts.
    """
    with _blas_lock:
        if _blas_state["users"] == 0:
            _blas_state["limiter"] = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
        _blas_state["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_state["users"] -= 1
            if _blas_state["users"] == 0:
                _blas_state["limiter"].restore_original_limits()
                _blas_state["limiter"] = None


def train(
    config: SAEConfig,
    images: np.ndarray,
    progress: ProgressCallback | None = None,
    start_from: SAEWeights | None = None,
    term_every: int = 1,
) -> TrainingResult:
    """Train a sparse autoencoder on images (m, 784) in [0, 1] with full-batch L-BFGS.

    Uses the config.n_samples images chosen by data.training_indices (all when None).
    `progress` is called after each iteration whose number is a multiple of term_every
    (and after the last); it may raise lbfgs.StopOptimization to stop early. `start_from` warm-starts from earlier
    weights instead of the seeded random initialisation. Deterministic for a seed on a
    given machine: the same weights come back bit for bit in one process and across
    processes.
    """
    images = np.asarray(images, dtype=np.float32).reshape(-1, N_PIXELS)
    config = config.with_samples_for(len(images))
    images = images[training_indices(len(images), config.n_samples)]
    if start_from is not None and start_from.n_hidden != config.n_hidden:
        raise ValueError(
            f"warm start has {start_from.n_hidden} hidden units but the config asks for "
            f"{config.n_hidden}; train from scratch instead"
        )
    if isinstance(term_every, bool) or not isinstance(term_every, int) or term_every < 1:
        raise ValueError(f"term_every is {term_every!r}; it must be an integer >= 1")
    weights0 = start_from if start_from is not None else initial_weights(config.n_hidden, config.seed)
    evaluate = _make_evaluator(images, config, tf.float32)
    history: list[dict] = []
    started = time.perf_counter()

    def on_iteration(iteration: int, flat: np.ndarray, value: float, info) -> None:
        if iteration % term_every and iteration != config.max_iterations:
            return
        parts = _terms_dict(*info)
        history.append(
            {name: parts[name] for name in ("cost", "reconstruction", "weight_decay", "sparsity")}
            | {"iteration": iteration, "seconds": time.perf_counter() - started}
        )
        if progress is not None:
            progress(
                TrainingProgress(
                    iteration=iteration,
                    max_iterations=config.max_iterations,
                    cost=parts["cost"],
                    reconstruction=parts["reconstruction"],
                    weight_decay=parts["weight_decay"],
                    sparsity=parts["sparsity"],
                    seconds=history[-1]["seconds"],
                    parameters=flat,
                    n_hidden=config.n_hidden,
                )
            )

    with _single_threaded_blas():
        result = minimize_lbfgs(evaluate, flatten(weights0), config.max_iterations, callback=on_iteration)
    seconds = time.perf_counter() - started
    logger.info(
        "trained %d iterations in %.1f s (%d evaluations, stop: %s)",
        result.iterations, seconds, result.evaluations, result.stop_reason,
    )

    # The objective's terms at the final point come with the last accepted evaluation.
    parts = _terms_dict(*result.info)
    rho_hat = parts.pop("mean_activation_per_unit")
    metrics = parts | {
        "mean_activation": float(np.mean(rho_hat)),
        "iterations": result.iterations,
        "evaluations": result.evaluations,
        "stop_reason": result.stop_reason,
        "seconds": seconds,
        "samples": int(config.n_samples),
        "config": config.to_dict(),
    }
    return TrainingResult(weights=unflatten(result.x, config.n_hidden), metrics=metrics, history=history)


__all__ = [
    "StopOptimization", "TrainingProgress", "TrainingResult", "train", "make_objective",
    "flatten", "unflatten", "warm_up",
]
