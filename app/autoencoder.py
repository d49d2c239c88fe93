"""The Autoencoder tab: W1 mosaic, originals against regenerated digits, cost terms."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.context import AppContext
from sae_core.config import ORIGINAL_SPARSITY_TARGETS, N_PIXELS
from sae_core.data import spread_sample
from sae_core.images import feature_mosaic, reconstruction_sheet
from sae_core.model import reconstruct

N_SHOWN_DIGITS = 50


@st.cache_data(max_entries=32, show_spinner=False)
def _mosaic(W1: np.ndarray) -> np.ndarray:
    return feature_mosaic(W1)


def render_metrics(ctx: AppContext) -> None:
    """Show the three cost terms, the mean activation against rho and the pixel error."""
    metrics = ctx.metrics
    rho = ctx.config.sparsity_target
    per_pixel_mse = 2.0 * metrics["reconstruction"] / N_PIXELS
    columns = st.columns(5)
    columns[0].metric("reconstruction", f"{metrics['reconstruction']:.3f}",
                      help="(1/2m) Σ‖x − x̂‖², the first term of the cost")
    columns[1].metric("weight_decay", f"{metrics['weight_decay']:.3f}",
                      help="(λ/2)(‖W1‖² + ‖W2‖²)")
    columns[2].metric("sparsity", f"{metrics['sparsity']:.3f}",
                      help="β Σⱼ KL(ρ ‖ ρ̂ⱼ)")
    columns[3].metric("mean activation ρ̂", f"{metrics['mean_activation']:.4f}",
                      delta=f"{metrics['mean_activation'] - rho:+.4f} vs ρ = {rho:g}",
                      delta_color="off",
                      help="mean of ρ̂ⱼ over the hidden units; the sparsity term pulls it towards ρ")
    columns[4].metric("pixel MSE", f"{per_pixel_mse:.4f}",
                      help="mean squared error per pixel on the training digits")


def render_reconstructions(ctx: AppContext) -> None:
    """Digits not used for training when there are any, next to their reconstructions."""
    rows = ctx.heldout_indices if len(ctx.heldout_indices) else ctx.train_indices
    originals = ctx.dataset.images[spread_sample(ctx.dataset.labels, N_SHOWN_DIGITS, rows)]
    sheet = reconstruction_sheet(originals, reconstruct(ctx.weights, originals), n_columns=5, scale=2)
    source = "held-out digits" if len(ctx.heldout_indices) else "training digits"
    st.image(sheet, caption=f"{len(originals)} {source}: original (left) and regenerated (right)")


def render_feature_mosaic(W1: np.ndarray, caption: str) -> None:
    st.image(_mosaic(W1), caption=caption, width="stretch")


def render_sparsity_comparison(models_by_rho: dict[float, object], ctx: AppContext) -> list[float]:
    """The four rho values of the original experiment side by side; returns missing ones."""
    st.subheader("Four sparsity targets")
    st.caption("First 100 rows of W1 for each sparsity target, with the other settings "
               "as in the sidebar")
    missing = []
    for column, rho in zip(st.columns(len(ORIGINAL_SPARSITY_TARGETS)), ORIGINAL_SPARSITY_TARGETS):
        model = models_by_rho.get(rho)
        with column:
            if model is None:
                missing.append(rho)
                st.markdown(f"**ρ = {rho:g}**: not trained yet")
                continue
            st.image(_mosaic(model.weights.W1), width="stretch",
                     caption=f"ρ = {rho:g}, achieved ρ̂ = {model.metrics['mean_activation']:.3f}")
    return missing
