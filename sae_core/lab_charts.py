"""Pictures and Altair charts for the digit lab and the feature inspector.

Every function takes plain NumPy arrays and returns an image array, a PNG data URL or
an Altair chart. None of them draws on the screen. Digits are (784,) or (28, 28) arrays
in [0, 1], white ink on black as in MNIST.
"""

from __future__ import annotations

import base64
import io

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

SIDE = 28  # MNIST images are 28x28
RHO_COLOUR = "#d62728"  # the target rho, in every chart
INPUT_COLOUR = "#ff7f0e"  # the current input or unit
BAR_COLOUR = "#4c78a8"

# Pictures


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Repeat each pixel scale x scale times, so small images stay sharp when shown."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def digit_image(pixels: np.ndarray, scale: int = 6) -> np.ndarray:
    """Render a digit (784,) in [0, 1] as a uint8 gray image (28 * scale, 28 * scale)."""
    values = np.clip(np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE), 0.0, 1.0)
    return enlarge(np.round(values * 255).astype(np.uint8), scale)


def weight_image(weights: np.ndarray, scale: int = 6) -> np.ndarray:
    """Render signed weights (784,) as uint8 gray: 0 is mid-gray, +max|w| white, -max|w| black."""
    values = np.asarray(weights, dtype=np.float32).reshape(SIDE, SIDE)
    limit = float(np.max(np.abs(values))) or 1.0
    gray = 0.5 + 0.5 * values / limit
    return enlarge(np.round(gray * 255).astype(np.uint8), scale)


def difference_image(difference: np.ndarray, scale: int = 6, limit: float = 0.5) -> np.ndarray:
    """Render signed differences (784,) as uint8 RGB, full colour at +-limit.

    Zero is black, positive values (ink the reconstruction adds) are red and negative
    values (ink it misses) are blue.
    """
    values = np.clip(np.asarray(difference, dtype=np.float32).reshape(SIDE, SIDE) / limit, -1.0, 1.0)
    rgb = np.zeros((SIDE, SIDE, 3), dtype=np.float32)
    rgb[..., 0] = np.maximum(values, 0.0)
    rgb[..., 1] = 0.35 * np.abs(values)
    rgb[..., 2] = np.maximum(-values, 0.0)
    return enlarge(np.round(rgb * 255).astype(np.uint8), scale)


def mosaic(tiles: np.ndarray, columns: int, gap: int = 1, fill: int = 255) -> np.ndarray:
    """Arrange equally sized uint8 images (n, h, w[, 3]) in a grid with `gap` pixels between."""
    count, height, width = tiles.shape[:3]
    rows = -(-count // columns)
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap) + tiles.shape[3:]
    grid = np.full(shape, fill, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        top = (index // columns) * (height + gap)
        left = (index % columns) * (width + gap)
        grid[top : top + height, left : left + width] = tile
    return grid


def png_data_url(image: np.ndarray) -> str:
    """Encode a uint8 gray or RGB image as a data:image/png;base64 URL for Altair image marks."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def panels_image(pixels: np.ndarray, reconstruction: np.ndarray, scale: int = 8, gap: int = 4) -> np.ndarray:
    """Join input, reconstruction and signed error side by side into one uint8 RGB image."""
    tiles = np.stack(
        [
            _gray_to_rgb(digit_image(pixels, scale)),
            _gray_to_rgb(digit_image(reconstruction, scale)),
            difference_image(np.asarray(reconstruction) - np.asarray(pixels), scale),
        ]
    )
    return mosaic(tiles, columns=3, gap=gap)


# Charts


def activation_chart(activations: np.ndarray, rho: float, highlighted=()) -> alt.Chart:
    """Chart the hidden activations a_j of one input as bars, with the target rho as a rule."""
    highlighted = {int(unit) for unit in highlighted}
    unit_scale = alt.Scale(domain=[-0.5, len(activations) - 0.5], nice=False, zero=False)
    table = pd.DataFrame(
        {
            "unit": np.arange(len(activations)),
            "activation": np.asarray(activations, dtype=np.float64),
            "most active": [unit in highlighted for unit in range(len(activations))],
        }
    )
    bars = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("unit:Q", title="hidden unit j", scale=unit_scale),
            y=alt.Y("activation:Q", title="activation a_j", scale=alt.Scale(domain=[0, 1])),
            color=alt.condition(alt.datum["most active"], alt.value(INPUT_COLOUR), alt.value(BAR_COLOUR)),
            tooltip=["unit", alt.Tooltip("activation:Q", format=".3f")],
        )
    )
    target = alt.Chart(
        pd.DataFrame({"unit": [len(activations) - 0.5], "rho": [rho], "label": [f"target ρ = {rho:g}"]})
    )
    rule = target.mark_rule(color=RHO_COLOUR, strokeDash=[6, 3]).encode(y="rho:Q", tooltip=["label"])
    label = target.mark_text(color=RHO_COLOUR, align="right", dy=-6).encode(
        x=alt.X("unit:Q", scale=unit_scale), y="rho:Q", text="label"
    )
    return alt.layer(bars, rule, label).properties(height=220)


def histogram_chart(
    counts: np.ndarray, edges: np.ndarray, x_title: str, markers: dict | None = None, y_title: str = "digits"
) -> alt.Chart:
    """Chart a histogram given as counts (bins,) and edges (bins + 1,) as bars.

    `markers` maps a label to an x value, and each one becomes a labelled vertical rule.
    """
    table = pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts})
    bars = (
        alt.Chart(table)
        .mark_bar(color=BAR_COLOUR)
        .encode(
            x=alt.X("start:Q", title=x_title, bin="binned", scale=alt.Scale(domain=[edges[0], edges[-1]], nice=False)),
            x2="end:Q",
            y=alt.Y("count:Q", title=y_title),
            tooltip=[alt.Tooltip("start:Q", format=".3f"), alt.Tooltip("end:Q", format=".3f"), "count"],
        )
    )
    layers = [bars]
    for position, (label, value) in enumerate((markers or {}).items()):
        colour = RHO_COLOUR if position == 0 else INPUT_COLOUR
        marker = alt.Chart(pd.DataFrame({"value": [value], "label": [label]}))
        layers.append(marker.mark_rule(color=colour, strokeDash=[6, 3], size=2).encode(x="value:Q", tooltip=["label"]))
        layers.append(
            marker.mark_text(color=colour, align="left", dx=4, dy=-6 - 14 * position)
            .encode(x="value:Q", y=alt.value(10), text="label")
        )
    return alt.layer(*layers).properties(height=200)


def rho_hat_chart(rho_hat: np.ndarray, rho: float, bins: int = 30) -> alt.Chart:
    """Chart the histogram of the mean activations rho_hat_j across units, with the target rho."""
    lower = min(float(np.min(rho_hat)), rho) * 0.9
    upper = min(1.0, max(float(np.max(rho_hat)), rho) * 1.1)
    counts, edges = np.histogram(rho_hat, bins=bins, range=(lower, max(upper, lower + 1e-6)))
    return histogram_chart(counts, edges, "mean activation ρ̂_j", {f"target ρ = {rho:g}": rho}, "hidden units")


def error_chart(errors: np.ndarray, error: float, bins: int = 40) -> alt.Chart:
    """Chart the histogram of errors on real digits, with this input's error marked."""
    upper = max(float(np.max(errors)), error) * 1.05
    counts, edges = np.histogram(errors, bins=bins, range=(0.0, upper))
    return histogram_chart(counts, edges, "per-pixel mean squared error", {"this input": error})


def mosaic_chart(W1: np.ndarray, rho_hat: np.ndarray, selected: int | None, columns: int = 20, row_height: int = 32) -> alt.Chart:
    """Chart the W1 tiles of all hidden units as a clickable grid of image marks.

    Tiles are sized from the chart's width and height, so the grid fills its container.
    Clicking a tile selects the point selection named "unit_pick" with field "unit".
    """
    n_hidden = len(W1)
    rows = -(-n_hidden // columns)
    table = pd.DataFrame(
        {
            "unit": np.arange(n_hidden),
            "row": np.arange(n_hidden) // columns,
            "column": np.arange(n_hidden) % columns,
            "url": [png_data_url(weight_image(W1[unit], scale=1)) for unit in range(n_hidden)],
            "rho_hat": np.asarray(rho_hat, dtype=np.float64),
        }
    )
    pick = alt.selection_point(name="unit_pick", fields=["unit"], on="click", toggle=False)
    position = dict(
        x=alt.X("column:Q", axis=None, scale=alt.Scale(domain=[-0.5, columns - 0.5], nice=False, zero=False)),
        y=alt.Y("row:Q", axis=None, scale=alt.Scale(domain=[-0.5, rows - 0.5], nice=False, zero=False, reverse=True)),
    )
    # Square tiles: the largest that fits a cell, with a small gap.
    side = alt.expr(f"max(4, min(width / {columns}, height / {rows}) - 2)")
    images = (
        alt.Chart(table)
        .mark_image(width=side, height=side, aspect=True, cursor="pointer")
        .encode(url="url:N", tooltip=["unit", alt.Tooltip("rho_hat:Q", title="ρ̂", format=".3f")], **position)
        .add_params(pick)
    )
    layers = [images]
    if selected is not None:
        frame = alt.Chart(table[table["unit"] == selected]).mark_rect(
            fill=None, stroke=INPUT_COLOUR, strokeWidth=3, width=side, height=side
        )
        layers.append(frame.encode(**position))
    return alt.layer(*layers).properties(height=rows * row_height)
