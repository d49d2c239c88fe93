"""The Semi-supervised tab: settings, a background comparison run with a progress bar,
and its charts, which stay on screen and on disk once computed.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from app.context import AppContext
from sae_core import semisup, semisup_charts
from sae_core.semisup import ComparisonJob, ComparisonResult, ComparisonSettings, ResultStore

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 1.0
SWEEP_CHOICES = (10, 20, 50, 100, 200)
PRETRAIN_LABELS = {
    "labelled": "the labelled digits only (as the original)",
    "all": "all digits, labelled and unlabelled",
}


def results_root() -> Path:
    """Return the folder of stored comparisons; SAE_EXPLORER_RESULTS overrides it (tests use a temp dir)."""
    return Path(os.environ.get("SAE_EXPLORER_RESULTS", REPO / "results"))


def models_root() -> Path:
    """Return the app's model store folder, reused for autoencoders pretrained on all digits."""
    return Path(os.environ.get("SAE_EXPLORER_MODELS", REPO / "models"))


class _JobRegistry:
    """The comparisons running in this app process, by result key, shared by sessions."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, ComparisonJob] = {}

    def get(self, key: str) -> ComparisonJob | None:
        with self._lock:
            return self._jobs.get(key)

    def start(self, settings: ComparisonSettings, ctx: AppContext) -> ComparisonJob:
        key = semisup.result_key(settings, ctx.dataset.fingerprint)
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.snapshot().state != "running":
                job = ComparisonJob(settings, ctx.dataset, ResultStore(results_root()),
                                    pretrainer=_pretrainer(settings))
                self._jobs[key] = job
            return job

    def forget(self, key: str) -> None:
        with self._lock:
            self._jobs.pop(key, None)


@st.cache_resource
def _registry() -> _JobRegistry:
    return _JobRegistry()


@st.cache_resource(max_entries=8, show_spinner=False)
def _load_stored(path: str, modified: float) -> ComparisonResult | None:
    """Load a stored result, read again only when its summary file changes."""
    try:
        return semisup.load_result(path)
    except semisup.ResultError:
        return None


def _stored_result(settings: ComparisonSettings, ctx: AppContext) -> ComparisonResult | None:
    path = ResultStore(results_root()).path_for(settings, ctx.dataset)
    summary = path / semisup.SUMMARY_FILE
    if not summary.is_file():
        return None
    return _load_stored(str(path), summary.stat().st_mtime)


def _pretrainer(settings: ComparisonSettings):
    """Return the pretrainer for these settings, or None for the default.

    Autoencoders pretrained on all digits go through the app's model store, so the
    sidebar's model is reused when its settings match. Labelled subsets are not stored.
    """
    if settings.pretrain_on != "all":
        return None
    from sae_core.store import ModelStore

    store = ModelStore(models_root(), read_only_roots=[REPO / "models"])

    def pretrain(config, data, progress):
        return store.get_or_train(config, data, progress=progress).weights

    return pretrain


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# Layout parts


def _settings_widgets(ctx: AppContext) -> ComparisonSettings | None:
    """Lay out the settings widgets; return the settings, or None after an error message."""
    counts = np.bincount(ctx.dataset.labels, minlength=semisup.N_CLASSES)
    max_budget = int(counts[counts > 0].min()) - 1
    left, middle, right = st.columns(3)
    labels_per_class = left.number_input(
        "Labels per class", 1, max(1, max_budget), min(100, max_budget), key="experiment_labels",
        help="labelled digits drawn per class for each seed; every other digit is the "
             "unlabelled remainder where accuracy is measured")
    n_seeds = middle.number_input(
        "Seeds", 1, 50, 5, key="experiment_seeds",
        help="repetitions; each seed draws its own labelled set and initialisation")
    pretrain_on = right.radio(
        "Pretrain the autoencoder on", list(PRETRAIN_LABELS), key="experiment_pretrain",
        format_func=PRETRAIN_LABELS.get)

    with st.expander("Label-budget sweep and classifier training"):
        sweep = st.multiselect(
            "Also run these labels per class (sweep)", [k for k in SWEEP_CHOICES if k <= max_budget],
            default=[], key="experiment_sweep",
            help="one line per arm against labels per class; every budget costs a full run")
        columns = st.columns(2)
        classifier_iterations = columns[0].number_input(
            "Classifier L-BFGS iterations (max)", 1, 2000, 400, key="experiment_classifier_iterations")
        classifier_lambda = columns[1].select_slider(
            "Softmax weight decay λ_c", [0.0, 1e-5, 1e-4, 1e-3, 1e-2], value=1e-4,
            key="experiment_classifier_lambda", format_func=lambda value: f"{value:g}")

    try:
        settings = ComparisonSettings.from_autoencoder(
            ctx.config, labels_per_class=int(labels_per_class), n_seeds=int(n_seeds),
            pretrain_on=pretrain_on, sweep=tuple(sweep),
            classifier_iterations=int(classifier_iterations),
            classifier_weight_decay=float(classifier_lambda))
        semisup.check_data(settings, ctx.dataset.labels)
    except ValueError as error:
        st.error(f"Invalid setting: {error}")
        return None
    low, high = semisup.estimate_range_seconds(settings, len(ctx.dataset))
    st.caption(
        f"Autoencoder: ρ = {settings.sparsity_target:g}; β = {settings.sparsity_weight:g}, "
        f"λ = {settings.weight_decay:g}, {settings.n_hidden} hidden units and "
        f"{settings.max_iterations} iterations from the sidebar. Estimated run time: about "
        f"{_duration(low)} on an idle 2-core CPU, up to {_duration(high)} on a busy one "
        f"(for example while the Autoencoder tab trains).")
    return settings


def _progress_panel(key: str) -> None:
    """Poll the running job; a full rerun shows the charts once it ends."""

    @st.fragment(run_every=POLL_SECONDS)
    def poll() -> None:
        job = _registry().get(key)
        if job is None:
            return
        snapshot = job.snapshot()
        if snapshot.state != "running":
            st.rerun(scope="app")
        progress = snapshot.progress
        if progress is None:
            st.progress(0.0, text="Starting…")
        else:
            st.progress(progress.fraction, text=progress.line())

    poll()


def _summary_tables(result: ComparisonResult) -> None:
    budget = result.settings.labels_per_class

    def interval(entry):
        if entry["ci_low"] is None:
            return "one seed: no interval"
        return f"[{entry['ci_low']:.2%}, {entry['ci_high']:.2%}]"

    arms = [{"arm": e["arm"], "mean accuracy": f"{e['mean']:.2%}", "95% CI": interval(e),
             "seeds": e["n_seeds"], "digits evaluated": e["n_eval"]}
            for e in result.summary["arms"] if e["labels_per_class"] == budget]
    differences = [{"paired difference": f"{e['minuend']} − {e['subtrahend']}",
                    "mean": f"{e['mean']:+.2%}", "95% CI": interval(e),
                    "higher in": f"{e['wins']} of {e['n_seeds']} seeds"}
                   for e in result.summary["differences"] if e["labels_per_class"] == budget]
    # Full width, one above the other: side by side, the last columns were cut off.
    st.dataframe(arms, hide_index=True, width="stretch", key="experiment_arms_table")
    st.dataframe(differences, hide_index=True, width="stretch",
                 key="experiment_differences_table")


def _render_result(result: ComparisonResult) -> None:
    charts = semisup_charts.result_charts(result)
    _summary_tables(result)
    st.altair_chart(charts["comparison"], width="content", key="experiment_comparison_chart")
    if "sweep" in charts:
        st.altair_chart(charts["sweep"], width="content", key="experiment_sweep_chart")
    per_class, confusion, curves = st.tabs(["Per digit", "Confusion matrices", "Training curves"])
    with per_class:
        st.altair_chart(charts["per_class"], width="content", key="experiment_per_class_chart")
    with confusion:
        st.altair_chart(charts["confusion"], width="content", key="experiment_confusion_chart")
    with curves:
        st.altair_chart(charts["curves"], width="content", key="experiment_curves_chart")

    left, right = st.columns(2)
    left.download_button(
        "Download results.csv", semisup.results_csv(result.rows),
        file_name=f"semisup-{result.key}.csv", mime="text/csv", key="experiment_download_csv")
    right.download_button(
        "Download summary.json", json.dumps(semisup.summary_document(result), indent=2),
        file_name=f"semisup-{result.key}.json", mime="application/json",
        key="experiment_download_json")
    folder = results_root() / f"semisup-{result.key}"
    st.caption(f"Computed in {result.seconds / 60:.1f} min on {result.data['provenance']}; "
               f"stored in {folder}.")


def render_experiment(ctx: AppContext) -> None:
    """Lay out the tab: settings, run and cancel buttons, progress, then the results."""
    st.subheader("Semi-supervised: pretrained encoder against random weights")
    st.caption(
        "For each seed: draw the labelled digits, pretrain a sparse autoencoder, then train "
        "(1) a softmax on its frozen features, (2) the whole network fine-tuned from (1), "
        "(3) the same network from random weights, with the same L-BFGS budget as (2). "
        "Accuracy is measured on every digit that was not labelled.")
    settings = _settings_widgets(ctx)
    if settings is None:
        return
    key = semisup.result_key(settings, ctx.dataset.fingerprint)
    registry = _registry()
    job = registry.get(key)
    snapshot = job.snapshot() if job is not None else None
    stored = _stored_result(settings, ctx)

    # A finished job: remember its result for this session and drop it from the registry.
    if snapshot is not None and snapshot.state != "running":
        registry.forget(key)
        if snapshot.state == "failed":
            st.error(f"The comparison failed: {snapshot.error}")
        elif snapshot.state == "cancelled":
            st.info("The comparison was cancelled.")
        elif snapshot.result is not None:
            stored = stored or snapshot.result
        job = snapshot = None

    # Buttons act in callbacks, before this rerun lays them out, so "Run comparison" is
    # already disabled in the run that starts the job.
    running = snapshot is not None
    left, right = st.columns([1, 3])
    left.button("Run comparison", key="experiment_run", type="primary",
                disabled=running or stored is not None, on_click=registry.start, args=(settings, ctx),
                help="results are stored by their settings; a stored result is shown at once")
    if running:
        right.button("Cancel", key="experiment_cancel", on_click=job.cancel)
        _progress_panel(key)
    elif stored is not None:
        right.caption("These settings have a stored result, shown below; change a setting "
                      "to run again.")

    if stored is not None:
        st.session_state["experiment_shown"] = stored
    shown: ComparisonResult | None = st.session_state.get("experiment_shown")
    if shown is None:
        if not running:
            st.info("Press Run comparison to start; the other tabs stay usable while it runs.")
        return
    if shown.key != key:
        st.caption(f"Showing the last results, for other settings: {shown.settings.describe()}.")
    _render_result(shown)
