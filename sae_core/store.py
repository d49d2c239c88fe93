"""Trained models on disk: one folder per model with weights.npz and metrics.json.

A folder under the store's root is named after the config and the data fingerprint,
so asking for a trained config again loads it instead of retraining. Folders are
written under a temporary name and renamed, so a crash never leaves a half-written
model in place. Files are read without pickle.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import SAEConfig
from .data import Dataset
from .model import SAEWeights

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npz"
METRICS_FILE = "metrics.json"
WEIGHT_NAMES = ("W1", "b1", "W2", "b2")


class StoreError(ValueError):
    """A model folder is missing, corrupt or belongs to another config or data set."""


@dataclass(frozen=True)
class TrainedModel:
    weights: SAEWeights
    metrics: dict
    config: SAEConfig  # n_samples resolved
    path: Path | None = None


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in metrics.json")


def write_model_files(directory: Path, weights: SAEWeights, metrics: dict) -> None:
    """Write weights.npz and metrics.json into an existing folder (not atomic)."""
    np.savez_compressed(directory / WEIGHTS_FILE, **weights.as_dict())
    text = json.dumps(metrics, indent=2, sort_keys=True, default=_json_default)
    (directory / METRICS_FILE).write_text(text + "\n", encoding="utf-8")


def save_model_dir(directory: str | os.PathLike, weights: SAEWeights, metrics: dict) -> Path:
    """Write weights.npz and metrics.json into `directory`, each file atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".partial-") as staging:
        staging = Path(staging)
        write_model_files(staging, weights, metrics)
        for name in (WEIGHTS_FILE, METRICS_FILE):
            os.replace(staging / name, directory / name)
    return directory


def load_model_dir(directory: str | os.PathLike) -> tuple[SAEWeights, dict]:
    """Read the weights and metrics that `train --out` or the store wrote.

    Raises StoreError with the file and the reason for a missing, truncated or
    foreign file.
    """
    directory = Path(directory)
    weights_path = directory / WEIGHTS_FILE
    metrics_path = directory / METRICS_FILE
    if not directory.is_dir():
        raise StoreError(f"model folder {directory} does not exist; train one with "
                         "'python -m sae_core train --out DIR'")
    if not weights_path.is_file():
        raise StoreError(f"{weights_path} is missing; the folder contains no trained model; train one with 'python -m sae_core train --out DIR'")

    try:
        with np.load(weights_path, allow_pickle=False) as arrays:
            missing = [name for name in WEIGHT_NAMES if name not in arrays.files]
            if missing:
                raise StoreError(f"{weights_path} lacks the arrays {missing}; it is not a model file")
            values = {name: arrays[name] for name in WEIGHT_NAMES}
    except StoreError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise StoreError(f"{weights_path} is corrupt or not an .npz file ({error})") from error

    for name, array in values.items():
        if array.dtype.kind != "f":
            raise StoreError(f"{weights_path}: {name} has dtype {array.dtype}; expected float32")
    try:
        weights = SAEWeights(**values)
    except ValueError as error:
        raise StoreError(f"{weights_path}: {error}") from error

    metrics: dict = {}
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StoreError(f"{metrics_path} is corrupt ({error})") from error
        if not isinstance(metrics, dict):
            raise StoreError(f"{metrics_path} does not hold a JSON object")
    return weights, metrics


def model_folder_name(config: SAEConfig, data_fingerprint: str, init: str = "") -> str:
    """Return a readable folder name for the config, the data and the initialisation."""
    name = (
        f"rho{config.sparsity_target:g}_beta{config.sparsity_weight:g}"
        f"_lambda{config.weight_decay:g}_h{config.n_hidden}_it{config.max_iterations}"
        f"_n{config.n_samples}_seed{config.seed}_data{data_fingerprint[:12]}"
    )
    return f"{name}_warm{init[:12]}" if init else name


class ModelStore:
    """Trained models under `root`, looked up by config and data fingerprint.

    `read_only_roots` are searched after root but never written, e.g. the models that
    ship with the repository when root is elsewhere.
    """

    def __init__(self, root: str | os.PathLike = "models", read_only_roots=()):
        self.root = Path(root)
        self.read_only_roots = [Path(extra) for extra in read_only_roots]
        self._lock = threading.Lock()

    def path_for(self, config: SAEConfig, dataset: Dataset, init: str = "") -> Path:
        config = config.with_samples_for(len(dataset))
        return self.root / model_folder_name(config, dataset.fingerprint, init)

    def lookup(self, config: SAEConfig, dataset: Dataset, init: str = "") -> tuple[TrainedModel | None, str | None]:
        """Return (model, None) if stored, (None, None) if absent, (None, reason) if unusable."""
        config = config.with_samples_for(len(dataset))
        name = model_folder_name(config, dataset.fingerprint, init)
        candidates = [root / name for root in [self.root, *self.read_only_roots]]
        existing = [path for path in candidates if path.exists()]
        if not existing:
            return None, None
        problem = None
        for path in existing:
            model, problem = self._load_checked(path, config, dataset)
            if model is not None:
                return model, None
        return None, problem

    def _load_checked(self, path: Path, config: SAEConfig, dataset: Dataset) -> tuple[TrainedModel | None, str | None]:
        try:
            weights, metrics = load_model_dir(path)
        except StoreError as error:
            logger.warning("stored model unusable, will retrain: %s", error)
            return None, str(error)
        if metrics.get("config") != config.to_dict() or metrics.get("data_fingerprint") != dataset.fingerprint:
            reason = f"{path} was trained with another config or data set"
            logger.warning("stored model unusable, will retrain: %s", reason)
            return None, reason
        if weights.n_hidden != config.n_hidden:
            return None, f"{path} has {weights.n_hidden} hidden units, expected {config.n_hidden}"
        return TrainedModel(weights, metrics, config, path), None

    def save(self, config: SAEConfig, dataset: Dataset, weights: SAEWeights, metrics: dict, init: str = "") -> TrainedModel:
        """Store a model atomically: write a staging folder, then rename it into place."""
        config = config.with_samples_for(len(dataset))
        path = self.path_for(config, dataset, init)
        metrics = dict(metrics, config=config.to_dict(), data_fingerprint=dataset.fingerprint,
                       data_provenance=dataset.provenance)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".partial-"))
        try:
            write_model_files(staging, weights, metrics)
            with self._lock:
                if path.exists():
                    shutil.rmtree(path)
                os.replace(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return TrainedModel(weights, metrics, config, path)

    def get_or_train(self, config: SAEConfig, dataset: Dataset, progress=None, start_from: TrainedModel | None = None) -> TrainedModel:
        """Load the stored model for config and data, or train and store it.

        With `start_from`, training continues from that model's weights (warm start);
        such a model is stored apart from the cold-started one of the same config.
        """
        from .training import train  # TensorFlow is imported only when training

        init = _init_tag(start_from)
        model, _problem = self.lookup(config, dataset, init)
        if model is not None:
            return model
        result = train(config, dataset.images, progress=progress,
                       start_from=start_from.weights if start_from else None)
        metrics = dict(result.metrics)
        if start_from is not None:
            metrics["warm_start_from"] = start_from.metrics.get("config")
        if metrics.get("stop_reason") == "stopped":
            # Stopped by the caller: not the model this config names, so not stored.
            return TrainedModel(result.weights, metrics, config.with_samples_for(len(dataset)))
        return self.save(config, dataset, result.weights, metrics, init)


def _init_tag(start_from: TrainedModel | None) -> str:
    if start_from is None:
        return ""
    import hashlib

    return hashlib.sha256(start_from.weights.W1.tobytes()).hexdigest()[:12]
