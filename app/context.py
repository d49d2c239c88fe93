"""The context every tab of the app receives: the model on screen and its data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sae_core.config import SAEConfig
from sae_core.data import Dataset
from sae_core.model import SAEWeights


@dataclass(frozen=True)
class AppContext:
    weights: SAEWeights
    config: SAEConfig  # n_samples resolved against the data set
    dataset: Dataset
    metrics: dict
    data_source: str
    train_indices: np.ndarray = field(repr=False)  # rows used for training
    heldout_indices: np.ndarray = field(repr=False)  # the other rows; may be empty
