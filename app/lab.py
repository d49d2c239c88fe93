"""The Digit lab tab: draw, pick or upload a digit and see what the autoencoder makes of it.

All three inputs end in the same view: the 28x28 input as the model sees it, its
reconstruction, the error, the hidden code and the filters of the most active units.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.context import AppContext
from sae_core import features, lab_charts
from sae_core.preprocess import MAX_FILE_BYTES, UPLOAD_TYPES, ImageInputError, NoInkError, preprocess_digit

ROUTES = ("Draw", "Pick from the data", "Upload")
CANVAS_SIDE = 280  # canvas pixels; 10 per MNIST pixel
BRUSH_WIDTH = 20  # about 2 MNIST pixels after the digit is fitted into 20x20
N_TOP_UNITS = 10
IMAGE_WIDTH = 196  # screen pixels for a 28x28 digit, 7 per pixel
TILE_WIDTH = 84
ANY_CLASS = "any"
DRAW_HINT = "Draw a digit in the box. It is read when you release the mouse."


# Cached computations


def reference_rows(ctx: AppContext) -> tuple[np.ndarray, str]:
    """Rows not used for training when there are any, else all rows, and their name."""
    if len(ctx.heldout_indices):
        return ctx.heldout_indices, "held-out digits"
    return np.arange(len(ctx.dataset)), "training digits"


@st.cache_data(max_entries=8, show_spinner="Measuring the error on real digits…")
def _error_reference(weights_key: str, data_key: str, _ctx: AppContext) -> features.ErrorReference:
    rows, name = reference_rows(_ctx)
    return features.error_reference(_ctx.weights, _ctx.dataset.images[rows], f"{len(rows):,} {name}")


def error_reference(ctx: AppContext) -> features.ErrorReference:
    rows, _name = reference_rows(ctx)
    data_key = f"{ctx.dataset.fingerprint}:{len(rows)}"
    return _error_reference(features.weights_digest(ctx.weights), data_key, ctx)


# Inputs


def _clear_canvas() -> None:
    # A new key mounts a fresh, empty canvas without reloading the page.
    st.session_state["lab_canvas_version"] = st.session_state.get("lab_canvas_version", 0) + 1


def drawn_input():
    """The canvas; returns its RGBA array, or None before anything is drawn."""
    from streamlit_drawable_canvas import st_canvas  # needs a running Streamlit script

    version = st.session_state.setdefault("lab_canvas_version", 0)
    st.caption("Draw one digit with the mouse. The toolbar above the box has undo and redo.")
    result = st_canvas(
        stroke_width=BRUSH_WIDTH,
        stroke_color="#000000",
        background_color="#FFFFFF",
        width=CANVAS_SIDE,
        height=CANVAS_SIDE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"lab_canvas_{version}",
    )
    st.button("Clear canvas", key="lab_clear", on_click=_clear_canvas)
    return result.image_data


def _pick_digit(pool: np.ndarray, labels: np.ndarray) -> None:
    """Store a random row of the chosen class, from `pool` when it has one, else from all rows."""
    chosen_class = st.session_state.get("lab_pick_class", ANY_CLASS)
    candidates = pool
    if chosen_class != ANY_CLASS:
        candidates = pool[labels[pool] == int(chosen_class)]
        if len(candidates) == 0:
            candidates = np.flatnonzero(labels == int(chosen_class))
    if len(candidates):
        st.session_state["lab_pick_row"] = int(np.random.default_rng().choice(candidates))


def picked_input(ctx: AppContext) -> tuple[np.ndarray | None, str]:
    """A class filter and a button; returns the picked digit (784,) and its caption."""
    pool, pool_name = reference_rows(ctx)
    labels = ctx.dataset.labels
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    left.selectbox("Class", [ANY_CLASS, *map(str, range(10))], key="lab_pick_class",
                   on_change=_pick_digit, args=(pool, labels))
    right.button("Random digit", key="lab_pick_random", on_click=_pick_digit, args=(pool, labels))

    # Pick again when there is no pick yet or the data set changed under it.
    chosen_class = st.session_state.get("lab_pick_class", ANY_CLASS)
    row = st.session_state.get("lab_pick_row")
    stale = row is None or not 0 <= row < len(ctx.dataset)
    if stale or (chosen_class != ANY_CLASS and labels[row] != int(chosen_class)):
        _pick_digit(pool, labels)
        row = st.session_state.get("lab_pick_row")
    if row is None:
        return None, ""

    if len(ctx.heldout_indices) and row not in set(ctx.heldout_indices.tolist()):
        where = "a training digit, because no held-out digit has this label"
    else:
        where = f"one of the {pool_name}"
    return ctx.dataset.images[row], f"Row {row} of the data, label {labels[row]}, {where}"


def uploaded_input():
    """A file uploader; returns the file's bytes (kept in memory only) or None."""
    uploaded = st.file_uploader(
        "Digit image (PNG, JPEG, GIF, BMP or WebP)",
        type=list(UPLOAD_TYPES),
        key="lab_upload",
        max_upload_size=MAX_FILE_BYTES // 2**20,
        help="Any size and background: the image is inverted, cropped, fitted into 20x20 "
             "and centred like an MNIST digit.",
    )
    return None if uploaded is None else uploaded.getvalue()


# The analysis of one input


def render_analysis(ctx: AppContext, pixels: np.ndarray, caption: str) -> None:
    """Input, reconstruction, error, the hidden code and the most active units' filters."""
    analysis = features.analyse_digit(ctx.weights, pixels)
    reference = error_reference(ctx)
    rho = ctx.config.sparsity_target

    st.subheader("Input and reconstruction")
    if caption:
        st.caption(caption)
    columns = st.columns(3)
    columns[0].image(lab_charts.digit_image(analysis.pixels, scale=7), width=IMAGE_WIDTH,
                     caption="input x as the model sees it (28×28)")
    columns[1].image(lab_charts.digit_image(analysis.reconstruction, scale=7), width=IMAGE_WIDTH,
                     caption="reconstruction x̂")
    columns[2].image(lab_charts.difference_image(analysis.difference, scale=7), width=IMAGE_WIDTH,
                     caption="error x̂ − x: red where ink is added, blue where it is missing")

    columns = st.columns([1, 3])
    columns[0].metric("per-pixel MSE", f"{analysis.mse:.4f}",
                      help="mean over the 784 pixels of (x − x̂)²")
    sentence = features.describe_error(analysis.mse, reference)
    with columns[1]:
        (st.warning if reference.is_unusual(analysis.mse) else st.success)(sentence)
    st.altair_chart(lab_charts.error_chart(reference.errors, analysis.mse), key="lab_error_chart")

    st.subheader("Hidden code")
    top_units = features.most_active_units(analysis.activations, N_TOP_UNITS)
    n_active = int(np.count_nonzero(analysis.activations > features.ACTIVE_LEVEL))
    st.caption(
        f"{n_active} of {ctx.weights.n_hidden} units are above {features.ACTIVE_LEVEL:g}; "
        f"the mean activation is {analysis.activations.mean():.3f} against the target ρ = {rho:g}, "
        "which the sparsity penalty asks for on average over the training digits."
    )
    st.altair_chart(lab_charts.activation_chart(analysis.activations, rho, top_units),
                    key="lab_activation_chart")

    st.markdown(f"**W1 filters of the {len(top_units)} most active units** (unit j: activation a_j)")
    st.image(
        [lab_charts.weight_image(ctx.weights.W1[unit], scale=3) for unit in top_units],
        caption=[f"{unit}: {analysis.activations[unit]:.2f}" for unit in top_units],
        width=TILE_WIDTH,
    )


def render_lab(ctx: AppContext) -> None:
    """Lay out the Digit lab tab: the input route, the input, and its analysis."""
    route = st.radio("Input", ROUTES, key="lab_route", horizontal=True)

    if route == "Pick from the data":
        pixels, caption = picked_input(ctx)
        if pixels is None:
            st.info("The data has no digit of this class; choose another class.")
            return
        render_analysis(ctx, pixels, caption)  # already an MNIST digit; no resampling
        return

    if route == "Draw":
        source = drawn_input()
        if source is None:
            st.info(DRAW_HINT)
            return
        caption = f"Your drawing, {source.shape[1]} × {source.shape[0]} canvas pixels"
        blank_hint = DRAW_HINT
    else:
        source = uploaded_input()
        if source is None:
            st.info("Upload an image of a digit to see how the model reads it.")
            return
        caption = f"Uploaded image, {len(source):,} bytes"
        blank_hint = "The image is blank; upload one that shows a digit."

    try:
        pixels = preprocess_digit(source)
    except NoInkError:
        st.info(blank_hint)
        return
    except ImageInputError as error:
        st.error(str(error))
        return
    render_analysis(ctx, pixels, caption)
