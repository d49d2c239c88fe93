"""Full-batch L-BFGS training of the sparse autoencoder, with TensorFlow gradients."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf

from .config import N_PIXELS, SAEConfig
from .lbfgs import StopOptimization, minimize_lbfgs
from .model import SAEWeights, initial_weights, sparse_autoencoder_cost

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
        """The fixed-format progress line the CLI prints."""
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
    return np.concatenate([weights.W1.ravel(), weights.b1, weights.W2.ravel(), weights.b2])


def _sizes(n_hidden: int) -> list[int]:
    return [n_hidden * N_PIXELS, n_hidden, N_PIXELS * n_hidden, N_PIXELS]


def unflatten(parameters: np.ndarray, n_hidden: int) -> SAEWeights:
    W1, b1, W2, b2 = np.split(np.asarray(parameters), np.cumsum(_sizes(n_hidden))[:-1])
    return SAEWeights(
        W1=W1.reshape(n_hidden, N_PIXELS), b1=b1, W2=W2.reshape(N_PIXELS, n_hidden), b2=b2
    )


def make_objective(images: np.ndarray, config: SAEConfig, dtype=tf.float32):
    """Return objective(flat) -> (J, gradient) and terms(flat) -> dict, for L-BFGS.

    Both run as compiled tf.functions on a constant copy of the images, so a call costs
    the cost evaluation's matrix multiplies and little else.
    """
    n_hidden = config.n_hidden
    sizes = _sizes(n_hidden)
    x = tf.constant(np.asarray(images).reshape(-1, N_PIXELS), dtype=dtype)
    rho = tf.constant(config.sparsity_target, dtype)
    beta = tf.constant(config.sparsity_weight, dtype)
    lam = tf.constant(config.weight_decay, dtype)

    def split(flat):
        W1, b1, W2, b2 = tf.split(flat, sizes)
        return tf.reshape(W1, (n_hidden, N_PIXELS)), b1, tf.reshape(W2, (N_PIXELS, n_hidden)), b2

    @tf.function(jit_compile=False, reduce_retracing=True)
    def value_and_gradient(flat):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            total, _ = sparse_autoencoder_cost(*split(flat), x, rho, beta, lam)
        return total, tape.gradient(total, flat)

    @tf.function(reduce_retracing=True)
    def terms(flat):
        total, parts = sparse_autoencoder_cost(*split(flat), x, rho, beta, lam)
        return total, parts

    numpy_dtype = dtype.as_numpy_dtype

    def objective(flat: np.ndarray):
        total, gradient = value_and_gradient(tf.constant(flat, dtype=dtype))
        return float(total), gradient.numpy().astype(numpy_dtype, copy=False)

    def evaluate_terms(flat: np.ndarray) -> dict:
        total, parts = terms(tf.constant(flat, dtype=dtype))
        return {
            "cost": float(total),
            "reconstruction": float(parts["reconstruction"]),
            "weight_decay": float(parts["weight_decay"]),
            "sparsity": float(parts["sparsity"]),
            "mean_activation_per_unit": parts["mean_activation"].numpy(),
        }

    return objective, evaluate_terms


def train(
    config: SAEConfig,
    images: np.ndarray,
    progress: ProgressCallback | None = None,
    start_from: SAEWeights | None = None,
    term_every: int = 1,
) -> TrainingResult:
    """Train a sparse autoencoder on images (m, 784) in [0, 1] with full-batch L-BFGS.

    Uses the first config.n_samples images (all when None). `progress` is called after
    each iteration whose number is a multiple of term_every (and after the last); it may
    raise lbfgs.StopOptimization to stop early. `start_from` warm-starts from earlier
    weights instead of the seeded random initialisation. Deterministic for a seed.
    """
    images = np.asarray(images, dtype=np.float32).reshape(-1, N_PIXELS)
    config = config.with_samples_for(len(images))
    images = images[: config.n_samples]
    if start_from is not None and start_from.n_hidden != config.n_hidden:
        raise ValueError(
            f"warm start has {start_from.n_hidden} hidden units but the config asks for "
            f"{config.n_hidden}; train from scratch instead"
        )
    weights0 = start_from if start_from is not None else initial_weights(config.n_hidden, config.seed)
    objective, evaluate_terms = make_objective(images, config)
    history: list[dict] = []
    started = time.perf_counter()

    def on_iteration(iteration: int, flat: np.ndarray, value: float) -> None:
        if iteration % term_every and iteration != config.max_iterations:
            return
        parts = evaluate_terms(flat)
        history.append(
            {name: parts[name] for name in ("cost", "reconstruction", "weight_decay", "sparsity")}
            | {"iteration": iteration}
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
                    seconds=time.perf_counter() - started,
                    parameters=flat,
                    n_hidden=config.n_hidden,
                )
            )

    result = minimize_lbfgs(objective, flatten(weights0), config.max_iterations, callback=on_iteration)
    seconds = time.perf_counter() - started
    logger.info(
        "trained %d iterations in %.1f s (%d evaluations, stop: %s)",
        result.iterations, seconds, result.evaluations, result.stop_reason,
    )

    weights = unflatten(result.x, config.n_hidden)
    parts = evaluate_terms(result.x)
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
    return TrainingResult(weights=weights, metrics=metrics, history=history)


__all__ = ["StopOptimization", "TrainingProgress", "TrainingResult", "train", "make_objective"]
