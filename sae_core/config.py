"""Hyperparameters of one sparse autoencoder run, validated in one place."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

# The sparsity targets of the original experiment.
ORIGINAL_SPARSITY_TARGETS = (0.01, 0.1, 0.5, 0.8)
N_PIXELS = 784  # 28 x 28 MNIST images


@dataclass(frozen=True)
class SAEConfig:
    """A 784-n_hidden-784 sigmoid sparse autoencoder and its L-BFGS training run.

    Fields are the hyperparameters of the cost
    J = (1/2m) sum ||x - x_hat||^2 + (lambda/2)(||W1||^2 + ||W2||^2)
        + beta sum_j KL(rho || rho_hat_j).
    """

    sparsity_target: float = 0.1  # rho
    sparsity_weight: float = 3.0  # beta
    weight_decay: float = 1e-3  # lambda
    n_hidden: int = 200
    max_iterations: int = 400
    n_samples: int | None = None  # None uses every image of the data set
    seed: int = 0

    def __post_init__(self) -> None:
        _check_real("sparsity_target (rho)", self.sparsity_target)
        if not 0.0 < self.sparsity_target < 1.0:
            raise ValueError(
                f"sparsity_target (rho) is {self.sparsity_target}; "
                "it must lie strictly between 0 and 1"
            )
        _check_real("sparsity_weight (beta)", self.sparsity_weight)
        if self.sparsity_weight < 0:
            raise ValueError(
                f"sparsity_weight (beta) is {self.sparsity_weight}; it must be >= 0"
            )
        _check_real("weight_decay (lambda)", self.weight_decay)
        if self.weight_decay < 0:
            raise ValueError(
                f"weight_decay (lambda) is {self.weight_decay}; it must be >= 0"
            )
        _check_int("n_hidden", self.n_hidden, minimum=1)
        _check_int("max_iterations", self.max_iterations, minimum=1)
        if self.n_samples is not None:
            _check_int("n_samples", self.n_samples, minimum=1)
        _check_int("seed", self.seed, minimum=0)

    def with_samples_for(self, n_available: int) -> "SAEConfig":
        """Return the config with n_samples resolved against a data set's size.

        Raises ValueError when more samples are requested than the data set has.
        """
        if self.n_samples is None:
            return dataclasses.replace(self, n_samples=n_available)
        if self.n_samples > n_available:
            raise ValueError(
                f"n_samples is {self.n_samples} but the data set has only "
                f"{n_available} images; choose 1 to {n_available}"
            )
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SAEConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**values)

    def key(self) -> str:
        """Return a stable text form of the config, used in store keys."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _check_real(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} is {value!r}; it must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{name} is {value}; it must be finite")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is {value!r}; it must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name} is {value}; it must be an integer >= {minimum}")
