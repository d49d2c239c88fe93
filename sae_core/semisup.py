"""The semi-supervised comparison: with few labels, is a sparse autoencoder's encoder a
better first layer for a digit classifier than random weights?

Protocol, repeated for each seed: draw k labelled digits per class (stratified, seeded).
Every other digit is the unlabelled remainder, on which all accuracies are measured.
Pretrain a sparse autoencoder (rho = 0.1 by default) on the labelled digits, or on all
digits. Then train three classifiers 784 -> n_hidden sigmoid -> 10 softmax on the
labelled digits and evaluate each on the same remainder:

    softmax_on_features  encoder frozen at the autoencoder's W1, b1; softmax layer trained
    fine_tuned           starts from softmax_on_features; every layer trained
    random_init          the same layers from seeded Glorot-uniform weights, trained like
                         fine_tuned (same optimiser, same iteration limit)

Each classifier minimises mean cross-entropy + (lambda_c / 2) ||W_softmax||^2 with
full-batch L-BFGS for at most classifier_iterations iterations, as the original did
(400 iterations, lambda_c = 1e-4). The encoder is not weight-decayed.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats

from .config import N_PIXELS, SAEConfig
from .data import Dataset
from .model import SAEWeights

logger = logging.getLogger(__name__)

ARMS = ("softmax_on_features", "fine_tuned", "random_init")
PRETRAIN_CHOICES = ("labelled", "all")
# Paired differences reported per budget, as (minuend, subtrahend).
DIFFERENCES = (
    ("fine_tuned", "random_init"),
    ("softmax_on_features", "random_init"),
    ("fine_tuned", "softmax_on_features"),
)
CSV_COLUMNS = ("seed", "arm", "labels_per_class", "accuracy", "n_eval")
N_CLASSES = 10
CONFIDENCE = 0.95
# Part of every result key: bump it when a change alters the numbers, so results
# stored by older code are recomputed instead of shown.
PROTOCOL_VERSION = 1
CURVE_POINTS = 40  # remainder-accuracy checkpoints per classifier fit

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.json"
DETAILS_FILE = "details.json"

# Pretrainer(config, data, progress) -> weights; config.n_samples equals len(data).
Pretrainer = Callable[[SAEConfig, Dataset, Callable], SAEWeights]


class ComparisonCancelled(Exception):
    """Raised inside a run when its cancel event is set."""


class ResultError(ValueError):
    """A stored result folder is missing a file or contains a corrupt one."""


# ---------------------------------------------------------------------------------
# Settings


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} is {value!r}; it must be an integer >= {minimum}")


@dataclass(frozen=True)
class ComparisonSettings:
    """Everything that determines a comparison's numbers, apart from the data."""

    labels_per_class: int = 100
    n_seeds: int = 5
    pretrain_on: str = "labelled"  # "labelled" or "all"
    sweep: tuple[int, ...] = ()  # extra labels-per-class budgets
    sparsity_target: float = 0.1  # rho of the autoencoder
    sparsity_weight: float = 3.0  # beta
    weight_decay: float = 1e-3  # lambda of the autoencoder
    n_hidden: int = 200
    max_iterations: int = 400  # autoencoder L-BFGS iterations
    classifier_iterations: int = 400
    classifier_weight_decay: float = 1e-4  # lambda_c on the softmax kernel
    first_seed: int = 0

    def __post_init__(self) -> None:
        _check_int("labels per class", self.labels_per_class, 1)
        _check_int("number of seeds", self.n_seeds, 1)
        _check_int("first seed", self.first_seed, 0)
        _check_int("classifier iterations", self.classifier_iterations, 1)
        if self.pretrain_on not in PRETRAIN_CHOICES:
            raise ValueError(
                f"pretrain_on is {self.pretrain_on!r}; choose 'labelled' or 'all'"
            )
        for budget in self.sweep:
            _check_int("every sweep budget", budget, 1)
        object.__setattr__(self, "sweep", tuple(sorted({int(b) for b in self.sweep})))
        decay = self.classifier_weight_decay
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not decay >= 0 \
                or not math.isfinite(decay):
            raise ValueError(f"classifier weight decay is {decay!r}; it must be a finite number >= 0")
        self.autoencoder_config(1, self.first_seed)  # SAEConfig validates the rest

    @property
    def budgets(self) -> tuple[int, ...]:
        """Labels per class to run, ascending: the main budget and the sweep."""
        return tuple(sorted({self.labels_per_class, *self.sweep}))

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.n_seeds))

    def autoencoder_config(self, n_images: int, seed: int) -> SAEConfig:
        """Return the autoencoder's config for one pretraining run on n_images digits."""
        return SAEConfig(
            sparsity_target=self.sparsity_target, sparsity_weight=self.sparsity_weight,
            weight_decay=self.weight_decay, n_hidden=self.n_hidden,
            max_iterations=self.max_iterations, n_samples=n_images, seed=seed,
        )

    @classmethod
    def from_autoencoder(cls, config: SAEConfig, **values) -> "ComparisonSettings":
        """Settings that take beta, lambda, n_hidden and the iterations from `config`.

        rho stays at 0.1 unless `values` sets sparsity_target.
        """
        inherited = dict(sparsity_weight=config.sparsity_weight, weight_decay=config.weight_decay,
                         n_hidden=config.n_hidden, max_iterations=config.max_iterations)
        return cls(**(inherited | values))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"sweep": list(self.sweep)}

    @classmethod
    def from_dict(cls, values: dict) -> "ComparisonSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown comparison settings: {sorted(unknown)}")
        return cls(**(values | {"sweep": tuple(values.get("sweep", ()))}))

    def describe(self) -> str:
        """Return a one-line summary for captions and logs."""
        sweep = f", sweep {','.join(map(str, self.sweep))}" if self.sweep else ""
        return (f"{self.labels_per_class} labels per class, {self.n_seeds} seeds, "
                f"pretrained on {self.pretrain_on} digits (rho={self.sparsity_target:g}, "
                f"beta={self.sparsity_weight:g}, lambda={self.weight_decay:g}, "
                f"{self.n_hidden} hidden, {self.max_iterations} iterations), "
                f"classifiers {self.classifier_iterations} L-BFGS iterations, "
                f"lambda_c={self.classifier_weight_decay:g}{sweep}")


def check_data(settings: ComparisonSettings, labels: np.ndarray) -> None:
    """Raise ValueError when the labels cannot support the requested budgets.

    Every class present must keep at least one digit in the remainder, so the largest
    budget must be below the size of the smallest class.
    """
    counts = np.bincount(np.asarray(labels), minlength=N_CLASSES)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise ValueError(
            f"the data set has only {len(present)} digit class; the comparison needs at least 2"
        )
    smallest = present[np.argmin(counts[present])]
    largest_budget = max(settings.budgets)
    if largest_budget >= counts[smallest]:
        raise ValueError(
            f"{largest_budget} labels per class is too many: digit {smallest} has only "
            f"{counts[smallest]} images, and some must stay unlabelled for evaluation; "
            f"choose at most {counts[smallest] - 1}"
        )


def stratified_draw(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Return the sorted rows of `per_class` digits of each class present in `labels`.

    Each class's rows are shuffled once per seed and the first `per_class` are taken,
    so for one seed a smaller budget's draw is a subset of a larger one's.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for digit in np.unique(labels):
        rows = np.flatnonzero(labels == digit)
        if per_class > len(rows):
            raise ValueError(
                f"{per_class} labels per class requested but digit {digit} has only {len(rows)} images"
            )
        chosen.append(rng.permutation(rows)[:per_class])
    return np.sort(np.concatenate(chosen))


def t_interval(values, confidence: float = CONFIDENCE) -> dict:
    """Mean and Student-t confidence interval of the mean over independent runs.

    With one value the bounds are None: a spread cannot be estimated from one run.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "std": None, "n_seeds": n}
    std = float(np.std(values, ddof=1))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "ci_low": mean - half_width, "ci_high": mean + half_width,
            "std": std, "n_seeds": n}


# ---------------------------------------------------------------------------------
# Keras classifiers


def _derived_seeds(seed: int) -> tuple[int, int]:
    """Independent seeds for the softmax layer and the random_init encoder."""
    softmax_seed, encoder_seed = np.random.SeedSequence([seed, 7]).generate_state(2)
    return int(softmax_seed), int(encoder_seed)


def build_classifier(n_hidden: int, weight_decay: float, seed: int):
    """Return keras.Model 784 -> n_hidden sigmoid ("encoder") -> 10 ("logits") -> softmax.

    Kernels are seeded Glorot-uniform, biases zero. The logits kernel carries the weight
    decay (weight_decay / 2) ||W||^2 as a Keras L2 regulariser.
    """
    from .tf_quiet import keras

    inputs = keras.Input(shape=(N_PIXELS,), name="pixels")
    hidden = keras.layers.Dense(
        n_hidden, activation="sigmoid", name="encoder",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(inputs)
    logits = keras.layers.Dense(
        N_CLASSES, name="logits",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2))(hidden)
    probabilities = keras.layers.Softmax(name="softmax")(logits)
    return keras.Model(inputs, probabilities, name="digit_classifier")


def _copy_model(model):
    """Return a new model with the same layers and a copy of the weights.

    `model` itself is not modified.
    """
    from .tf_quiet import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


@dataclass
class FitRecord:
    iterations: int
    stop_reason: str
    seconds: float
    loss: list[float]  # objective at the start and after each iteration
    eval_accuracy: list[list[float]]  # [iteration, remainder accuracy] checkpoints


def fit_lbfgs(model, x: np.ndarray, y: np.ndarray, max_iterations: int,
              monitor: tuple[np.ndarray, np.ndarray] | None = None,
              on_iteration: Callable[[int], None] | None = None) -> FitRecord:
    """Train `model`'s trainable variables on (x, y) in place with full-batch L-BFGS.

    The objective is mean cross-entropy on the logits plus the model's regularisation
    losses. `monitor` = (x_eval, y_eval) records accuracy there at about CURVE_POINTS
    iterations, for the training curves only. `on_iteration(i)` may raise to abort.
    """
    from .lbfgs import minimize_lbfgs
    from .tf_quiet import keras, tf

    variables = model.trainable_variables
    shapes = [tuple(v.shape) for v in variables]
    sizes = [int(np.prod(shape)) for shape in shapes]
    logits_model = keras.Model(model.inputs, model.get_layer("logits").output)
    x_train = tf.constant(x, tf.float32)  # (m, 784)
    y_train = tf.constant(y, tf.int64)  # (m,)

    def assign(flat) -> None:
        for variable, part, shape in zip(variables, tf.split(flat, sizes), shapes):
            variable.assign(tf.reshape(part, shape))

    @tf.function(reduce_retracing=True, autograph=False)
    def value_and_gradient(flat):
        assign(flat)
        with tf.GradientTape() as tape:
            logits = logits_model(x_train, training=True)  # (m, 10)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(y_train, logits))
            loss += tf.add_n(model.losses) if model.losses else 0.0
        gradients = tape.gradient(loss, variables)
        return loss, tf.concat([tf.reshape(g, [-1]) for g in gradients], axis=0)

    def objective(flat: np.ndarray):
        loss, gradient = value_and_gradient(tf.constant(flat))
        return float(loss), gradient.numpy()

    accuracy = None
    if monitor is not None:
        x_eval, y_eval = tf.constant(monitor[0], tf.float32), tf.constant(monitor[1], tf.int64)

        @tf.function(autograph=False)
        def accuracy():
            predicted = tf.argmax(logits_model(x_eval, training=False), axis=1)
            return tf.reduce_mean(tf.cast(tf.equal(predicted, y_eval), tf.float32))

    every = max(1, max_iterations // CURVE_POINTS)
    x0 = np.concatenate([v.numpy().ravel() for v in variables])
    record = FitRecord(0, "", 0.0, [objective(x0)[0]], [])
    if accuracy is not None:
        record.eval_accuracy.append([0, float(accuracy())])
    started = time.perf_counter()

    def callback(iteration: int, flat: np.ndarray, value: float) -> None:
        record.loss.append(float(value))
        if accuracy is not None and iteration % every == 0:
            assign(tf.constant(flat))
            record.eval_accuracy.append([iteration, float(accuracy())])
        if on_iteration is not None:
            on_iteration(iteration)

    result = minimize_lbfgs(objective, x0, max_iterations, callback=callback)
    assign(tf.constant(result.x))
    if accuracy is not None and (not record.eval_accuracy or record.eval_accuracy[-1][0] != result.iterations):
        record.eval_accuracy.append([result.iterations, float(accuracy())])
    record.iterations, record.stop_reason = result.iterations, result.stop_reason
    record.seconds = time.perf_counter() - started
    return record


def confusion_matrix(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Counts (10, 10) of true class (rows) against the model's prediction (columns).

    The model is called eagerly: model.predict would trace a new predict function for
    every classifier, and TensorFlow warns about that retracing on stderr.
    """
    probabilities = np.asarray(model(np.asarray(x, dtype=np.float32), training=False))  # (m, 10)
    predicted = np.argmax(probabilities, axis=1)
    pairs = np.asarray(y, dtype=np.int64) * N_CLASSES + predicted
    return np.bincount(pairs, minlength=N_CLASSES * N_CLASSES).reshape(N_CLASSES, N_CLASSES)


@dataclass
class ArmRun:
    arm: str
    accuracy: float
    n_eval: int
    confusion: np.ndarray  # (10, 10) counts on the remainder
    fit: FitRecord


def _arm_run(arm: str, model, fit: FitRecord, x_eval, y_eval) -> ArmRun:
    confusion = confusion_matrix(model, x_eval, y_eval)
    accuracy = float(np.trace(confusion) / len(y_eval))
    logger.info("  %s: accuracy %.4f on %d digits (%d iterations, %s, %.1f s)",
                arm, accuracy, len(y_eval), fit.iterations, fit.stop_reason, fit.seconds)
    return ArmRun(arm, accuracy, len(y_eval), confusion, fit)


def run_arms(weights: SAEWeights, labelled: tuple[np.ndarray, np.ndarray],
             remainder: tuple[np.ndarray, np.ndarray], settings: ComparisonSettings,
             seed: int, on_arm: Callable[[str, float], None] | None = None) -> list[ArmRun]:
    """Train and evaluate the three arms for one seed and one labelled set.

    `weights` is only read: the encoder layers receive copies through set_weights.
    `on_arm(arm, fraction)` reports each arm's progress and may raise to abort.
    """
    x, y = labelled
    softmax_seed, encoder_seed = _derived_seeds(seed)
    budget = settings.classifier_iterations

    def fit(arm, model):
        report = None
        if on_arm is not None:
            on_arm(arm, 0.0)
            report = lambda iteration: on_arm(arm, iteration / budget)  # noqa: E731
        return fit_lbfgs(model, x, y, budget, monitor=remainder, on_iteration=report)

    # 1. The autoencoder's encoder, frozen, under a softmax layer.
    frozen = build_classifier(settings.n_hidden, settings.classifier_weight_decay, softmax_seed)
    frozen.get_layer("encoder").set_weights([weights.W1.T, weights.b1])
    frozen.get_layer("encoder").trainable = False
    runs = [_arm_run("softmax_on_features", frozen, fit("softmax_on_features", frozen), *remainder)]

    # 2. The whole stack, from (1), every layer trained.
    tuned = _copy_model(frozen)
    tuned.get_layer("encoder").trainable = True
    runs.append(_arm_run("fine_tuned", tuned, fit("fine_tuned", tuned), *remainder))

    # 3. The same layers from random weights, same optimiser and iteration limit as (2).
    scratch = build_classifier(settings.n_hidden, settings.classifier_weight_decay, encoder_seed)
    runs.append(_arm_run("random_init", scratch, fit("random_init", scratch), *remainder))
    return runs


# ---------------------------------------------------------------------------------
# The whole comparison


@dataclass(frozen=True)
class ComparisonProgress:
    fraction: float  # of the estimated total work, 0..1
    message: str
    seconds: float

    def line(self) -> str:
        return f"{self.fraction:4.0%} {self.message} ({self.seconds:.0f} s)"


class _ProgressTracker:
    """Turns stage starts and within-stage fractions into overall progress.

    Stage weights are rough cost estimates in seconds, good enough for a progress bar.
    """

    def __init__(self, weights: list[float], callback, cancel: threading.Event | None):
        self.total = sum(weights)
        self.weights = weights
        self.callback = callback
        self.cancel = cancel
        self.stage = -1
        self.done = 0.0
        self.message = ""
        self.started = time.perf_counter()

    def start(self, message: str) -> None:
        if self.stage >= 0:
            self.done += self.weights[self.stage]
        self.stage += 1
        self.message = message
        self.update(0.0)

    def update(self, within: float, detail: str = "") -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise ComparisonCancelled("the comparison was cancelled")
        if self.callback is None:
            return
        stage_weight = self.weights[self.stage] if self.stage >= 0 else 0.0
        fraction = (self.done + min(max(within, 0.0), 1.0) * stage_weight) / self.total
        message = f"{self.message}{': ' + detail if detail else ''}"
        self.callback(ComparisonProgress(min(fraction, 1.0), message,
                                         time.perf_counter() - self.started))


def _stage_weights(settings: ComparisonSettings, n_images: int) -> list[float]:
    """Estimate the seconds of each stage, in run order.

    The constants were fitted by eye to single runs on a shared 2-core CPU. Pretraining
    for 400 iterations took 23 s on 1,000 digits and 85 s on 5,000. Only the progress
    bar and the app's run-time hint use these estimates.
    """
    scale = settings.n_hidden / 200

    def pretrain(n):
        return settings.max_iterations * (0.02 + 3.8e-5 * n) * scale

    def arm(k, factor):
        return 1.0 + factor * 5e-6 * settings.classifier_iterations * (N_CLASSES * k + 1000) * scale

    weights = []
    for _seed in settings.seeds:
        if settings.pretrain_on == "all":
            weights.append(pretrain(n_images))
        for budget in settings.budgets:
            if settings.pretrain_on == "labelled":
                weights.append(pretrain(N_CLASSES * budget))
            weights += [arm(budget, 0.1), arm(budget, 0.5), arm(budget, 0.6)]
    return weights


def estimate_seconds(settings: ComparisonSettings, n_images: int) -> float:
    """Estimate the run time in seconds on an idle 2-core CPU, as the progress bar does."""
    return float(sum(_stage_weights(settings, n_images)))


# NOTE: a single measurement sets this factor. On a 2-core CPU with a load average
# of about 3, and with the app showing progress, a run took 3.4 times estimate_seconds
# (116 s against 34 s).
BUSY_MACHINE_FACTOR = 3.5


def estimate_range_seconds(settings: ComparisonSettings, n_images: int) -> tuple[float, float]:
    """Estimate the run time as (low, high) seconds: an idle 2-core CPU, then a busy one."""
    low = estimate_seconds(settings, n_images)
    return low, low * BUSY_MACHINE_FACTOR


def train_autoencoder(config: SAEConfig, data: Dataset, progress=None) -> SAEWeights:
    """Train the autoencoder on every digit of `data` without storing it (the default pretrainer)."""
    from .training import train

    return train(config, data.images, progress=progress).weights


@dataclass
class ComparisonResult:
    settings: ComparisonSettings
    data: dict  # fingerprint, provenance, n_images
    rows: list[dict]  # one per seed x arm x budget, the CSV_COLUMNS
    summary: dict  # "arms" and "differences", see summarize
    runs: list[dict] = field(repr=False)  # per row: fit record and confusion matrix
    pretraining: list[dict] = field(repr=False)
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return result_key(self.settings, self.data["fingerprint"])


def _pretrain(settings, tracker, pretrainer, data: Dataset, seed: int, label: str) -> tuple[SAEWeights, dict]:
    config = settings.autoencoder_config(len(data), seed)
    tracker.start(f"seed {seed}: pretraining the autoencoder on {label}")
    logger.info("seed %d: pretraining on %s", seed, label)

    def on_progress(progress) -> None:
        tracker.update(progress.iteration / progress.max_iterations,
                       f"iteration {progress.iteration}/{progress.max_iterations}")

    started = time.perf_counter()
    weights = pretrainer(config, data, on_progress)
    record = {"seed": seed, "pretrained_on": label, "n_images": len(data),
              "seconds": time.perf_counter() - started}
    return weights, record


def _subset(dataset: Dataset, rows: np.ndarray, description: str) -> Dataset:
    return Dataset(dataset.images[rows], dataset.labels[rows], f"{dataset.provenance}; {description}")


def run_comparison(settings: ComparisonSettings, dataset: Dataset,
                   progress: Callable[[ComparisonProgress], None] | None = None,
                   pretrainer: Pretrainer | None = None,
                   cancel: threading.Event | None = None) -> ComparisonResult:
    """Run the protocol of this module's docstring for every seed and budget.

    `pretrainer` trains (or loads) the autoencoder; the default trains without storing.
    Raises ValueError for budgets the data cannot support, and ComparisonCancelled when
    `cancel` is set during the run.
    """
    check_data(settings, dataset.labels)
    pretrainer = pretrainer or train_autoencoder
    tracker = _ProgressTracker(_stage_weights(settings, len(dataset)), progress, cancel)
    rows, runs, pretraining = [], [], []
    started = time.perf_counter()

    for seed in settings.seeds:
        shared = None
        if settings.pretrain_on == "all":
            shared, record = _pretrain(settings, tracker, pretrainer, dataset, seed,
                                       f"all {len(dataset)} digits")
            pretraining.append(record | {"labels_per_class": None})

        for budget in settings.budgets:
            labelled = stratified_draw(dataset.labels, budget, seed)
            unlabelled = np.setdiff1d(np.arange(len(dataset)), labelled)
            weights = shared
            if weights is None:
                data = _subset(dataset, labelled, f"{budget} per class drawn with seed {seed}")
                weights, record = _pretrain(settings, tracker, pretrainer, data, seed,
                                            f"the {len(labelled)} labelled digits")
                pretraining.append(record | {"labels_per_class": budget})

            logger.info("seed %d, %d labels per class: %d labelled, %d evaluated",
                        seed, budget, len(labelled), len(unlabelled))
            started_arms = set()

            def on_arm(arm: str, fraction: float) -> None:
                if arm not in started_arms:
                    started_arms.add(arm)
                    tracker.start(f"seed {seed}, {budget} per class: {arm}")
                tracker.update(fraction)

            arm_runs = run_arms(
                weights,
                (dataset.images[labelled], dataset.labels[labelled]),
                (dataset.images[unlabelled], dataset.labels[unlabelled]),
                settings, seed, on_arm,
            )
            for arm_run in arm_runs:
                row = {"seed": seed, "arm": arm_run.arm, "labels_per_class": budget,
                       "accuracy": arm_run.accuracy, "n_eval": arm_run.n_eval}
                rows.append(row)
                runs.append(row | dataclasses.asdict(arm_run.fit)
                            | {"confusion": arm_run.confusion.tolist()})

    data = {"fingerprint": dataset.fingerprint, "provenance": dataset.provenance,
            "n_images": len(dataset)}
    seconds = time.perf_counter() - started
    logger.info("comparison finished in %.0f s", seconds)
    return ComparisonResult(settings, data, rows, summarize(rows, settings), runs,
                            pretraining, seconds)


# ---------------------------------------------------------------------------------
# Summaries and tables for charts


def summarize(rows: list[dict], settings: ComparisonSettings) -> dict:
    """Per arm and budget: mean accuracy with its t interval; paired differences by seed."""
    arms, differences = [], []
    for budget in settings.budgets:
        by_arm = {arm: {r["seed"]: r for r in rows if r["arm"] == arm and r["labels_per_class"] == budget}
                  for arm in ARMS}
        for arm in ARMS:
            values = [r["accuracy"] for r in by_arm[arm].values()]
            n_eval = sorted({r["n_eval"] for r in by_arm[arm].values()})
            arms.append({"arm": arm, "labels_per_class": budget}
                        | t_interval(values) | {"n_eval": n_eval[0] if len(n_eval) == 1 else n_eval})
        for minuend, subtrahend in DIFFERENCES:
            seeds = sorted(set(by_arm[minuend]) & set(by_arm[subtrahend]))
            deltas = np.array([by_arm[minuend][s]["accuracy"] - by_arm[subtrahend][s]["accuracy"]
                               for s in seeds])
            differences.append(
                {"minuend": minuend, "subtrahend": subtrahend, "labels_per_class": budget}
                | t_interval(deltas)
                | {"wins": int(np.sum(deltas > 0)), "losses": int(np.sum(deltas < 0)),
                   "ties": int(np.sum(deltas == 0))})
    return {"confidence": CONFIDENCE, "arms": arms, "differences": differences}


def _runs_at(result: ComparisonResult, budget: int | None) -> list[dict]:
    budget = result.settings.labels_per_class if budget is None else budget
    return [run for run in result.runs if run["labels_per_class"] == budget]


def confusion_totals(result: ComparisonResult, budget: int | None = None) -> dict[str, np.ndarray]:
    """Confusion counts (10, 10) per arm, summed over seeds, at one budget (default: main)."""
    totals = {arm: np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64) for arm in ARMS}
    for run in _runs_at(result, budget):
        totals[run["arm"]] += np.asarray(run["confusion"], dtype=np.int64)
    return totals


def per_class_table(result: ComparisonResult, budget: int | None = None) -> list[dict]:
    """Rows (arm, digit, accuracy, n_eval): recall of each digit, pooled over seeds."""
    table = []
    for arm, confusion in confusion_totals(result, budget).items():
        for digit in range(N_CLASSES):
            total = int(confusion[digit].sum())
            if total:
                table.append({"arm": arm, "digit": digit,
                              "accuracy": float(confusion[digit, digit] / total), "n_eval": total})
    return table


def confusion_table(result: ComparisonResult, budget: int | None = None) -> list[dict]:
    """Rows (arm, true, predicted, count, rate), rate = count / digits of that true class."""
    table = []
    for arm, confusion in confusion_totals(result, budget).items():
        for true in range(N_CLASSES):
            total = int(confusion[true].sum())
            for predicted in range(N_CLASSES):
                if total:
                    count = int(confusion[true, predicted])
                    table.append({"arm": arm, "true": true, "predicted": predicted,
                                  "count": count, "rate": count / total})
    return table


def curve_tables(result: ComparisonResult, budget: int | None = None) -> tuple[list[dict], list[dict]]:
    """Training curves at one budget: rows (arm, seed, iteration, loss) and
    (arm, seed, iteration, accuracy) on the remainder."""
    losses, accuracies = [], []
    for run in _runs_at(result, budget):
        for iteration, loss in enumerate(run["loss"]):
            losses.append({"arm": run["arm"], "seed": run["seed"], "iteration": iteration, "loss": loss})
        for iteration, accuracy in run["eval_accuracy"]:
            accuracies.append({"arm": run["arm"], "seed": run["seed"], "iteration": int(iteration),
                               "accuracy": accuracy})
    return losses, accuracies


# ---------------------------------------------------------------------------------
# Results on disk: results.csv, summary.json and details.json, no pickle


def result_key(settings: ComparisonSettings, data_fingerprint: str) -> str:
    """16 hex digits identifying the settings, the data and the protocol version."""
    text = json.dumps({"protocol": PROTOCOL_VERSION, "settings": settings.to_dict(),
                       "data": data_fingerprint}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def results_csv(rows: list[dict]) -> str:
    """Format the rows as CSV text with the CSV_COLUMNS header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row[name] for name in CSV_COLUMNS})
    return buffer.getvalue()


def _write_atomically(path: Path, text: str) -> None:
    """Write to a process- and thread-unique sibling, then rename it over `path`."""
    partial = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def summary_document(result: ComparisonResult) -> dict:
    """Return the content of summary.json: settings, data, summary and run time."""
    return {"protocol_version": PROTOCOL_VERSION, "key": result.key,
            "settings": result.settings.to_dict(), "data": result.data,
            "seconds": result.seconds} | result.summary


def save_result(directory: str | os.PathLike, result: ComparisonResult) -> Path:
    """Write results.csv, details.json and summary.json (last), each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    details = {"key": result.key, "runs": result.runs, "pretraining": result.pretraining}
    _write_atomically(directory / RESULTS_FILE, results_csv(result.rows))
    _write_atomically(directory / DETAILS_FILE, json.dumps(details, allow_nan=False))
    _write_atomically(directory / SUMMARY_FILE,
                      json.dumps(summary_document(result), indent=2, allow_nan=False) + "\n")
    return directory


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ResultError(f"{path} has columns {reader.fieldnames}; expected {list(CSV_COLUMNS)}")
        return [{"seed": int(r["seed"]), "arm": r["arm"], "labels_per_class": int(r["labels_per_class"]),
                 "accuracy": float(r["accuracy"]), "n_eval": int(r["n_eval"])} for r in reader]


def load_result(directory: str | os.PathLike) -> ComparisonResult:
    """Read a folder written by save_result; raises ResultError naming the bad file."""
    directory = Path(directory)
    paths = {name: directory / name for name in (SUMMARY_FILE, DETAILS_FILE, RESULTS_FILE)}
    for path in paths.values():
        if not path.is_file():
            raise ResultError(f"{path} is missing; run the comparison again")
    try:
        summary = json.loads(paths[SUMMARY_FILE].read_text(encoding="utf-8"))
        details = json.loads(paths[DETAILS_FILE].read_text(encoding="utf-8"))
        rows = _read_rows(paths[RESULTS_FILE])
        settings = ComparisonSettings.from_dict(summary["settings"])
        result = ComparisonResult(settings, summary["data"], rows,
                                  {k: summary[k] for k in ("confidence", "arms", "differences")},
                                  details["runs"], details["pretraining"], summary["seconds"])
    except ResultError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ResultError(f"{directory} contains a corrupt result ({type(error).__name__}: {error})") from error
    if details.get("key") != result.key or summary.get("key") != result.key:
        raise ResultError(f"{directory} mixes files of different runs; run the comparison again")
    return result


class ResultStore:
    """Comparison results under `root`, one folder per result key."""

    def __init__(self, root: str | os.PathLike = "results"):
        self.root = Path(root)

    def path_for(self, settings: ComparisonSettings, dataset: Dataset) -> Path:
        return self.root / f"semisup-{result_key(settings, dataset.fingerprint)}"

    def load(self, settings: ComparisonSettings, dataset: Dataset) -> ComparisonResult | None:
        """Return the stored result for these settings and data, or None.

        An unreadable result is logged and treated as missing, so it is recomputed.
        """
        path = self.path_for(settings, dataset)
        if not path.exists():
            return None
        try:
            return load_result(path)
        except ResultError as error:
            logger.warning("ignoring a stored comparison: %s", error)
            return None

    def save(self, result: ComparisonResult) -> Path:
        return save_result(self.root / f"semisup-{result.key}", result)


# ---------------------------------------------------------------------------------
# Background runs for a UI


@dataclass(frozen=True)
class JobState:
    state: str  # "running", "done", "failed" or "cancelled"
    progress: ComparisonProgress | None
    result: ComparisonResult | None
    error: str | None


class ComparisonJob:
    """Run one comparison in a daemon thread and save it to `store` when it finishes."""

    def __init__(self, settings: ComparisonSettings, dataset: Dataset,
                 store: ResultStore | None = None, pretrainer: Pretrainer | None = None):
        self.settings = settings
        self.key = result_key(settings, dataset.fingerprint)
        self._dataset = dataset
        self._store = store
        self._pretrainer = pretrainer
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._progress: ComparisonProgress | None = None
        self._result: ComparisonResult | None = None
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"compare-{self.key}", daemon=True)
        self._thread.start()

    def _on_progress(self, progress: ComparisonProgress) -> None:
        with self._lock:
            self._progress = progress

    def _run(self) -> None:
        try:
            result = run_comparison(self.settings, self._dataset, self._on_progress,
                                    self._pretrainer, self._cancel)
            if self._store is not None:
                self._store.save(result)
            with self._lock:
                self._result = result
        except ComparisonCancelled:
            logger.info("comparison %s cancelled", self.key)
        except Exception as error:  # shown by the UI; the thread must not die silently
            logger.exception("comparison %s failed", self.key)
            with self._lock:
                self._error = f"{type(error).__name__}: {error}"
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def snapshot(self) -> JobState:
        with self._lock:
            if not self._done.is_set():
                state = "running"
            elif self._error is not None:
                state = "failed"
            elif self._result is None:
                state = "cancelled"
            else:
                state = "done"
            return JobState(state, self._progress, self._result, self._error)
