"""Model folders: round trips, atomic writes, corrupt and foreign files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sae_core.config import SAEConfig
from sae_core.model import initial_weights
from sae_core.store import ModelStore, StoreError, load_model_dir, save_model_dir

TINY = SAEConfig(n_hidden=4, max_iterations=3, n_samples=50)


def test_model_dir_round_trip(tmp_path):
    weights = initial_weights(6, seed=0)
    save_model_dir(tmp_path / "m", weights, {"cost": 1.5})
    loaded, metrics = load_model_dir(tmp_path / "m")
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(weights, name))
        assert getattr(loaded, name).dtype == np.float32
    assert metrics == {"cost": 1.5}
    assert not list((tmp_path / "m").glob(".partial*"))


def test_model_dir_missing(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        load_model_dir(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "corrupt"),
        (b"<html><body>Not Found</body></html>", "corrupt"),
        (b"PK\x03\x04truncated", "corrupt"),
    ],
)
def test_model_dir_corrupt_weights(tmp_path, content, message):
    (tmp_path / "weights.npz").write_bytes(content)
    with pytest.raises(StoreError, match=message):
        load_model_dir(tmp_path)


def test_model_dir_half_written_weights(tmp_path):
    save_model_dir(tmp_path, initial_weights(6, seed=0), {})
    data = (tmp_path / "weights.npz").read_bytes()
    (tmp_path / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="corrupt"):
        load_model_dir(tmp_path)


def test_model_dir_foreign_arrays(tmp_path):
    np.savez(tmp_path / "weights.npz", kernel=np.zeros(3))
    with pytest.raises(StoreError, match="lacks the arrays"):
        load_model_dir(tmp_path)


def test_model_dir_wrong_shapes(tmp_path):
    w = initial_weights(6, seed=0)
    np.savez(tmp_path / "weights.npz", W1=w.W1, b1=w.b1, W2=w.W2.T, b2=w.b2)
    with pytest.raises(StoreError, match="W2 has shape"):
        load_model_dir(tmp_path)


def test_model_dir_pickled_object_rejected(tmp_path):
    np.savez(tmp_path / "weights.npz", W1=np.array([{"a": 1}], dtype=object), b1=[0], W2=[0], b2=[0])
    with pytest.raises(StoreError):
        load_model_dir(tmp_path)


def test_store_trains_once_then_loads(tmp_path, mnist):
    store = ModelStore(tmp_path)
    calls = []
    first = store.get_or_train(TINY, mnist, progress=calls.append)
    assert calls, "the first request trains"
    calls.clear()
    second = store.get_or_train(TINY, mnist, progress=calls.append)
    assert not calls, "the second request loads"
    np.testing.assert_array_equal(first.weights.W1, second.weights.W1)
    assert second.metrics["data_fingerprint"] == mnist.fingerprint
    assert second.metrics["data_provenance"] == mnist.provenance


def test_store_corrupt_model_is_retrained(tmp_path, mnist):
    store = ModelStore(tmp_path)
    path = store.get_or_train(TINY, mnist).path
    (path / "weights.npz").write_bytes(b"garbage")
    model, problem = store.lookup(TINY, mnist)
    assert model is None
    assert "corrupt" in problem
    retrained = store.get_or_train(TINY, mnist)
    assert retrained.path == path
    assert load_model_dir(path)[0].n_hidden == 4


def test_store_foreign_metrics_rejected(tmp_path, mnist):
    store = ModelStore(tmp_path)
    path = store.get_or_train(TINY, mnist).path
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["data_fingerprint"] = "0" * 16
    (path / "metrics.json").write_text(json.dumps(metrics))
    model, problem = store.lookup(TINY, mnist)
    assert model is None
    assert "another config or data set" in problem


def test_store_ignores_leftover_staging(tmp_path, mnist):
    (tmp_path / ".partial-crashed").mkdir()
    (tmp_path / ".partial-crashed" / "weights.npz").write_bytes(b"half")
    store = ModelStore(tmp_path)
    assert store.lookup(TINY, mnist) == (None, None)
    assert store.get_or_train(TINY, mnist).weights.n_hidden == 4


def test_store_read_only_root(tmp_path, mnist):
    shipped = ModelStore(tmp_path / "shipped")
    shipped.get_or_train(TINY, mnist)
    store = ModelStore(tmp_path / "user", read_only_roots=[tmp_path / "shipped"])
    model, problem = store.lookup(TINY, mnist)
    assert problem is None
    assert model.path.parent == tmp_path / "shipped"
