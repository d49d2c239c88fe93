"""Tests for sae_core.data: IDX and .npz readers, the Keras cache and the embedded digits.

Every file is written by the tests into tmp_path; nothing here reads shared data or
touches the network.
"""

from __future__ import annotations

import gzip
import struct
import sys

import numpy as np
import pytest

from sae_core import data
from sae_core.data import DatasetError, load_dataset

N_DIGITS = 30

OFFLINE_MESSAGE = (
    "URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
    "mnist.npz: None -- [Errno -3] Temporary failure in name resolution"
)


# ---------------------------------------------------------------------------
# Builders for small MNIST-like files
# ---------------------------------------------------------------------------


def make_digits(n: int = N_DIGITS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (n, 28, 28) and labels 0..9 cycling, for round trips."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encode a uint8 array as IDX: magic number, big-endian dimensions, raw bytes."""
    if magic is None:
        magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path, content: bytes, compress: bool = False):
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def write_split(folder, prefix, images, labels, style="hyphen", compress=True):
    """Write the images and labels IDX files of one split in the given name style."""
    suffix = ".gz" if compress else ""
    if style == "hyphen":
        names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    else:
        names = (f"{prefix}-images.idx3-ubyte", f"{prefix}-labels.idx1-ubyte")
    write_file(folder / (names[0] + suffix), idx_bytes(images), compress)
    write_file(folder / (names[1] + suffix), idx_bytes(labels), compress)


def assert_matches(dataset, images, labels):
    assert dataset.images.dtype == np.float32
    assert dataset.labels.dtype == np.int64
    assert dataset.images.shape == (len(images), 784)
    np.testing.assert_array_equal(
        dataset.images, (images.reshape(len(images), 784) / 255.0).astype(np.float32)
    )
    np.testing.assert_array_equal(dataset.labels, labels.astype(np.int64))


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """Point Keras's cache at tmp_path, both through the environment and, if Keras is
    already imported, through the home Keras fixed at import time."""
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    keras_config = sys.modules.get("keras.src.backend.config")
    if keras_config is not None:
        monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home


@pytest.fixture
def keras_mnist(keras_home, monkeypatch):
    """Import keras.datasets.mnist with its home at tmp_path (the import takes seconds)."""
    keras_datasets_mnist = pytest.importorskip("keras.datasets.mnist")
    import keras.src.backend.config

    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(keras_home))
    return keras_datasets_mnist


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["hyphen", "dot"])
@pytest.mark.parametrize("compress", [True, False])
def test_idx_name_styles_gzip_and_raw(tmp_path, style, compress):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels, style=style, compress=compress)

    dataset = load_dataset(tmp_path)

    assert_matches(dataset, images, labels)
    assert dataset.provenance == f"MNIST train (30) from IDX files in {tmp_path}"


def test_idx_gzip_sniffed_by_content(tmp_path):
    images, labels = make_digits()
    # Raw bytes behind a .gz name, gzip bytes behind a raw name.
    write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images), compress=False)
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels), compress=True)

    assert_matches(load_dataset(tmp_path), images, labels)


def test_idx_train_then_test_order(tmp_path):
    train_images, train_labels = make_digits(30, seed=1)
    test_images, test_labels = make_digits(20, seed=2)
    write_split(tmp_path, "t10k", test_images, test_labels)
    write_split(tmp_path, "train", train_images, train_labels, style="dot", compress=False)

    dataset = load_dataset(str(tmp_path))

    assert_matches(
        dataset,
        np.concatenate([train_images, test_images]),
        np.concatenate([train_labels, test_labels]),
    )
    assert dataset.provenance == (
        f"MNIST train (30) + test (20) from IDX files in {tmp_path}"
    )


def test_idx_test_split_alone(tmp_path):
    images, labels = make_digits(12)
    write_split(tmp_path, "t10k", images, labels)

    dataset = load_dataset(tmp_path)

    assert len(dataset) == 12
    assert dataset.provenance.startswith("MNIST test (12) from IDX files")


def test_idx_file_path_loads_its_split(tmp_path):
    train_images, train_labels = make_digits(30, seed=1)
    test_images, test_labels = make_digits(20, seed=2)
    write_split(tmp_path, "train", train_images, train_labels)
    write_split(tmp_path, "t10k", test_images, test_labels)

    dataset = load_dataset(tmp_path / "t10k-labels-idx1-ubyte.gz")

    assert_matches(dataset, test_images, test_labels)


def test_idx_l_shape_is_row_major(tmp_path):
    shape_l = np.zeros((28, 28), dtype=np.uint8)
    shape_l[2:26, 3] = 255  # vertical bar in column 3, rows 2..25
    shape_l[25, 3:20] = 255  # horizontal bar at the bottom, row 25
    images = np.stack([shape_l, np.zeros_like(shape_l)])
    write_split(tmp_path, "train", images, np.array([1, 0], dtype=np.uint8))

    picture = load_dataset(tmp_path).images[0].reshape(28, 28)

    assert np.all(picture[2:26, 3] == 1.0)
    assert np.all(picture[25, 3:20] == 1.0)
    assert picture[2, 10] == 0.0  # top row right of the bar stays empty
    assert picture.sum() == 24 + 16


def test_idx_truncated_raw_image_file(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert str(path) in message
    assert "truncated" in message
    assert "30 images" in message


def test_idx_truncated_gzip_file(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])

    with pytest.raises(DatasetError, match="cannot be decompressed") as error:
        load_dataset(tmp_path)

    assert str(path) in str(error.value)


def test_idx_extra_bytes_rejected(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels, compress=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00" * 5)

    with pytest.raises(DatasetError, match="5 bytes after the 30 labels"):
        load_dataset(tmp_path)


def test_idx_wrong_magic(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_file(path, b"\x12\x34\x56\x78" + idx_bytes(images)[4:], compress=True)

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert str(path) in message
    assert "not an IDX file" in message
    assert "2051" in message


def test_idx_swapped_files(tmp_path):
    images, labels = make_digits()
    write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(labels))
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(images))

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert "magic number 2049 (labels)" in message
    assert "swapped" in message


def test_idx_dtype_byte_wrong(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels)
    # 0x0D is float32 in IDX; the size stays that of bytes so only the type is wrong.
    write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images, magic=0x0D03), True)

    with pytest.raises(DatasetError, match="data-type byte 0x0D") as error:
        load_dataset(tmp_path)

    assert "0x08" in str(error.value)


def test_idx_images_not_28x28(tmp_path):
    images = np.zeros((5, 32, 32), dtype=np.uint8)
    write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(images))
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)))

    with pytest.raises(DatasetError, match="contains 32x32 images; MNIST images are 28x28"):
        load_dataset(tmp_path)


def test_idx_count_mismatch(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels[:25])

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert "30 images" in message
    assert "25 labels" in message


def test_idx_label_out_of_range(tmp_path):
    images, labels = make_digits()
    labels[7] = 10
    write_split(tmp_path, "train", images, labels)

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert "label 10 at index 7" in message


def test_idx_missing_labels_file(tmp_path):
    images, _ = make_digits()
    write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images), compress=True)

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert "no train labels file" in message
    assert "train-labels-idx1-ubyte.gz" in message


def test_idx_reader_on_html_page(tmp_path):
    images, labels = make_digits()
    write_split(tmp_path, "train", images, labels)
    write_file(tmp_path / "train-images-idx3-ubyte.gz", b"<!DOCTYPE html><html>Not found")

    with pytest.raises(DatasetError, match="looks like an HTML page"):
        load_dataset(tmp_path)


# ---------------------------------------------------------------------------
# .npz archives
# ---------------------------------------------------------------------------


def test_npz_keras_layout(tmp_path):
    train_images, train_labels = make_digits(30, seed=1)
    test_images, test_labels = make_digits(20, seed=2)
    path = tmp_path / "digits.npz"
    np.savez_compressed(
        path, x_train=train_images, y_train=train_labels, x_test=test_images, y_test=test_labels
    )

    dataset = load_dataset(path)

    assert_matches(
        dataset,
        np.concatenate([train_images, test_images]),
        np.concatenate([train_labels, test_labels]),
    )
    assert dataset.provenance == f"MNIST train (30) + test (20) from {path}"


def test_npz_in_folder_and_flat_images(tmp_path):
    images, labels = make_digits()
    np.savez(tmp_path / "mnist.npz", x_train=images.reshape(-1, 784), y_train=labels.astype(int))

    dataset = load_dataset(tmp_path)

    assert_matches(dataset, images, labels)
    assert dataset.provenance == f"MNIST train (30) from {tmp_path / 'mnist.npz'}"


def test_npz_same_values_as_idx(tmp_path):
    images, labels = make_digits()
    (tmp_path / "idx").mkdir()
    write_split(tmp_path / "idx", "train", images, labels)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels)

    from_idx = load_dataset(tmp_path / "idx")
    from_npz = load_dataset(tmp_path / "mnist.npz")

    assert from_idx.fingerprint == from_npz.fingerprint


def test_npz_html_page(tmp_path):
    page = b"<!DOCTYPE html>\n<html><body>Sign in</body></html>"
    path = write_file(tmp_path / "mnist.npz", page)

    with pytest.raises(DatasetError) as error:
        load_dataset(path)

    message = str(error.value)
    assert str(path) in message
    assert "not an .npz (zip) archive" in message
    assert "HTML page" in message


@pytest.mark.parametrize(
    "arrays, expected",
    [
        ({"x_train": np.zeros((3, 28, 28), np.uint8)}, "has x_train but no y_train"),
        ({"images": np.zeros((3, 784)), "labels": np.zeros(3)}, "no x_train/y_train"),
    ],
)
def test_npz_missing_keys(tmp_path, arrays, expected):
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)

    with pytest.raises(DatasetError, match=expected) as error:
        load_dataset(path)

    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "x_train, y_train, expected",
    [
        (np.full((3, 28, 28), 200.0), np.arange(3), "float pixel values outside"),
        (np.zeros((3, 27, 27), np.uint8), np.arange(3), r"shape \(3, 27, 27\)"),
        (np.full((3, 784), 300), np.arange(3), "from 300 to 300"),
        (np.zeros((3, 784), np.uint8), np.array([0.0, 1.0, 2.0]), "integer labels"),
        (np.zeros((3, 784), np.uint8), np.array([0, -1, 2]), "label -1 at index 1"),
        (np.zeros((3, 784), np.uint8), np.arange(4), "3 images in x_train but 4"),
        (np.array(["a", "b", "c"] * 784).reshape(3, 784), np.arange(3), "dtype <U1"),
    ],
)
def test_npz_invalid_arrays(tmp_path, x_train, y_train, expected):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train)

    with pytest.raises(DatasetError, match=expected):
        load_dataset(path)


def test_npz_float_pixels_in_unit_range(tmp_path):
    images, labels = make_digits()
    np.savez(tmp_path / "mnist.npz", x_train=images / 255.0, y_train=labels)

    dataset = load_dataset(tmp_path / "mnist.npz")

    assert dataset.images.dtype == np.float32
    np.testing.assert_allclose(dataset.images, images.reshape(-1, 784) / 255.0, atol=1e-7)


def test_npz_object_array_not_unpickled(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.array([object()] * 3, dtype=object), y_train=np.arange(3))

    with pytest.raises(DatasetError, match="without pickle"):
        load_dataset(path)


def test_npz_truncated_archive(tmp_path):
    images, labels = make_digits()
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, x_train=images, y_train=labels)
    path.write_bytes(path.read_bytes()[:300])

    with pytest.raises(DatasetError, match="not a readable .npz archive"):
        load_dataset(path)


# ---------------------------------------------------------------------------
# Paths that are not data
# ---------------------------------------------------------------------------


def test_empty_folder_names_expected_files(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert f"no MNIST files in {tmp_path}" in message
    assert "train-images-idx3-ubyte" in message
    assert "t10k-labels-idx1-ubyte" in message
    assert "mnist.npz" in message


def test_nonexistent_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_unknown_file_type(tmp_path):
    path = write_file(tmp_path / "digits.csv", b"1,2,3\n")

    with pytest.raises(DatasetError, match="neither an .npz archive nor an MNIST IDX file"):
        load_dataset(path)


def test_empty_source_string():
    with pytest.raises(DatasetError, match="data source is empty"):
        load_dataset("  ")


# ---------------------------------------------------------------------------
# Keras
# ---------------------------------------------------------------------------


def test_keras_cache_loaded_without_keras_call(keras_home, monkeypatch):
    train_images, train_labels = make_digits(30, seed=1)
    test_images, test_labels = make_digits(10, seed=2)
    cache = keras_home / "datasets" / "mnist.npz"
    np.savez_compressed(
        cache, x_train=train_images, y_train=train_labels, x_test=test_images, y_test=test_labels
    )
    monkeypatch.setattr(data, "_download_with_keras", pytest.fail)

    dataset = load_dataset("keras")

    assert_matches(
        dataset,
        np.concatenate([train_images, test_images]),
        np.concatenate([train_labels, test_labels]),
    )
    assert dataset.provenance == (
        f"MNIST train (30) + test (10) from the Keras MNIST cache {cache}"
    )


def test_keras_cache_path_follows_keras_home(keras_home):
    assert data.keras_cache_path() == keras_home / "datasets" / "mnist.npz"


def test_keras_offline_names_alternatives(keras_mnist, keras_home, monkeypatch):
    def load_data_offline(path="mnist.npz"):
        # keras.utils.get_file (Keras 3.15) turns a URLError into this bare Exception.
        raise Exception(OFFLINE_MESSAGE)

    monkeypatch.setattr(keras_mnist, "load_data", load_data_offline)

    with pytest.raises(DatasetError) as error:
        load_dataset("keras")

    message = str(error.value)
    assert "failed" in message
    assert "no network" in message
    assert "--data embedded" in message
    assert "--data PATH" in message
    assert "IDX files or mnist.npz" in message


def test_keras_download_checked(keras_mnist, keras_home, monkeypatch):
    train_images, train_labels = make_digits(30, seed=1)
    test_images, test_labels = make_digits(10, seed=2)
    monkeypatch.setattr(
        keras_mnist,
        "load_data",
        lambda path="mnist.npz": ((train_images, train_labels), (test_images, test_labels)),
    )

    dataset = load_dataset("keras")

    assert len(dataset) == 40
    assert dataset.provenance.startswith("MNIST train (30) + test (10) downloaded by keras")


def test_keras_corrupt_cache_kept(keras_mnist, keras_home, monkeypatch):
    cache = keras_home / "datasets" / "mnist.npz"
    content = b"PK\x03\x04 this download stopped half way"
    cache.write_bytes(content)
    calls = []
    monkeypatch.setattr(keras_mnist, "load_data", lambda *args, **kwargs: calls.append(args))

    with pytest.raises(DatasetError) as error:
        load_dataset("keras")

    message = str(error.value)
    assert str(cache) in message
    assert "left in place" in message
    assert "--data embedded" in message
    assert cache.read_bytes() == content
    assert calls == []


# ---------------------------------------------------------------------------
# The embedded 5,000 digits
# ---------------------------------------------------------------------------


def test_embedded_digits_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_EXPLORER_CACHE", str(tmp_path))

    first = load_dataset("embedded")

    assert first.images.shape == (5000, 784)
    assert first.images.dtype == np.float32
    assert first.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(first.labels, minlength=10), [500] * 10)
    assert first.images.min() == 0.0
    assert first.images.max() == 1.0
    assert list(tmp_path.glob("mnist_5k-*.npz"))

    # The second load must come from the cache, so parsing the CSV again is an error.
    def no_parse(*args, **kwargs):
        raise AssertionError("the CSV was parsed again instead of read from the cache")

    monkeypatch.setattr(np, "loadtxt", no_parse)
    second = load_dataset("embedded")

    assert second.fingerprint == first.fingerprint
    assert second.provenance == first.provenance
