"""Training speed of SAE Explorer, as ratios measured in one run.

Prints each target next to its goal:
  1. time per L-BFGS iteration at m = 5,000 over the matrix-multiply lower bound, which
     is the five float32 matrix multiplies of one cost-and-gradient evaluation, timed
     with NumPy on the same shapes in this run;
  2. the original run (5,000 digits, 200 hidden units, 400 iterations) against the plain
     NumPy + SciPy L-BFGS-B trainer in reference_numpy_scipy.py: time ratio, final costs.
It also prints SciPy's L-BFGS-B driving the same TensorFlow objective (how the
optimiser was chosen), the time per iteration at 60,000 x 784, and how much sooner a
warm start reaches a good W1 mosaic after the sparsity target moves from 0.1 to 0.05.

NumPy work (the bound, the reference) runs in a helper process, so TensorFlow's thread
pool and OpenBLAS's never compete, and the bound is re-measured between training
segments so the ratios hold up when other programs load the machine.

    python benchmarks/train_speed.py                # the full run: about 5 minutes
    python benchmarks/train_speed.py --quick        # a smoke run on small settings
    python benchmarks/train_speed.py --json out.json
"""

from __future__ import annotations

import os
import sys

# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE may be set on this machine for old OpenBLAS
# builds; they slow a current NumPy, so this benchmark runs without both.
_BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(name in os.environ for name in _BLAS_OVERRIDES):
    _removed = ",".join(f"{name}={os.environ[name]}" for name in _BLAS_OVERRIDES if name in os.environ)
    _environment = {k: v for k, v in os.environ.items() if k not in _BLAS_OVERRIDES}
    _environment["SAE_BENCHMARK_UNSET"] = _removed
    os.execve(sys.executable, [sys.executable, *sys.argv], _environment)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

N_PIXELS = 784
# Idle OpenBLAS threads spin for about 0.1 s before sleeping, so each side waits this
# long after the other has worked before it starts a clock.
SETTLE_SECONDS = 0.25
GOOD_MOSAIC_TOLERANCE = 0.02
BUSY_CORES = 0.2  # CPU use by other programs, in cores, above which the report warns  # a mosaic is "good" once the cost is within 2% of the cold final cost


# ----------------------------------------------------------------------------- helpers

def matmul_bound_times(m: int, n_hidden: int, repeats: int) -> list[float]:
    """Time the five float32 matrix multiplies of one evaluation, `repeats` times.

    Forward: x W1' (m,784)(784,h) and a2 W2' (m,h)(h,784); backward: delta3 W2
    (m,784)(784,h), delta3' a2 (784,m)(m,h) and delta2' x (h,m)(m,784). Each is
    2 m 784 h floating-point operations.
    """
    rng = np.random.default_rng(0)
    x = rng.random((m, N_PIXELS), dtype=np.float32)
    W1 = rng.standard_normal((n_hidden, N_PIXELS), dtype=np.float32)
    W2 = rng.standard_normal((N_PIXELS, n_hidden), dtype=np.float32)
    a2 = rng.random((m, n_hidden), dtype=np.float32)
    delta3 = rng.standard_normal((m, N_PIXELS), dtype=np.float32)
    delta2 = rng.standard_normal((m, n_hidden), dtype=np.float32)

    def five():
        x @ W1.T
        a2 @ W2.T
        delta3 @ W2
        delta3.T @ a2
        delta2.T @ x

    five()  # warm-up: thread start and page faults
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        five()
        times.append(time.perf_counter() - started)
    return times


def blas_description() -> str:
    from threadpoolctl import threadpool_info

    parts = [
        f"{info.get('internal_api')} {info.get('version')} kernel {info.get('architecture')}, "
        f"{info.get('num_threads')} threads"
        for info in threadpool_info() if info.get("user_api") == "blas"
    ]
    return "; ".join(parts) or "no BLAS found by threadpoolctl"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _serve(request) -> object:
    """Return the reply to a stateless request: a bound sample or the BLAS description."""
    if request["kind"] == "bound":
        time.sleep(SETTLE_SECONDS)
        return matmul_bound_times(request["m"], request["n_hidden"], request["repeats"])
    if request["kind"] == "blas":
        return blas_description()
    return {"error": f"unknown request {request['kind']!r}"}


def _reply(value) -> None:
    print(json.dumps(value), flush=True)


def run_reference_in_segments(request, requests) -> dict:
    """Train the reference, pausing every `segment` iterations until a continue request.

    While paused it serves other requests (bound samples). Each pause sends the seconds
    that segment took, and waiting time is not counted.
    """
    import scipy.optimize

    from reference_numpy_scipy import cost_and_gradient, initial_parameters

    x = np.load(request["images"]).astype(np.float64)
    arguments = (x, request["n_hidden"], 0.1, 3.0, 1e-3)
    state = {"iterations": 0, "segment_iterations": 0, "resumed": 0.0, "seconds": 0.0}

    def wait_for_continue():
        for line in requests:
            command = json.loads(line)
            if command["kind"] == "continue":
                time.sleep(SETTLE_SECONDS)
                state["resumed"] = time.perf_counter()
                return
            _reply(_serve(command))
        raise SystemExit(0)  # the main process closed the pipe

    def on_iteration(_intermediate_result):
        state["iterations"] += 1
        state["segment_iterations"] += 1
        if state["iterations"] % request["segment"] == 0:
            seconds = time.perf_counter() - state["resumed"]
            state["seconds"] += seconds
            _reply({"segment_seconds": seconds, "iterations": state["segment_iterations"]})
            state["segment_iterations"] = 0
            wait_for_continue()

    _reply({"ready": True})
    wait_for_continue()
    result = scipy.optimize.minimize(
        cost_and_gradient, initial_parameters(request["n_hidden"], 0), args=arguments, jac=True,
        method="L-BFGS-B", options={"maxiter": request["iterations"]}, callback=on_iteration,
    )
    last = time.perf_counter() - state["resumed"]
    state["seconds"] += last
    return {"done": True, "segment_seconds": last, "iterations": state["segment_iterations"],
            "seconds": state["seconds"], "total_iterations": int(result.nit),
            "evaluations": int(result.nfev), "cost": float(result.fun), "message": str(result.message)}


class OtherProgramsCpu:
    """Measure the CPU time that programs other than this one and its helper use.

    It is the machine's busy time from /proc/stat minus this process's and the helper's
    CPU time, both in clock ticks. Divided by the wall time, it gives cores in use.
    """

    def __init__(self, helper_pid: int):
        self.helper_pid = helper_pid
        self.start = self._sample()

    def _sample(self):
        ticks = os.sysconf("SC_CLK_TCK")
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(fields[:8]) - fields[3] - fields[4]  # user to steal, less idle and iowait
        own = os.times()
        helper = Path(f"/proc/{self.helper_pid}/stat").read_text().rsplit(")", 1)[1].split()
        ours = (own.user + own.system) * ticks + int(helper[11]) + int(helper[12])
        return time.monotonic(), busy, ours, ticks

    def cores(self) -> float:
        started, busy0, ours0, ticks = self.start
        now, busy1, ours1, _ = self._sample()
        return max(0.0, ((busy1 - busy0) - (ours1 - ours0)) / ticks / (now - started))


def run_worker() -> None:
    """Serve JSON requests from stdin, one per line, writing one JSON line per reply."""
    for line in sys.stdin:
        request = json.loads(line)
        if request["kind"] == "reference":
            _reply(run_reference_in_segments(request, sys.stdin))
        else:
            _reply(_serve(request))


class NumpyWorker:
    """A helper process that times the matrix-multiply bound and runs the reference."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=dict(os.environ),
        )

    def send(self, **request) -> None:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def receive(self):
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError("the NumPy helper process ended unexpectedly; see its stderr above")
        return json.loads(reply)

    def ask(self, **request):
        self.send(**request)
        return self.receive()

    def bound(self, m: int, n_hidden: int = 200, repeats: int = 3) -> list[float]:
        return self.ask(kind="bound", m=m, n_hidden=n_hidden, repeats=repeats)

    def blas(self) -> str:
        return self.ask(kind="blas")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ----------------------------------------------------------------------------- parts

def warm_up_tracing(images) -> float:
    """Trace the training function once, as the app's first training does; return seconds."""
    from sae_core.config import SAEConfig
    from sae_core.training import make_objective, train

    started = time.perf_counter()
    config = SAEConfig(n_hidden=10, max_iterations=2, n_samples=100)
    train(config, images)
    make_objective(images[:100], config)[1](np.zeros(10 * 2 * N_PIXELS + 10 + N_PIXELS, np.float32))
    return time.perf_counter() - started


def measure_objective(worker, images, config, rounds: int) -> dict:
    """Time single cost-and-gradient evaluations, interleaved with bound samples."""
    from sae_core.model import initial_weights
    from sae_core.training import flatten, make_objective

    objective, _ = make_objective(images, config)
    flat = flatten(initial_weights(config.n_hidden, config.seed))
    objective(flat)
    evaluation_times, bound_times = [], []
    for _ in range(rounds):
        bound_times += worker.bound(len(images), config.n_hidden, repeats=2)
        time.sleep(SETTLE_SECONDS)
        for _ in range(3):
            started = time.perf_counter()
            objective(flat)
            evaluation_times.append(time.perf_counter() - started)
    return {"evaluation": statistics.median(evaluation_times), "bound": statistics.median(bound_times)}


def run_interleaved(worker, images, config, segment: int, images_path: str) -> dict:
    """Train ours and the reference in alternating segments of `segment` iterations.

    After each of our segments, training pauses, the helper samples the matmul bound
    and then runs the reference's next segment. Both see the same machine load, give or
    take a minute, so their ratio holds when other programs start or stop. Pauses are
    excluded from both training times.
    """
    from sae_core.training import train

    worker.send(kind="reference", images=images_path, iterations=config.max_iterations,
                segment=segment, n_hidden=config.n_hidden)
    worker.receive()  # ready
    segments = []  # (our iterations, our seconds, bound, reference iterations, reference seconds)
    reference = None
    state = {"paused": 0.0, "segment_start": 0.0, "counted": 0}

    def reference_segment():
        nonlocal reference
        reply = worker.ask(kind="continue")
        if reply.get("done"):
            reference = reply
        return reply["iterations"], reply["segment_seconds"]

    def on_progress(progress):
        if progress.iteration % segment and progress.iteration != config.max_iterations:
            return
        now = time.perf_counter()
        bound = statistics.median(worker.bound(len(images), config.n_hidden, repeats=3))
        ours = (progress.iteration - state["counted"], now - state["segment_start"])
        state["counted"] = progress.iteration
        segments.append((*ours, bound, *(reference_segment() if reference is None else (0, 0.0))))
        time.sleep(SETTLE_SECONDS)
        resumed = time.perf_counter()
        state["paused"] += resumed - now
        state["segment_start"] = resumed

    state["segment_start"] = time.perf_counter()
    result = train(config, images, progress=on_progress)
    seconds = result.metrics["seconds"] - state["paused"]
    while reference is None:  # the reference needs more iterations than ours took
        bound = statistics.median(worker.bound(len(images), config.n_hidden, repeats=3))
        segments.append((0, 0.0, bound, *reference_segment()))
    return {"result": result, "seconds": seconds, "segments": segments, "reference": reference}


def run_scipy_on_tf_objective(images, config) -> dict:
    """Train with scipy.optimize's L-BFGS-B calling the same float32 TensorFlow objective.

    Its BLAS runs on one thread, as sae_core's trainer does, so that OpenBLAS threads
    spinning between calls do not slow TensorFlow down.
    """
    import scipy.optimize
    from threadpoolctl import threadpool_limits

    from sae_core.model import initial_weights
    from sae_core.training import flatten, make_objective

    objective, _ = make_objective(images, config)

    def float64_objective(theta):
        value, gradient = objective(theta.astype(np.float32))
        return value, gradient.astype(np.float64)

    theta0 = flatten(initial_weights(config.n_hidden, config.seed)).astype(np.float64)
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        result = scipy.optimize.minimize(float64_objective, theta0, jac=True, method="L-BFGS-B",
                                         options={"maxiter": config.max_iterations})
    return {"seconds": time.perf_counter() - started, "iterations": int(result.nit),
            "evaluations": int(result.nfev), "cost": float(result.fun)}


def measure_bookkeeping(n_parameters: int, iterations: int, rounds: int) -> dict:
    """Time each optimiser's own work per iteration, with a trivial objective.

    The objective is a diagonal quadratic, so nearly all the time is the optimiser's:
    sae_core's float32 L-BFGS against SciPy's L-BFGS-B (float64, its Fortran code), both
    with one BLAS thread as in training, alternating `rounds` times. The objective's own
    time is measured separately and subtracted.
    """
    import scipy.optimize
    from threadpoolctl import threadpool_limits

    from sae_core.lbfgs import minimize_lbfgs

    curvature = np.random.default_rng(0).uniform(1.0, 100.0, n_parameters)

    def make_quadratic(dtype):
        diagonal = curvature.astype(dtype)

        def quadratic(x):
            gradient = diagonal * x
            return 0.5 * float(np.dot(gradient, x)), gradient

        return quadratic

    def per_iteration(run, dtype):
        """Run one optimiser from all ones; return seconds per iteration, objective excluded."""
        quadratic = make_quadratic(dtype)
        x0 = np.ones(n_parameters, dtype)
        started = time.perf_counter()
        iterations_done, evaluations = run(quadratic, x0)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(evaluations):
            quadratic(x0)
        return (seconds - (time.perf_counter() - started)) / iterations_done

    def run_ours(quadratic, x0):
        result = minimize_lbfgs(quadratic, x0, iterations, gradient_tolerance=0.0)
        return result.iterations, result.evaluations

    def run_scipy(quadratic, x0):
        result = scipy.optimize.minimize(quadratic, x0, jac=True, method="L-BFGS-B",
                                         options={"maxiter": iterations, "gtol": 0.0, "ftol": 0.0})
        return result.nit, result.nfev

    ours, theirs = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(rounds):
            ours.append(per_iteration(run_ours, np.float32))
            theirs.append(per_iteration(run_scipy, np.float64))
    return {"ours": statistics.median(ours), "scipy": statistics.median(theirs)}


def measure_large(worker, images, iterations: int) -> dict:
    """Time L-BFGS iterations on 60,000 x 784 images, skipping the first iteration."""
    from sae_core.config import SAEConfig
    from sae_core.training import train

    bound = statistics.median(worker.bound(len(images), 200, repeats=3))
    time.sleep(SETTLE_SECONDS)
    result = train(SAEConfig(max_iterations=iterations), images)
    seconds = [entry["seconds"] for entry in result.history]
    per_iteration = (seconds[-1] - seconds[0]) / (len(seconds) - 1)
    bound = statistics.median([bound, *worker.bound(len(images), 200, repeats=2)])
    return {"per_iteration": per_iteration, "bound": bound, "samples": len(images),
            "evaluations": result.metrics["evaluations"], "iterations": result.metrics["iterations"]}


def measure_warm_start(images, cold_previous, base_config) -> dict:
    """Compare cold and warm starts after rho moves from 0.1 to 0.05.

    The target is the cold run's final cost times (1 + GOOD_MOSAIC_TOLERANCE). Each run's
    time to a good mosaic is its training time at the first iteration at or below it.
    The warm run starts from the rho = 0.1 model and stops once it gets there.
    """
    import dataclasses

    from sae_core.lbfgs import StopOptimization
    from sae_core.training import train

    config = dataclasses.replace(base_config, sparsity_target=0.05)
    cold = train(config, images)
    target = cold.metrics["cost"] * (1.0 + GOOD_MOSAIC_TOLERANCE)
    cold_hit = next(entry for entry in cold.history if entry["cost"] <= target)

    def stop_when_good(progress):
        if progress.cost <= target:
            raise StopOptimization()

    warm = train(config, images, progress=stop_when_good, start_from=cold_previous)
    warm_hit = warm.history[-1]
    reached = warm_hit["cost"] <= target
    return {
        "cold_final_cost": cold.metrics["cost"], "target_cost": target,
        "cold_iterations": cold_hit["iteration"], "cold_seconds": cold_hit["seconds"],
        "cold_total_seconds": cold.metrics["seconds"],
        "warm_iterations": warm_hit["iteration"], "warm_seconds": warm_hit["seconds"],
        "warm_reached": reached, "warm_cost": warm_hit["cost"],
    }


# ----------------------------------------------------------------------------- report

def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(results: dict) -> str:
    """Format the results as the table this script prints."""
    machine = results["machine"]
    bound = results["bound_ms"]
    lines = [
        f"SAE Explorer training benchmark, {machine['date']}",
        *([f"WARNING: other programs used {machine['others_cores']:.2f} of the {machine['cores']} cores on "
           "average during this run. OpenBLAS slows down more than TensorFlow when cores are shared, so "
           "the bound and the reference come out slow and these ratios flatter SAE Explorer; rerun on a "
           "quiet machine."] if machine["others_cores"] > BUSY_CORES else []),
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']:.0f} GiB; "
        f"load average {machine['load_before']} at the start; other programs used "
        f"{machine['others_cores']:.2f} cores on average during the run",
        f"software: Python {machine['python']}, NumPy {machine['numpy']}, SciPy {machine['scipy']}, "
        f"TensorFlow {machine['tensorflow']}",
        f"NumPy BLAS: {machine['blas']}" + (f" (unset for this run: {machine['unset']})" if machine["unset"] else ""),
        f"matmul lower bound, m={results['samples']:,}: {bound['median']:.1f} ms per evaluation "
        f"(median of {bound['count']} samples taken between training segments, min {bound['min']:.1f}, "
        f"max {bound['max']:.1f}; {bound['gflops']:.0f} GFLOP/s at the median)",
        "",
        f"{'target':<7}{'measure':<62}{'measured':>10}  {'goal':<14}",
    ]
    t1, t2 = results["target1"], results["target2"]
    lines.append(f"{'1':<7}{'time per L-BFGS iteration / matmul bound, m=' + format(results['samples'], ','):<62}"
                 f"{t1['ratio']:>10.2f}  {'<= 1.5':<14}{verdict(t1['ratio'] <= 1.5)}")
    lines.append(f"{'2':<7}{'reference NumPy+SciPy time / our time, original run':<62}"
                 f"{t2['speedup']:>10.2f}  {'>= 4':<14}{verdict(t2['speedup'] >= 4)}")
    lines.append(f"{'2':<7}{'final cost, (ours - reference) / reference':<62}"
                 f"{100 * t2['cost_change']:>9.2f}%  {'<= 0, |.| <= 1%':<14}"
                 f"{verdict(t2['cost_change'] <= 0 and abs(t2['cost_change']) <= 0.01)}")
    lines += [
        "",
        "details",
        f"  ours: {t2['ours_seconds']:.1f} s for {t2['ours_iterations']} iterations "
        f"({t2['ours_evaluations']} evaluations), {1000 * t1['per_iteration']:.1f} ms per iteration, "
        f"final cost {t2['ours_cost']:.4f}, mean activation {t2['mean_activation']:.4f}",
        f"  target 1 against the fastest bound sample instead (the pessimistic reading): "
        f"{t1['ratio_to_fastest']:.2f}",
        f"  fastest segment against fastest segment, the reading least affected by other programs: "
        f"target 1 {t1['fastest_segments']:.2f}, target 2 {t2['fastest_segments']:.2f}",
        f"  target 1 per segment (time per iteration / bound sampled right after it): median "
        f"{t1['segment_median']:.2f}, range {t1['segment_min']:.2f}-{t1['segment_max']:.2f}",
        f"  target 2 per segment (reference time per iteration / ours, alternating segments): median "
        f"{t2['segment_speedup_median']:.2f}, range {t2['segment_speedup_min']:.2f}-{t2['segment_speedup_max']:.2f}",
        f"  one cost-and-gradient evaluation alone: {results['objective']['evaluation'] * 1000:.1f} ms, "
        f"{results['objective']['evaluation'] / results['objective']['bound']:.2f} x the bound beside it",
        f"  tracing the TensorFlow function once per process: {results['trace_seconds']:.1f} s (not in the times above)",
        f"  reference (float64 NumPy, SciPy L-BFGS-B): {t2['reference_seconds']:.1f} s for "
        f"{t2['reference_iterations']} iterations ({t2['reference_evaluations']} evaluations), "
        f"final cost {t2['reference_cost']:.4f} ({t2['reference_message']})",
    ]
    scipy_tf = results.get("scipy_on_tf")
    if scipy_tf:
        lines.append(
            f"  SciPy L-BFGS-B on the same TensorFlow objective: {scipy_tf['seconds']:.1f} s for "
            f"{scipy_tf['iterations']} iterations ({scipy_tf['evaluations']} evaluations), "
            f"{1000 * scipy_tf['seconds'] / max(scipy_tf['iterations'], 1):.1f} ms per iteration, "
            f"final cost {scipy_tf['cost']:.4f}")
    bookkeeping = results.get("bookkeeping")
    if bookkeeping:
        lines.append(
            f"  optimiser's own work per iteration at {results['n_parameters']:,} parameters (trivial objective, "
            f"one BLAS thread): sae_core.lbfgs {1000 * bookkeeping['ours']:.1f} ms, SciPy L-BFGS-B "
            f"{1000 * bookkeeping['scipy']:.1f} ms")
    large = results.get("large")
    if large:
        lines.append(
            f"  {large['samples']:,} x 784 ({results['large_source']}): {large['per_iteration']:.2f} s per "
            f"iteration, {large['per_iteration'] / large['bound']:.2f} x its bound of {large['bound']:.2f} s "
            f"({large['evaluations']} evaluations in {large['iterations']} iterations)")
    warm = results.get("warm_start")
    if warm:
        lines.append(
            f"  warm start, rho 0.1 -> 0.05: a good mosaic (cost <= {warm['target_cost']:.4f}, within "
            f"{100 * GOOD_MOSAIC_TOLERANCE:.0f}% of the cold 400-iteration cost {warm['cold_final_cost']:.4f}) "
            f"after {warm['warm_iterations']} iterations / {warm['warm_seconds']:.1f} s warm"
            f"{'' if warm['warm_reached'] else ' (NOT reached)'} vs {warm['cold_iterations']} iterations / "
            f"{warm['cold_seconds']:.1f} s cold: {warm['cold_seconds'] / warm['warm_seconds']:.1f} x sooner")
    return "\n".join(lines)


def summarise_interleaved(run: dict, samples: int, n_hidden: int) -> dict:
    """Turn the segments of run_interleaved into the target 1 and 2 figures."""
    result, reference, segments = run["result"], run["reference"], run["segments"]
    ours_segments = [(n, seconds, bound) for n, seconds, bound, _, _ in segments if n]
    weighted_bound = sum(n * bound for n, _, bound in ours_segments) / sum(n for n, _, _ in ours_segments)
    per_iteration = run["seconds"] / result.metrics["iterations"]
    segment_ratios = [(seconds / n) / bound for n, seconds, bound in ours_segments]
    speedups = [(ref_seconds / ref_n) / (seconds / n)
                for n, seconds, _, ref_n, ref_seconds in segments if n and ref_n]
    return {
        "bound_ms": summarise_bound([bound for _, _, bound, _, _ in segments], samples, n_hidden),
        "target1": {
            "per_iteration": per_iteration, "ratio": per_iteration / weighted_bound,
            "ratio_to_fastest": per_iteration / min(bound for _, _, bound in ours_segments),
            "fastest_segments": min(seconds / n for n, seconds, _ in ours_segments)
            / min(bound for _, _, bound in ours_segments),
            "segment_median": statistics.median(segment_ratios),
            "segment_min": min(segment_ratios), "segment_max": max(segment_ratios),
        },
        "target2": {
            "speedup": reference["seconds"] / run["seconds"],
            "segment_speedup_median": statistics.median(speedups),
            "fastest_segments": min(ref_seconds / ref_n for _, _, _, ref_n, ref_seconds in segments if ref_n)
            / min(seconds / n for n, seconds, _, _, _ in segments if n),
            "segment_speedup_min": min(speedups), "segment_speedup_max": max(speedups),
            "cost_change": (result.metrics["cost"] - reference["cost"]) / reference["cost"],
            "ours_seconds": run["seconds"], "ours_iterations": result.metrics["iterations"],
            "ours_evaluations": result.metrics["evaluations"], "ours_cost": result.metrics["cost"],
            "mean_activation": result.metrics["mean_activation"],
            "reference_seconds": reference["seconds"],
            "reference_iterations": reference["total_iterations"],
            "reference_evaluations": reference["evaluations"], "reference_cost": reference["cost"],
            "reference_message": reference["message"],
        },
    }


def summarise_bound(samples: list[float], m: int, n_hidden: int) -> dict:
    median = statistics.median(samples)
    return {"median": 1000 * median, "min": 1000 * min(samples), "max": 1000 * max(samples),
            "count": len(samples), "gflops": 5 * 2 * m * N_PIXELS * n_hidden / median / 1e9}


def machine_facts(worker) -> dict:
    import scipy

    from sae_core.tf_quiet import tf

    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30,
        "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
        "tensorflow": tf.__version__, "blas": worker.blas(),
        "unset": os.environ.get("SAE_BENCHMARK_UNSET", ""),
        "load_before": " ".join(f"{value:.1f}" for value in os.getloadavg()),
    }


# ----------------------------------------------------------------------------- whole

def main() -> int:
    parser = argparse.ArgumentParser(description="Measure SAE Explorer's training speed targets.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1,000 digits, 40 iterations, 6,000 digits for the large case")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--skip-scipy-on-tf", action="store_true",
                        help="skip SciPy's L-BFGS-B on the TensorFlow objective (saves about 40 s)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker()
        return 0

    import tempfile

    from sae_core.config import SAEConfig
    from sae_core.data import load_dataset

    samples, iterations, large_samples = (1000, 40, 6000) if args.quick else (5000, 400, 60000)
    segment = 10 if args.quick else 25
    dataset = load_dataset("embedded")
    images = dataset.images[:samples]
    config = SAEConfig(n_samples=samples, max_iterations=iterations)
    worker = NumpyWorker()
    results = {"samples": samples, "iterations": iterations,
               "n_parameters": config.n_hidden * 2 * N_PIXELS + config.n_hidden + N_PIXELS}
    try:
        results["machine"] = machine_facts(worker)
        others = OtherProgramsCpu(worker.process.pid)
        progress = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

        progress("tracing the TensorFlow function")
        results["trace_seconds"] = warm_up_tracing(dataset.images)
        results["objective"] = measure_objective(worker, images, config, rounds=5)

        progress(f"training {iterations} iterations on {samples:,} digits, ours and the "
                 "NumPy + SciPy reference in alternating segments (targets 1 and 2)")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "images.npy")
            np.save(path, images)
            run = run_interleaved(worker, images, config, segment, path)
        results.update(summarise_interleaved(run, samples, config.n_hidden))
        result = run["result"]

        if not args.skip_scipy_on_tf:
            progress("training with SciPy's L-BFGS-B on the TensorFlow objective")
            results["scipy_on_tf"] = run_scipy_on_tf_objective(images, config)

        progress("timing the optimisers' own work per iteration")
        results["bookkeeping"] = measure_bookkeeping(results["n_parameters"], iterations=50, rounds=3)

        progress(f"timing iterations on {large_samples:,} digits")
        large_images = np.tile(dataset.images, (-(-large_samples // len(dataset)), 1))[:large_samples]
        results["large_source"] = (f"the {len(dataset):,} embedded digits tiled; full MNIST is not "
                                   "available offline")
        results["large"] = measure_large(worker, large_images, iterations=4 if args.quick else 8)
        del large_images

        progress("warm start against cold start after rho 0.1 -> 0.05")
        results["warm_start"] = measure_warm_start(images, result.weights, config)
        results["machine"]["others_cores"] = others.cores()
    finally:
        worker.close()

    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
