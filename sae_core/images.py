"""Pictures of a model: the W1 feature mosaic and digits next to their reconstructions.

Images are uint8 arrays (0 black, 255 white). Every 784-vector is shown as a 28x28
image in row-major order, the layout of MNIST files, so digits are not transposed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIDE = 28
BORDER = 1
BACKGROUND = 255  # white lines between tiles


def scale_each_tile(rows: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] on its own; a constant row becomes mid-grey."""
    rows = np.asarray(rows, dtype=np.float64)
    low = rows.min(axis=1, keepdims=True)
    span = rows.max(axis=1, keepdims=True) - low
    flat = span[:, 0] == 0
    scaled = (rows - low) / np.where(span == 0, 1.0, span)
    scaled[flat] = 0.5
    return scaled


def tile_grid(rows: np.ndarray, n_columns: int, scale: int = 1) -> np.ndarray:
    """Arrange 784-vectors with values in [0, 1] as a grid of 28x28 tiles.

    Returns a uint8 image; each pixel is repeated scale times in each direction.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, SIDE * SIDE)
    n_rows = max(1, -(-len(rows) // n_columns))
    step = SIDE * scale + BORDER
    mosaic = np.full((n_rows * step + BORDER, n_columns * step + BORDER), BACKGROUND, np.uint8)
    for index, row in enumerate(rows):
        tile = np.clip(row, 0.0, 1.0).reshape(SIDE, SIDE)  # row-major, as in MNIST files
        tile = np.kron(tile, np.ones((scale, scale))) if scale > 1 else tile
        top = BORDER + (index // n_columns) * step
        left = BORDER + (index % n_columns) * step
        mosaic[top : top + SIDE * scale, left : left + SIDE * scale] = np.round(tile * 255)
    return mosaic


def feature_mosaic(W1: np.ndarray, n_features: int = 100, n_columns: int = 10, scale: int = 2) -> np.ndarray:
    """Draw the first n_features rows of W1 as 28x28 tiles, each contrast-stretched on its own."""
    rows = np.asarray(W1)[:n_features]
    return tile_grid(scale_each_tile(rows), n_columns, scale)


def digit_mosaic(images: np.ndarray, n_columns: int = 10, scale: int = 2) -> np.ndarray:
    """Digits with values in [0, 1] as a grid, shown as dark ink on white like paper."""
    return 255 - tile_grid(images, n_columns, scale)


def side_by_side(*images: np.ndarray, gap: int = 12) -> np.ndarray:
    """Join uint8 images left to right with a white gap, aligned at the top."""
    height = max(image.shape[0] for image in images)
    width = sum(image.shape[1] for image in images) + gap * (len(images) - 1)
    canvas = np.full((height, width), 255, np.uint8)
    left = 0
    for image in images:
        canvas[: image.shape[0], left : left + image.shape[1]] = image
        left += image.shape[1] + gap
    return canvas


def with_caption(image: np.ndarray, caption: str, size: int = 14) -> np.ndarray:
    """Add a line of text above an image."""
    font = ImageFont.load_default(size=size)
    band = size + 10
    canvas = Image.new("L", (image.shape[1], image.shape[0] + band), 255)
    canvas.paste(Image.fromarray(image), (0, band))
    ImageDraw.Draw(canvas).text((4, 3), caption, fill=0, font=font)
    return np.asarray(canvas)


def reconstruction_sheet(originals: np.ndarray, reconstructions: np.ndarray, n_columns: int = 10, scale: int = 2) -> np.ndarray:
    """Originals on the left and their reconstructions on the right, captioned."""
    left = with_caption(digit_mosaic(originals, n_columns, scale), "original")
    right = with_caption(digit_mosaic(reconstructions, n_columns, scale), "regenerated")
    return side_by_side(left, right, gap=16)


def comparison_sheet(mosaics: list[np.ndarray], captions: list[str]) -> np.ndarray:
    """Several mosaics side by side, each under its caption."""
    return side_by_side(*(with_caption(m, c) for m, c in zip(mosaics, captions)), gap=16)


def to_png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a PNG atomically (temporary file, then rename)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(to_png_bytes(image))
    partial.replace(path)
    return path
