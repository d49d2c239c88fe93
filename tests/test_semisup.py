"""The semi-supervised comparison: draws, intervals, the whole pipeline on a tiny
configuration, stored results, the `compare` command and the app tab."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from PIL import Image

from sae_core import semisup
from sae_core.cli import main
from sae_core.semisup import ARMS, CSV_COLUMNS, ComparisonSettings

TINY = dict(labels_per_class=5, n_seeds=2, sweep=(2,), n_hidden=16, max_iterations=30,
            classifier_iterations=40)
TINY_CLI = ["--seeds", "2", "--labels-per-class", "3", "--hidden", "8", "--iterations", "10",
            "--classifier-iterations", "10"]


@pytest.fixture(scope="module")
def tiny_run(mnist):
    """A tiny comparison on the embedded digits, with the progress reports and the
    pretrained weights it was given, each with a copy taken before the classifiers ran."""
    reports, given = [], []

    def pretrainer(config, data, progress):
        weights = semisup.train_autoencoder(config, data, progress)
        given.append((weights, {name: array.copy() for name, array in weights.as_dict().items()}))
        return weights

    settings = ComparisonSettings(**TINY)
    result = semisup.run_comparison(settings, mnist, progress=reports.append, pretrainer=pretrainer)
    return result, reports, given


# Draws, settings and intervals


def test_stratified_draw_counts(mnist):
    for per_class in (1, 10, 100):
        rows = semisup.stratified_draw(mnist.labels, per_class, seed=3)
        assert len(rows) == 10 * per_class
        assert len(np.unique(rows)) == len(rows)
        counts = np.bincount(mnist.labels[rows], minlength=10)
        assert np.all(counts == per_class), counts


def test_stratified_draw_depends_on_seed(mnist):
    first = semisup.stratified_draw(mnist.labels, 100, seed=0)
    again = semisup.stratified_draw(mnist.labels, 100, seed=0)
    other = semisup.stratified_draw(mnist.labels, 100, seed=1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_stratified_draw_nested_budgets(mnist):
    small = semisup.stratified_draw(mnist.labels, 10, seed=4)
    large = semisup.stratified_draw(mnist.labels, 50, seed=4)
    assert set(small) <= set(large)


def test_check_data_rejects_large_budget(mnist):
    settings = ComparisonSettings(labels_per_class=500)
    with pytest.raises(ValueError, match="500 labels per class is too many.*choose at most 499"):
        semisup.check_data(settings, mnist.labels)
    semisup.check_data(ComparisonSettings(labels_per_class=499), mnist.labels)
    with pytest.raises(ValueError, match="choose at most 499"):
        semisup.check_data(ComparisonSettings(sweep=(10, 600)), mnist.labels)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n_seeds": 0}, "number of seeds is 0"),
        ({"labels_per_class": 0}, "labels per class is 0"),
        ({"pretrain_on": "unlabelled"}, "choose 'labelled' or 'all'"),
        ({"sweep": (10, 0)}, "every sweep budget is 0"),
        ({"classifier_weight_decay": -1.0}, "classifier weight decay is -1.0"),
        ({"sparsity_target": 1.5}, "rho"),
        ({"n_hidden": 0}, "n_hidden is 0"),
    ],
)
def test_settings_reject_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        ComparisonSettings(**values)


def test_settings_budgets_and_round_trip():
    settings = ComparisonSettings(labels_per_class=100, sweep=(200, 10, 100, 20))
    assert settings.sweep == (10, 20, 100, 200)
    assert settings.budgets == (10, 20, 100, 200)
    assert ComparisonSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    config = settings.autoencoder_config(1000, seed=3)
    assert config.sparsity_target == 0.1
    assert config.n_samples == 1000
    assert config.seed == 3


def test_t_interval_hand_computation():
    values = [0.90, 0.92, 0.91, 0.95]
    mean = sum(values) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    half_width = 3.182446305284263 * std / 2  # t(0.975, 3) from a table
    interval = semisup.t_interval(values)
    assert interval["mean"] == pytest.approx(mean)
    assert interval["ci_low"] == pytest.approx(mean - half_width)
    assert interval["ci_high"] == pytest.approx(mean + half_width)
    single = semisup.t_interval([0.9])
    assert single["mean"] == 0.9
    assert single["ci_low"] is None
    assert single["ci_high"] is None


# Keras classifiers


def test_run_arms_leaves_weights_unchanged(mnist, small_model):
    weights = small_model.weights
    before = {name: array.copy() for name, array in weights.as_dict().items()}
    settings = ComparisonSettings(n_hidden=weights.n_hidden, classifier_iterations=30)
    labelled = semisup.stratified_draw(mnist.labels, 20, seed=0)
    rest = np.setdiff1d(np.arange(len(mnist)), labelled)
    runs = semisup.run_arms(weights, (mnist.images[labelled], mnist.labels[labelled]),
                            (mnist.images[rest], mnist.labels[rest]), settings, seed=0)
    assert [run.arm for run in runs] == list(ARMS)
    for name, array in weights.as_dict().items():
        assert array.tobytes() == before[name].tobytes(), name
    for run in runs:
        assert run.n_eval == len(rest)
        assert run.confusion.sum() == len(rest)
        assert 0.3 < run.accuracy <= 1.0, run.arm
        assert run.fit.loss[-1] < run.fit.loss[0], run.arm


def test_classifier_objective_hand_computation(mnist):
    """Cross-entropy plus (lambda_c / 2) ||W_softmax||^2, recomputed in float64 NumPy."""
    x, y = mnist.images[:300], mnist.labels[:300]
    record = semisup.fit_lbfgs(semisup.build_classifier(16, 0.5, seed=1), x, y, max_iterations=1)

    W1, b1, W2, b2 = (w.astype(np.float64) for w in semisup.build_classifier(16, 0.5, seed=1).get_weights())
    hidden = 1 / (1 + np.exp(-(x.astype(np.float64) @ W1 + b1)))
    logits = hidden @ W2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    cross_entropy = -log_probabilities[np.arange(len(y)), y].mean()
    assert record.loss[0] == pytest.approx(cross_entropy + 0.25 * np.sum(W2**2), rel=1e-5)
    assert record.loss[1] < record.loss[0]


def test_softmax_arm_keeps_encoder_frozen(mnist, small_model):
    weights = small_model.weights
    model = semisup.build_classifier(weights.n_hidden, 1e-4, seed=0)
    model.get_layer("encoder").set_weights([weights.W1.T, weights.b1])
    model.get_layer("encoder").trainable = False
    semisup.fit_lbfgs(model, mnist.images[:200], mnist.labels[:200], max_iterations=10)
    kernel, bias = model.get_layer("encoder").get_weights()
    assert np.array_equal(kernel, weights.W1.T)
    assert np.array_equal(bias, weights.b1)


# The whole pipeline


@pytest.mark.slow
def test_pipeline_table_shape(tiny_run, mnist):
    result, _reports, _given = tiny_run
    settings = result.settings
    assert len(result.rows) == settings.n_seeds * len(ARMS) * len(settings.budgets)
    assert all(tuple(row) == CSV_COLUMNS for row in result.rows)
    keys = {(r["seed"], r["arm"], r["labels_per_class"]) for r in result.rows}
    assert len(keys) == len(result.rows)
    for row in result.rows:
        assert row["n_eval"] == len(mnist) - 10 * row["labels_per_class"]


@pytest.mark.slow
def test_pipeline_accuracies_above_chance(tiny_run):
    result, _reports, _given = tiny_run
    for row in result.rows:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["accuracy"] > 0.1, row
    for entry in result.summary["arms"]:
        assert entry["mean"] > 0.15, entry


@pytest.mark.slow
def test_pipeline_leaves_pretrained_weights_unchanged(tiny_run):
    result, _reports, given = tiny_run
    assert len(given) == result.settings.n_seeds * len(result.settings.budgets)
    for weights, copies in given:
        for name, array in weights.as_dict().items():
            assert array.tobytes() == copies[name].tobytes(), name


@pytest.mark.slow
def test_pipeline_summary_intervals(tiny_run):
    result, _reports, _given = tiny_run
    summary = result.summary
    assert len(summary["arms"]) == len(ARMS) * len(result.settings.budgets)
    assert len(summary["differences"]) == len(semisup.DIFFERENCES) * len(result.settings.budgets)
    for entry in summary["arms"] + summary["differences"]:
        assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"], entry
        assert entry["n_seeds"] == 2
    by_key = {(r["seed"], r["arm"], r["labels_per_class"]): r["accuracy"] for r in result.rows}
    for entry in summary["differences"]:
        budget = entry["labels_per_class"]
        deltas = [by_key[(s, entry["minuend"], budget)] - by_key[(s, entry["subtrahend"], budget)]
                  for s in result.settings.seeds]
        assert entry["mean"] == pytest.approx(np.mean(deltas))
        assert entry["wins"] + entry["losses"] + entry["ties"] == 2


@pytest.mark.slow
def test_pipeline_progress_reports(tiny_run):
    _result, reports, _given = tiny_run
    fractions = [report.fraction for report in reports]
    assert fractions[0] == 0.0
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert 0.9 < fractions[-1] <= 1.0
    assert any("pretraining" in report.message for report in reports)
    assert any("random_init" in report.message for report in reports)


@pytest.mark.slow
def test_pipeline_tables_for_charts(tiny_run):
    result, _reports, _given = tiny_run
    per_class = semisup.per_class_table(result)
    assert len(per_class) == len(ARMS) * 10
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in per_class)
    confusion = semisup.confusion_totals(result)
    n_eval = sum(r["n_eval"] for r in result.rows
                 if r["arm"] == "fine_tuned" and r["labels_per_class"] == result.settings.labels_per_class)
    assert confusion["fine_tuned"].sum() == n_eval
    losses, accuracies = semisup.curve_tables(result)
    assert {row["arm"] for row in losses} == set(ARMS)
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in accuracies)

    from sae_core.semisup_charts import result_charts

    charts = result_charts(result)
    assert set(charts) == {"comparison", "sweep", "per_class", "confusion", "curves"}
    assert "vconcat" in charts["comparison"].to_dict()  # stacked to fit the app's column
    for chart in charts.values():
        assert chart.to_dict()  # a valid Vega-Lite spec


def test_pretrain_on_all_digits(mnist):
    settings = ComparisonSettings(labels_per_class=3, n_seeds=1, pretrain_on="all", n_hidden=8,
                                  max_iterations=10, classifier_iterations=10)
    result = semisup.run_comparison(settings, mnist)
    assert [record["n_images"] for record in result.pretraining] == [len(mnist)]
    assert [row["arm"] for row in result.rows] == list(ARMS)
    assert result.summary["arms"][0]["ci_low"] is None  # one seed: no interval


# Stored results


@pytest.mark.slow
def test_result_round_trip(tiny_run, tmp_path, mnist):
    result, _reports, _given = tiny_run
    store = semisup.ResultStore(tmp_path)
    assert store.load(result.settings, mnist) is None
    path = store.save(result)
    assert sorted(p.name for p in path.iterdir()) == ["details.json", "results.csv", "summary.json"]
    loaded = store.load(result.settings, mnist)
    assert loaded.key == result.key
    assert loaded.rows == result.rows
    assert loaded.summary == json.loads(json.dumps(result.summary))
    assert loaded.runs[0]["confusion"] == result.runs[0]["confusion"]
    other = ComparisonSettings(**(TINY | {"n_seeds": 3}))
    assert store.load(other, mnist) is None


@pytest.mark.slow
def test_corrupt_result_is_ignored(tiny_run, tmp_path, mnist, caplog):
    result, _reports, _given = tiny_run
    store = semisup.ResultStore(tmp_path)
    path = store.save(result)
    (path / "details.json").write_text("{not json")
    assert store.load(result.settings, mnist) is None
    assert "corrupt" in caplog.text
    with pytest.raises(semisup.ResultError, match="details.json|corrupt"):
        semisup.load_result(path)


def test_estimate_range_brackets_estimate():
    settings = ComparisonSettings(labels_per_class=20, n_seeds=2)
    low, high = semisup.estimate_range_seconds(settings, 5000)
    assert low == pytest.approx(semisup.estimate_seconds(settings, 5000))
    assert high >= 3 * low


def test_curves_chart_axis_starts_at_zero():
    from sae_core.semisup_charts import curves_chart

    losses = [{"arm": "random_init", "seed": 0, "iteration": i, "loss": 2.0 / (i + 1)} for i in range(3)]
    accuracies = [{"arm": "random_init", "seed": 0, "iteration": 0, "accuracy": 0.08},
                  {"arm": "random_init", "seed": 0, "iteration": 2, "accuracy": 0.8}]
    accuracy_view = curves_chart(losses, accuracies).to_dict()["hconcat"][1]
    scale = accuracy_view["encoding"]["y"]["scale"]
    assert scale["domain"] == [0.0, 1.0]
    assert not scale.get("clamp", False)


def test_job_cancel_stops_the_run(mnist, tmp_path):
    settings = ComparisonSettings(labels_per_class=3, n_seeds=2, n_hidden=8, max_iterations=200)
    job = semisup.ComparisonJob(settings, mnist, semisup.ResultStore(tmp_path))
    job.cancel()
    assert job.wait(timeout=60)
    assert job.snapshot().state == "cancelled"
    assert not list(tmp_path.iterdir())


# The compare command


@pytest.mark.slow
def test_compare_command_writes_outputs(tmp_path, capsys, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "compare"
    assert main(["compare", *TINY_CLI, "--sweep", "2", "--out", str(out)]) == 0
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 1 + 2 * 3 * 2
    summary = json.loads((out / "summary.json").read_text())
    assert {entry["arm"] for entry in summary["arms"]} == set(ARMS)
    assert summary["settings"]["labels_per_class"] == 3
    assert summary["differences"][0]["minuend"] == "fine_tuned"
    for name in ("comparison", "sweep", "per_class", "confusion", "curves"):
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG", name
            assert image.size[0] > 300, name
    captured = capsys.readouterr()
    assert "fine_tuned - random_init" in captured.out
    assert "retracing" not in captured.err
    assert "retracing" not in caplog.text
    assert "pretraining on the 30 labelled digits" in caplog.text
    assert "(30 digits)" not in caplog.text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--seeds", "0"], "number of seeds is 0"),
        (["--labels-per-class", "500"], "500 labels per class is too many"),
        (["--sweep", "10,x"], "--sweep item 'x' is not an integer"),
        (["--sweep", "10,600"], "600 labels per class is too many"),
        (["--pretrain-on", "unlabelled"], "invalid choice"),
        (["--data", "/no/such/folder"], "does not exist"),
    ],
)
def test_compare_command_rejects_bad_arguments(arguments, message, tmp_path, capsys):
    out = tmp_path / "compare"
    assert main(["compare", *arguments, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    assert message in error[0]
    assert not out.exists()


# The app tab


def _experiment_script():
    import numpy as np

    from app.context import AppContext
    from app.experiment import render_experiment
    from sae_core.config import SAEConfig
    from sae_core.data import load_dataset
    from sae_core.model import initial_weights

    dataset = load_dataset("embedded")
    config = SAEConfig(n_hidden=8, max_iterations=5).with_samples_for(len(dataset))
    rows = np.arange(len(dataset))
    render_experiment(AppContext(initial_weights(8, 0), config, dataset, {}, "embedded",
                                 train_indices=rows, heldout_indices=rows[:0]))


@pytest.mark.slow
def test_app_tab_runs_and_keeps_results(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SAE_EXPLORER_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SAE_EXPLORER_MODELS", str(tmp_path / "models"))
    at = AppTest.from_function(_experiment_script, default_timeout=60)
    at.run()
    assert not at.exception
    at.number_input(key="experiment_labels").set_value(3)
    at.number_input(key="experiment_seeds").set_value(2)
    at.number_input(key="experiment_classifier_iterations").set_value(10)
    at.run()
    at.button(key="experiment_run").click().run()
    assert not at.exception
    assert at.button(key="experiment_run").disabled

    deadline = time.monotonic() + 120
    while "experiment_shown" not in at.session_state and time.monotonic() < deadline:
        time.sleep(1.0)
        at.run()
    assert not at.exception
    shown = at.session_state["experiment_shown"]
    assert shown.settings.labels_per_class == 3
    assert shown.settings.n_seeds == 2
    assert len(shown.rows) == 2 * 3
    assert list((tmp_path / "results").glob("semisup-*/summary.json"))

    # Moving another widget keeps the results on screen, labelled as other settings.
    at.number_input(key="experiment_seeds").set_value(3).run()
    assert not at.exception
    assert at.session_state["experiment_shown"].key == shown.key
    assert any("other settings" in caption.value for caption in at.caption)
    assert not at.button(key="experiment_run").disabled

    assert not any("stored result" in caption.value for caption in at.caption)

    # Back to the stored settings: shown from disk, and the run button is disabled
    # with a caption that says why.
    at.number_input(key="experiment_seeds").set_value(2).run()
    assert at.button(key="experiment_run").disabled
    assert any("stored result" in caption.value for caption in at.caption)
    assert not any("other settings" in caption.value for caption in at.caption)

