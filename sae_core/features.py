"""Statistics of a trained sparse autoencoder on digits: the code of one input, each
hidden unit's preferred digits and activation statistics, and typical errors.

Activations are the sigmoid outputs a_j of the hidden units, in [0, 1]. rho_hat_j is
their mean over a set of digits, the quantity the sparsity penalty pulls towards rho.
Reconstruction errors are per-pixel mean squared errors, mean over the 784 pixels of
(x - x_hat)^2, so they compare across inputs of any kind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .config import N_PIXELS
from .model import SAEWeights, encode, reconstruct

# A unit counts as active on a digit when its sigmoid output is above ACTIVE_LEVEL.
# It is dead when it is active on fewer than DEAD_FRACTION of the digits and saturated
# when it is active on more than SATURATED_FRACTION of them.
ACTIVE_LEVEL = 0.5
DEAD_FRACTION = 0.001
SATURATED_FRACTION = 0.999

# An input whose error is above this percentile of the errors on real digits is unusual.
UNUSUAL_PERCENTILE = 95.0


def _as_rows(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32).reshape(-1, N_PIXELS)


def weights_digest(weights: SAEWeights) -> str:
    """SHA-1 (first 16 hex digits) of the four weight arrays, usable as a cache key."""
    digest = hashlib.sha1()
    for array in (weights.W1, weights.b1, weights.W2, weights.b2):
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# One input


@dataclass(frozen=True)
class DigitAnalysis:
    """One input digit with its hidden code and reconstruction; arrays are float32."""

    pixels: np.ndarray = field(repr=False)  # (784,) the input x
    reconstruction: np.ndarray = field(repr=False)  # (784,) x_hat
    activations: np.ndarray = field(repr=False)  # (n_hidden,) a
    mse: float  # mean over pixels of (x - x_hat)^2

    @property
    def difference(self) -> np.ndarray:
        """x_hat - x per pixel, (784,): positive where the model adds ink."""
        return self.reconstruction - self.pixels

    @property
    def squared_error(self) -> np.ndarray:
        """(x - x_hat)^2 per pixel, (784,); its mean is mse."""
        return np.square(self.difference)


def analyse_digit(weights: SAEWeights, pixels: np.ndarray) -> DigitAnalysis:
    """Encode and reconstruct one digit given as (28, 28) or (784,) values in [0, 1]."""
    x = _as_rows(pixels)
    if x.shape[0] != 1:
        raise ValueError(f"expected one digit of 784 pixels, got {np.size(pixels)} values")
    activations = encode(weights, x)
    x_hat = reconstruct(weights, x)
    return DigitAnalysis(
        pixels=x[0],
        reconstruction=x_hat[0].astype(np.float32),
        activations=activations[0].astype(np.float32),
        mse=float(np.mean(np.square(x_hat - x))),
    )


def most_active_units(activations: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest activations, largest first (ties by index)."""
    activations = np.asarray(activations).ravel()
    order = np.argsort(-activations, kind="stable")
    return order[: max(0, min(count, activations.size))]


# Typical reconstruction errors


def reconstruction_errors(weights: SAEWeights, images: np.ndarray) -> np.ndarray:
    """Per-pixel mean squared error of each digit, shape (m,), float64."""
    x = _as_rows(images)
    x_hat = reconstruct(weights, x)
    return np.mean(np.square(x_hat - x, dtype=np.float64), axis=1)


@dataclass(frozen=True)
class ErrorReference:
    """Reconstruction errors on real digits, to judge one input's error against."""

    errors: np.ndarray = field(repr=False)  # (m,) sorted ascending
    description: str  # which digits, for labels, e.g. "1,000 held-out digits"

    def percentile(self, error: float) -> float:
        """Percentage of the reference digits with a smaller error than `error`."""
        below = np.searchsorted(self.errors, error, side="left")
        return 100.0 * float(below) / len(self.errors)

    def threshold(self) -> float:
        """Error above which an input counts as unusual (UNUSUAL_PERCENTILE)."""
        return float(np.percentile(self.errors, UNUSUAL_PERCENTILE))

    def is_unusual(self, error: float) -> bool:
        return error > self.threshold()

    @property
    def median(self) -> float:
        return float(np.median(self.errors))


def error_reference(weights: SAEWeights, images: np.ndarray, description: str) -> ErrorReference:
    """Compute the reconstruction errors of real digits (at least one) as a reference."""
    errors = np.sort(reconstruction_errors(weights, images))
    if errors.size == 0:
        raise ValueError("the error reference needs at least one digit")
    return ErrorReference(errors=errors, description=description)


def describe_error(error: float, reference: ErrorReference) -> str:
    """Compare an input's error with the errors on real digits, in one sentence."""
    share = reference.percentile(error)
    if reference.is_unusual(error):
        return (
            f"The error {error:.4f} is higher than for {share:.0f}% of the {reference.description}, "
            "so the model does not read this input as a typical digit."
        )
    if share < 50.0:
        return (
            f"The error {error:.4f} is lower than for {100.0 - share:.0f}% of the "
            f"{reference.description} (median {reference.median:.4f}), so the model "
            "reconstructs this input well."
        )
    return (
        f"The error {error:.4f} is in the usual range: {share:.0f}% of the "
        f"{reference.description} have a smaller one (median {reference.median:.4f})."
    )


# Hidden units across a data set


@dataclass(frozen=True)
class UnitStatistics:
    """Per-unit activation statistics over a set of digits; arrays have shape (n_hidden,)."""

    rho_hat: np.ndarray = field(repr=False)  # mean activation
    active_fraction: np.ndarray = field(repr=False)  # share of digits with a > ACTIVE_LEVEL
    max_activation: np.ndarray = field(repr=False)

    @property
    def dead(self) -> np.ndarray:
        """Mask of units active on fewer than DEAD_FRACTION of the digits."""
        return self.active_fraction < DEAD_FRACTION

    @property
    def saturated(self) -> np.ndarray:
        """Mask of units active on more than SATURATED_FRACTION of the digits."""
        return self.active_fraction > SATURATED_FRACTION

    @property
    def n_dead(self) -> int:
        return int(np.count_nonzero(self.dead))

    @property
    def n_saturated(self) -> int:
        return int(np.count_nonzero(self.saturated))


def unit_statistics(activations: np.ndarray) -> UnitStatistics:
    """Summarise activations (m, n_hidden) of m >= 1 digits per hidden unit."""
    activations = np.asarray(activations, dtype=np.float32)
    if activations.ndim != 2 or activations.shape[0] == 0:
        raise ValueError(f"activations have shape {activations.shape}; expected (m, n_hidden) with m >= 1")
    return UnitStatistics(
        rho_hat=activations.mean(axis=0, dtype=np.float64),
        active_fraction=np.mean(activations > ACTIVE_LEVEL, axis=0),
        max_activation=activations.max(axis=0),
    )


def top_activating(activations: np.ndarray, unit: int, count: int = 9) -> np.ndarray:
    """Row indices of the `count` digits with the largest activation of `unit`, largest first."""
    activations = np.asarray(activations)
    n_hidden = activations.shape[1]
    if not 0 <= unit < n_hidden:
        raise ValueError(f"hidden unit {unit} does not exist; choose 0 to {n_hidden - 1}")
    return most_active_units(activations[:, unit], count)


def activation_histogram(values: np.ndarray, bins: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Count activations in equal bins on [0, 1]; returns counts (bins,) and edges (bins + 1,)."""
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=bins, range=(0.0, 1.0))
    return counts, edges
