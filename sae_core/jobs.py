"""Training in a background thread, so a UI can poll progress and keep responding.

A TrainingJob loads or trains one model through a ModelStore. Its `snapshot()` gives
the latest iteration, the three cost terms and the weights at that iteration, so a UI
can redraw the W1 mosaic while L-BFGS runs. `cancel()` stops training at the next
iteration. JobBoard keeps at most a few jobs and cancels superseded ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import threadpoolctl

from .config import SAEConfig
from .data import Dataset
from .lbfgs import StopOptimization
from .store import ModelStore, TrainedModel

logger = logging.getLogger(__name__)

# OpenBLAS with its default thread count made training in a background thread about
# 3x slower on 2 cores (3.2 s alone, 11.5 s in a thread, for 60 iterations at
# m = 2,000), because its threads compete with TensorFlow's. One BLAS thread for the
# whole process removes that. NumPy matrix products elsewhere in an app process
# are small (at most 5,000 x 784 x 200), so they lose little.
threadpoolctl.threadpool_limits(limits=1, user_api="blas")


@dataclass(frozen=True)
class JobSnapshot:
    state: str  # "running", "done", "failed" or "cancelled"
    progress: object | None  # the latest training.TrainingProgress, if any
    model: TrainedModel | None
    error: str | None
    started: float


class TrainingJob:
    """Load or train one config on one data set in a daemon thread."""

    def __init__(self, store: ModelStore, config: SAEConfig, dataset: Dataset,
                 start_from: TrainedModel | None = None, on_done=None):
        self.config = config
        self._on_done = on_done
        self._store = store
        self._dataset = dataset
        self._start_from = start_from
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._done = threading.Event()
        self._progress = None
        self._model: TrainedModel | None = None
        self._error: str | None = None
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"train-{config.sparsity_target:g}", daemon=True)
        self._thread.start()

    def _on_progress(self, progress) -> None:
        with self._lock:
            self._progress = progress
        if self._cancelled.is_set():
            raise StopOptimization()

    def _run(self) -> None:
        try:
            model = self._store.get_or_train(self.config, self._dataset, progress=self._on_progress,
                                             start_from=self._start_from)
            if self._cancelled.is_set():
                return
            with self._lock:
                self._model = model
            if self._on_done is not None:
                self._on_done(model)
        except Exception as error:  # reported to the UI, which shows it
            logger.exception("training failed for %s", self.config)
            with self._lock:
                self._error = f"{type(error).__name__}: {error}"
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            if not self._done.is_set():
                state = "running"
            elif self._error is not None:
                state = "failed"
            elif self._cancelled.is_set() or self._model is None:
                state = "cancelled"
            else:
                state = "done"
            return JobSnapshot(state, self._progress, self._model, self._error, self.started)


class JobBoard:
    """The models and training jobs of one app process, both bounded in number.

    `find` looks in a small in-memory cache of recently used models, then in the
    store on disk. Starting a job cancels the other running jobs, because two trainings
    at once would halve each other's speed and only the latest request matters.
    """

    def __init__(self, store: ModelStore, max_jobs: int = 4, max_models: int = 12):
        self.store = store
        self.max_jobs = max_jobs
        self.max_models = max_models
        self._jobs: OrderedDict[str, TrainingJob] = OrderedDict()
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(config: SAEConfig, dataset: Dataset, start_from: TrainedModel | None = None) -> str:
        config = config.with_samples_for(len(dataset))
        warm = "" if start_from is None else f"|warm:{id(start_from.weights)}"
        return f"{config.key()}|{dataset.fingerprint}{warm}"

    def _remember(self, key: str, model: TrainedModel) -> None:
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)

    def find(self, config: SAEConfig, dataset: Dataset) -> tuple[TrainedModel | None, str | None]:
        """Return (model, None) when trained before, else (None, reason the stored one failed)."""
        key = self.key(config, dataset)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model, None
        model, problem = self.store.lookup(config, dataset)
        if model is not None:
            self._remember(key, model)
        return model, problem

    def get(self, key: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(key)

    def running(self) -> TrainingJob | None:
        with self._lock:
            for job in self._jobs.values():
                if job.snapshot().state == "running":
                    return job
        return None

    def start(self, config: SAEConfig, dataset: Dataset,
              start_from: TrainedModel | None = None) -> tuple[str, TrainingJob]:
        """Return (key, job) for the request, starting it and cancelling others if needed."""
        key = self.key(config, dataset, start_from)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.snapshot().state in ("running", "done"):
                self._jobs.move_to_end(key)
                return key, job
            for other in self._jobs.values():
                other.cancel()
            job = TrainingJob(self.store, config, dataset, start_from,
                              on_done=lambda model: self._remember(self.key(config, dataset, start_from), model))
            self._jobs[key] = job
            while len(self._jobs) > self.max_jobs:
                _, oldest = self._jobs.popitem(last=False)
                oldest.cancel()
            return key, job
