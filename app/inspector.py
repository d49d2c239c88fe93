"""The Feature inspector tab: one hidden unit in four views, and statistics across units."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.context import AppContext
from sae_core import features, lab_charts
from sae_core.model import encode

N_TOP_DIGITS = 9
IMAGE_WIDTH = 224  # screen pixels for a 28x28 tile, 8 per pixel
TILE_WIDTH = 84


@st.cache_resource(max_entries=4, show_spinner="Encoding every digit…")
def _activations(weights_key: str, data_key: str, _ctx: AppContext) -> np.ndarray:
    """Hidden activations of every digit of the data set, (n, n_hidden); read only."""
    activations = encode(_ctx.weights, _ctx.dataset.images)
    activations.setflags(write=False)
    return activations


def dataset_activations(ctx: AppContext) -> np.ndarray:
    return _activations(features.weights_digest(ctx.weights), ctx.dataset.fingerprint, ctx)


def _mosaic_key() -> str:
    return f"inspector_mosaic_{st.session_state.get('inspector_mosaic_version', 0)}"


def _on_mosaic_click() -> None:
    points = st.session_state[_mosaic_key()].selection.get("unit_pick", [])
    if points:
        st.session_state["inspector_unit"] = int(points[0]["unit"])


def _on_unit_typed() -> None:
    # The mosaic keeps its last click; a fresh mosaic lets that tile be clicked again.
    st.session_state["inspector_mosaic_version"] = st.session_state.get("inspector_mosaic_version", 0) + 1


def choose_unit(ctx: AppContext, statistics: features.UnitStatistics) -> int:
    """The W1 mosaic (click a tile) and a number input, kept in step; returns the unit."""
    n_hidden = ctx.weights.n_hidden
    if not 0 <= st.session_state.get("inspector_unit", 0) < n_hidden:
        st.session_state["inspector_unit"] = 0
    unit = st.number_input("Hidden unit j", min_value=0, max_value=n_hidden - 1, step=1,
                           key="inspector_unit", on_change=_on_unit_typed,
                           help="or click a tile of the mosaic")
    with st.expander("W1 mosaic: click a tile to inspect that unit", expanded=True):
        st.altair_chart(
            lab_charts.mosaic_chart(ctx.weights.W1, statistics.rho_hat, selected=int(unit)),
            key=_mosaic_key(), on_select=_on_mosaic_click, selection_mode="unit_pick",
        )
    return int(unit)


def render_unit(ctx: AppContext, unit: int, activations: np.ndarray, statistics: features.UnitStatistics) -> None:
    """W1 row, W2 column, activation histogram and the digits that excite the unit most."""
    rho = ctx.config.sparsity_target
    st.subheader(f"Hidden unit {unit}")
    st.caption(
        f"ρ̂ = {statistics.rho_hat[unit]:.4f} on the training digits (target ρ = {rho:g}); "
        f"active (a > {features.ACTIVE_LEVEL:g}) on {100 * statistics.active_fraction[unit]:.1f}% of them."
    )

    columns = st.columns(2)
    columns[0].image(lab_charts.weight_image(ctx.weights.W1[unit], scale=8),
                     width=IMAGE_WIDTH,
                     caption=f"W1 row {unit}: the input filter (mid-gray 0, white positive, black negative)")
    columns[1].image(lab_charts.weight_image(ctx.weights.W2[:, unit], scale=8), width=IMAGE_WIDTH,
                     caption=f"W2 column {unit}: what the unit adds to the output when active")

    columns = st.columns(2)
    with columns[0]:
        st.markdown(f"**Activation a_{unit} over all {len(activations):,} digits**")
        counts, edges = features.activation_histogram(activations[:, unit])
        markers = {f"ρ = {rho:g}": rho, f"ρ̂ = {statistics.rho_hat[unit]:.3f}": statistics.rho_hat[unit]}
        st.altair_chart(lab_charts.histogram_chart(counts, edges, f"activation a_{unit}", markers),
                        key="inspector_unit_histogram")
    with columns[1]:
        st.markdown(f"**The {N_TOP_DIGITS} digits that activate unit {unit} most**")
        rows = features.top_activating(activations, unit, N_TOP_DIGITS)
        labels = ctx.dataset.labels
        for start in range(0, len(rows), 3):
            for column, row in zip(st.columns(3), rows[start : start + 3]):
                column.image(lab_charts.digit_image(ctx.dataset.images[row], scale=3), width=TILE_WIDTH,
                             caption=f"label {labels[row]}, a = {activations[row, unit]:.2f}")


def render_units_overview(ctx: AppContext, statistics: features.UnitStatistics) -> None:
    """Histogram of rho_hat across units against rho, and counts of dead and saturated units."""
    rho = ctx.config.sparsity_target
    st.subheader("All hidden units")
    columns = st.columns(3)
    columns[0].metric("mean ρ̂", f"{statistics.rho_hat.mean():.4f}", help=f"target ρ = {rho:g}")
    columns[1].metric("dead units", statistics.n_dead,
                      help=f"active (a > {features.ACTIVE_LEVEL:g}) on fewer than "
                           f"{100 * features.DEAD_FRACTION:g}% of the training digits")
    columns[2].metric("saturated units", statistics.n_saturated,
                      help=f"active (a > {features.ACTIVE_LEVEL:g}) on more than "
                           f"{100 * features.SATURATED_FRACTION:g}% of the training digits")
    st.altair_chart(lab_charts.rho_hat_chart(statistics.rho_hat, rho), key="inspector_rho_hat_chart")
    st.caption(
        "ρ̂_j is unit j's mean activation over the training digits; the sparsity penalty "
        "β Σ KL(ρ ‖ ρ̂_j) pulls every ρ̂_j towards ρ."
    )


def render_inspector(ctx: AppContext) -> None:
    """Lay out the Feature inspector tab: the unit chooser, the unit's views, all units."""
    activations = dataset_activations(ctx)
    statistics = features.unit_statistics(activations[ctx.train_indices])
    unit = choose_unit(ctx, statistics)
    render_unit(ctx, unit, activations, statistics)
    render_units_overview(ctx, statistics)
