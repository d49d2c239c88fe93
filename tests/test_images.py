"""Mosaics keep digits upright and survive constant rows."""

from __future__ import annotations

import numpy as np

from sae_core.images import (
    BORDER,
    SIDE,
    digit_mosaic,
    feature_mosaic,
    reconstruction_sheet,
    scale_each_tile,
    to_png_bytes,
)


def _letter_l() -> np.ndarray:
    """An "L": a bar down the left side and a bar along the bottom, as a 784-vector."""
    image = np.zeros((SIDE, SIDE))
    image[4:24, 6] = 1.0
    image[23, 6:20] = 1.0
    return image.ravel()


def _first_tile(mosaic: np.ndarray, scale: int) -> np.ndarray:
    return mosaic[BORDER : BORDER + SIDE * scale : scale, BORDER : BORDER + SIDE * scale : scale]


def test_mosaic_keeps_l_upright():
    W1 = np.stack([_letter_l(), np.zeros(784)])
    tile = _first_tile(feature_mosaic(W1, n_columns=2, scale=2), scale=2)
    assert tile[4:24, 6].min() == 255  # the vertical bar is on the left
    assert tile[23, 6:20].min() == 255  # the horizontal bar is at the bottom
    assert tile[4, 19] == 0  # top right stays empty
    assert not np.array_equal(tile, tile.T)


def test_digit_mosaic_dark_ink_on_white():
    tile = _first_tile(digit_mosaic(_letter_l()[None, :], n_columns=1, scale=1), scale=1)
    assert tile[10, 6] == 0
    assert tile[10, 15] == 255


def test_all_zero_row_is_safe():
    mosaic = feature_mosaic(np.zeros((4, 784)), n_columns=2)
    assert mosaic.dtype == np.uint8
    tile = _first_tile(mosaic, scale=2)
    assert np.all(tile == 128)


def test_each_tile_scaled_on_its_own():
    rows = np.stack([np.linspace(0, 1e-3, 784), np.linspace(-50, 50, 784)])
    scaled = scale_each_tile(rows)
    np.testing.assert_allclose(scaled.min(axis=1), [0, 0])
    np.testing.assert_allclose(scaled.max(axis=1), [1, 1])


def test_mosaic_shows_first_hundred_rows():
    W1 = np.random.default_rng(0).normal(size=(200, 784))
    mosaic = feature_mosaic(W1, scale=1)
    assert mosaic.shape == (10 * (SIDE + BORDER) + BORDER,) * 2


def test_reconstruction_sheet_png():
    digits = np.random.default_rng(0).uniform(size=(20, 784))
    sheet = reconstruction_sheet(digits, digits)
    assert sheet.ndim == 2
    assert to_png_bytes(sheet).startswith(b"\x89PNG")
