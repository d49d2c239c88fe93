"""Pictures and Altair charts for the digit lab and the feature inspector.

Every function takes plain NumPy arrays and returns an image array, a PNG data URL or
an Altair chart; none of them draws on the screen. Digits are (784,) or (28, 28) arrays
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


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Repeat each pixel scale x scale times, so small images stay sharp when shown."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def digit_image(pixels: np.ndarray, scale: int = 6) -> np.ndarray:
    """A digit (784,) in [0, 1] as a uint8 gray image (28 * scale, 28 * scale)."""
    values = np.clip(np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE), 0.0, 1.0)
    return enlarge(np.round(values * 255).astype(np.uint8), scale)


def weight_image(weights: np.ndarray, scale: int = 6) -> np.ndarray:
    """Signed weights (784,) as uint8 gray: zero is mid-gray, +-max|w| white and black."""
    values = np.asarray(weights, dtype=np.float32).reshape(SIDE, SIDE)
    limit = float(np.max(np.abs(values))) or 1.0
    gray = 0.5 + 0.5 * values / limit
    return enlarge(np.round(gray * 255).astype(np.uint8), scale)


def difference_image(difference: np.ndarray, scale: int = 6, limit: float = 1.0) -> np.ndarray:
    """Signed differences (784,) as uint8 RGB: black at zero, red where positive
    (ink the reconstruction adds) and blue where negative (ink it misses), full at limit."""
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
    """A uint8 gray or RGB image as a data:image/png;base64 URL, for Altair image marks."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def panels_image(pixels: np.ndarray, reconstruction: np.ndarray, scale: int = 8, gap: int = 4) -> np.ndarray:
    """Input, reconstruction and signed error side by side, as one uint8 RGB image."""
    as_rgb = lambda gray: np.repeat(gray[..., None], 3, axis=2)  # noqa: E731
    tiles = np.stack(
        [
            as_rgb(digit_image(pixels, scale)),
            as_rgb(digit_image(reconstruction, scale)),
            difference_image(np.asarray(reconstruction) - np.asarray(pixels), scale),
        ]
    )
    return mosaic(tiles, columns=3, gap=gap)


# Charts


def activation_chart(activations: np.ndarray, rho: float, highlighted=()) -> alt.Chart:
    """Bars of the hidden activations a_j of one input, with the target rho as a rule."""
    highlighted = {int(unit) for unit in highlighted}
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
            x=alt.X("unit:Q", title="hidden unit j", scale=alt.Scale(domain=[-0.5, len(activations) - 0.5])),
            y=alt.Y("activation:Q", title="activation a_j", scale=alt.Scale(domain=[0, 1])),
            color=alt.condition(alt.datum["most active"], alt.value(INPUT_COLOUR), alt.value(BAR_COLOUR)),
            tooltip=["unit", alt.Tooltip("activation:Q", format=".3f")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"rho": [rho], "label": [f"target ρ = {rho:g}"]}))
        .mark_rule(color=RHO_COLOUR, strokeDash=[6, 3])
        .encode(y="rho:Q", tooltip=["label"])
    )
    label = rule.mark_text(color=RHO_COLOUR, align="left", dy=-6).encode(x=alt.value(4), text="label")
    return alt.layer(bars, rule, label).properties(height=220)


def histogram_chart(
    counts: np.ndarray, edges: np.ndarray, x_title: str, markers: dict | None = None, y_title: str = "digits"
) -> alt.Chart:
    """Bars of a histogram given as counts (bins,) and edges (bins + 1,).

    `markers` maps a label to an x value; each one becomes a vertical rule with its label.
    """
    table = pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts})
    bars = (
        alt.Chart(table)
        .mark_bar(color=BAR_COLOUR)
        .encode(
            x=alt.X("start:Q", title=x_title, bin="binned"),
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
    """Histogram of the mean activations rho_hat_j across units, with the target rho."""
    upper = max(float(np.max(rho_hat)), rho) * 1.05 or 1.0
    counts, edges = np.histogram(rho_hat, bins=bins, range=(0.0, min(1.0, upper)))
    return histogram_chart(counts, edges, "mean activation ρ̂_j", {f"target ρ = {rho:g}": rho}, "hidden units")


def error_chart(errors: np.ndarray, error: float, bins: int = 40) -> alt.Chart:
    """Histogram of reconstruction errors on real digits, with this input's error marked."""
    upper = max(float(np.max(errors)), error) * 1.05
    counts, edges = np.histogram(errors, bins=bins, range=(0.0, upper))
    return histogram_chart(counts, edges, "per-pixel mean squared error", {"this input": error})


def mosaic_chart(W1: np.ndarray, rho_hat: np.ndarray, selected: int | None, columns: int = 20, tile: int = 28) -> alt.Chart:
    """The W1 tiles of all hidden units as a clickable grid of image marks.

    Clicking a tile selects the point selection named "unit_pick" with field "unit".
    """
    n_hidden = len(W1)
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
        x=alt.X("column:O", axis=None),
        y=alt.Y("row:O", axis=None),
    )
    images = (
        alt.Chart(table)
        .mark_image(width=tile, height=tile)
        .encode(url="url:N", tooltip=["unit", alt.Tooltip("rho_hat:Q", title="ρ̂", format=".3f")], **position)
        .add_params(pick)
    )
    layers = [images]
    if selected is not None:
        frame = alt.Chart(table[table["unit"] == selected]).mark_rect(
            fill=None, stroke=INPUT_COLOUR, strokeWidth=3, width=tile + 2, height=tile + 2
        )
        layers.append(frame.encode(**position))
    rows = -(-n_hidden // columns)
    return alt.layer(*layers).properties(width=columns * (tile + 2), height=rows * (tile + 2))
