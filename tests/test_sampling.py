"""Which digits train a model and which are shown: fixed draws, every class present."""

from __future__ import annotations

import numpy as np
import pytest

from sae_core.data import heldout_indices, spread_sample, training_indices


def test_training_subset_covers_classes(mnist):
    rows = training_indices(len(mnist), 1000)
    counts = np.bincount(mnist.labels[rows], minlength=10)
    assert len(rows) == 1000
    assert counts.min() >= 60  # the embedded sample is sorted by class; a prefix would not be


def test_training_subset_fixed_and_sorted():
    first = training_indices(5000, 300)
    np.testing.assert_array_equal(first, training_indices(5000, 300))
    assert np.all(np.diff(first) > 0)


def test_training_all_rows_in_order():
    np.testing.assert_array_equal(training_indices(50, 50), np.arange(50))


def test_heldout_is_complement():
    used = training_indices(500, 120)
    held = heldout_indices(500, 120)
    assert len(held) == 380
    assert not set(used) & set(held)
    assert sorted(set(used) | set(held)) == list(range(500))


def test_training_subset_rejects_bad_size():
    with pytest.raises(ValueError, match="n_samples is 0"):
        training_indices(10, 0)


def test_spread_sample_cycles_classes(mnist):
    rows = spread_sample(mnist.labels, 30)
    assert list(mnist.labels[rows]) == list(range(10)) * 3


def test_spread_sample_within_rows(mnist):
    allowed = np.arange(0, 5000, 7)
    rows = spread_sample(mnist.labels, 20, allowed)
    assert set(rows) <= set(allowed)
    assert len(rows) == 20
