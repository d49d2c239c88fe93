"""Latency and memory of the SAE Explorer app in a real browser (Playwright + Chromium).

Starts `streamlit run streamlit_app.py` on a free 127.0.0.1 port with an empty folder
for the models it trains (the shipped models in models/ stay readable), drives it with
headless Debian Chromium and prints each measurement next to its goal:
  - cold start: server process start to the first complete screen;
  - slider release to the first W1 mosaic of the new training, and to training
    finished, with a random start (first in the process and later) and a warm start;
  - slider release to a configuration trained before being on screen;
  - the server's resident memory (VmRSS) after 1 and after 20 retrains of small configs.
Times are wall-clock in this process: from the moment Playwright has sent the key-up
to the moment a check inside the page, run every animation frame, finds the new state.

    python benchmarks/app_latency.py
    python benchmarks/app_latency.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
RHO_LABEL = "ρ (sparsity target)"
FINAL_CAPTION = "each tile is one row of W1"
WAIT_MS = 600_000  # maximum wait for one state: a 400-iteration training on a busy machine

# Screen state read inside the page: the script's run state, and the captions and
# metric deltas of elements that are not stale (left over from the previous run).
SCREEN_STATE_JS = """() => {
  const fresh = (element) => {
    const box = element.closest('[data-testid="stElementContainer"]');
    return !box || box.getAttribute('data-stale') !== 'true';
  };
  const texts = (selector) => [...document.querySelectorAll(selector)].filter(fresh)
      .map((element) => element.textContent.trim());
  const app = document.querySelector('[data-testid="stApp"]');
  return {
    script: app ? app.getAttribute('data-test-script-state') : null,
    captions: texts('[data-testid="stImageCaption"]'),
    deltas: texts('[data-testid="stMetricDelta"]'),
  };
}"""

COMPLETE_JS = """([rho, finalCaption]) => {
  const state = (%s)();
  return state.script === 'notRunning'
      && state.captions.some((text) => text.startsWith(finalCaption))
      && state.captions.some((text) => text.includes('original (left) and regenerated'))
      && !state.captions.some((text) => text.startsWith('W1 at iteration'))
      && state.deltas.some((text) => text.endsWith('vs ρ = ' + rho));
}""" % SCREEN_STATE_JS

TRAINING_MOSAIC_JS = """() => (%s)().captions.some((text) => /^W1 at iteration \\d+ \\(training\\)$/.test(text))""" % SCREEN_STATE_JS


# ----------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {server.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}/_stcore/health did not return ok within {seconds} s")


def resident_mib(pid: int) -> float:
    """Return VmRSS of a process in MiB, read from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS line in /proc/{pid}/status")


def rho_text(rho: float) -> str:
    return f"{rho:g}"


def training_seconds(models: Path, rho: float) -> dict | None:
    """Return the stored metrics of the newest model trained with this rho, if any."""
    candidates = sorted(models.glob(f"rho{rho_text(rho)}_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        return None
    return json.loads(candidates[-1].read_text())


def measure_headless_training(samples: int, iterations: int) -> float:
    """Time train() for the app's default config in a fresh process, without the app."""
    script = (
        "import json, time\n"
        "from sae_core.config import SAEConfig\n"
        "from sae_core.data import load_dataset\n"
        "from sae_core.training import train, warm_up\n"
        "images = load_dataset('embedded').images\n"
        "warm_up()\n"
        f"config = SAEConfig(sparsity_target=0.09, n_samples={samples}, max_iterations={iterations})\n"
        "started = time.perf_counter()\n"
        "train(config, images)\n"
        "print(json.dumps(time.perf_counter() - started))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- parts

class AppSession:
    """One app server and one browser page on it, with timed actions."""

    def __init__(self, page, server: subprocess.Popen, models: Path):
        self.page = page
        self.server = server
        self.models = models

    def wait_complete(self, rho: float) -> float:
        self.page.wait_for_function(COMPLETE_JS, arg=[rho_text(rho), FINAL_CAPTION],
                                    polling="raf", timeout=WAIT_MS)
        return time.perf_counter()

    def wait_training_mosaic(self) -> float:
        self.page.wait_for_function(TRAINING_MOSAIC_JS, polling="raf", timeout=WAIT_MS)
        return time.perf_counter()

    def press_on_slider(self, label: str, key: str) -> float:
        """Focus a slider, press and release a key; return the time of the release."""
        self.page.locator(f'input[type="range"][aria-label="{label}"]').focus()
        self.page.keyboard.press(key)
        return time.perf_counter()

    def slider_value(self, label: str) -> str:
        return self.page.locator(f'input[type="range"][aria-label="{label}"]').get_attribute("aria-valuetext")

    def retrain(self, key: str, new_rho: float) -> dict:
        """Move rho by one step, then time the first training mosaic and the finished screen."""
        released = self.press_on_slider(RHO_LABEL, key)
        first_mosaic = self.wait_training_mosaic()
        done = self.wait_complete(new_rho)
        metrics = training_seconds(self.models, new_rho) or {}
        return {"rho": new_rho, "first_mosaic": first_mosaic - released, "finished": done - released,
                "training_seconds": metrics.get("seconds"), "iterations": metrics.get("iterations")}

    def show_trained(self, key: str, new_rho: float) -> float:
        released = self.press_on_slider(RHO_LABEL, key)
        return self.wait_complete(new_rho) - released

    def set_warm_start(self, on: bool) -> None:
        box = self.page.get_by_role("checkbox", name="Warm start")
        if box.is_checked() != on:
            self.page.get_by_text("Warm start", exact=True).click()
            self.page.wait_for_function(f"() => (({SCREEN_STATE_JS})()).script === 'notRunning'",
                                        polling="raf", timeout=WAIT_MS)


def measure_memory(session: AppSession, start_rho: float, retrains: int) -> dict:
    """Shrink the config, then retrain `retrains` times and read the server's RSS.

    The sample count goes to its minimum (Home key) and the iteration count to about
    a tenth of its range (Home, then Page Up), so each retrain takes a second or so.
    """
    for label, keys in (("Training samples", ["Home"]), ("L-BFGS iterations", ["Home", "PageUp"])):
        for key in keys:
            stored = len(list(session.models.glob("*/metrics.json")))
            session.press_on_slider(label, key)
            # rho stays the same, so wait for the new model's files before the screen check.
            deadline = time.monotonic() + WAIT_MS / 1000
            while len(list(session.models.glob("*/metrics.json"))) == stored:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no model was stored after pressing {key} on {label!r}")
                time.sleep(0.05)
            session.wait_complete(start_rho)
    small = {"samples": session.slider_value("Training samples"),
             "iterations": session.slider_value("L-BFGS iterations")}

    rho = start_rho
    readings = []
    for _ in range(retrains):
        rho = round(rho + 0.01, 2)
        session.press_on_slider(RHO_LABEL, "ArrowRight")
        session.wait_complete(rho)
        time.sleep(0.5)  # let the script's last run and the garbage collector settle
        readings.append(resident_mib(session.server.pid))
    return {"after_one": readings[0], "after_all": readings[-1], "retrains": retrains,
            "readings": readings, "small_config": small}


# ----------------------------------------------------------------------------- report

def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(results: dict) -> str:
    rows = []

    def row(measure, value, unit, goal, ok):
        rows.append(f"{measure:<72}{value:>9.2f} {unit:<3} {goal:<10}{verdict(ok)}")

    row("cold start: server start to first complete screen", results["cold_start"], "s", "<= 10 s",
        results["cold_start"] <= 10)
    for name, label in (("first_retrain", "random start, first in the process"),
                        ("retrain", "random start"), ("warm_retrain", "warm start")):
        run = results[name]
        row(f"release -> first training mosaic ({label})", run["first_mosaic"], "s",
            "<= 1 s", run["first_mosaic"] <= 1)
    headless = results["headless_seconds"]
    for name, label in (("retrain", "random start"), ("warm_retrain", "warm start")):
        run = results[name]
        ratio = run["finished"] / headless
        row(f"release -> training finished / headless train() ({label})", ratio, "x",
            "<= 1.1", ratio <= 1.1)
    shown = results["trained_before"]
    row(f"release -> configuration trained before on screen (worst of {len(shown)})", max(shown), "s",
        "<= 0.3 s", max(shown) <= 0.3)
    memory = results["memory"]
    growth = memory["after_all"] / memory["after_one"]
    row(f"server RSS after {memory['retrains']} retrains / after 1", growth, "x", "<= 1.2",
        growth <= 1.2)

    lines = [
        f"SAE Explorer app benchmark, {results['date']}: streamlit run {results['app']}",
        f"machine: {results['cpu']}, {os.cpu_count()} cores; load average {results['load']} at the start",
        "",
        *rows,
        "",
        "details",
    ]
    for name in ("first_retrain", "retrain", "warm_retrain"):
        run = results[name]
        lines.append(
            f"  {name}: rho -> {run['rho']:g}, first mosaic {run['first_mosaic']:.2f} s, finished "
            f"{run['finished']:.1f} s, training inside the app {run['training_seconds'] or float('nan'):.1f} s "
            f"for {run['iterations']} iterations")
    lines += [
        f"  headless train() of the same config in a fresh process: {headless:.1f} s",
        "  trained before, each: " + ", ".join(f"{value:.2f} s" for value in shown),
        "  RSS after each retrain (MiB): " + ", ".join(f"{value:.0f}" for value in memory["readings"]),
        f"  small config for the retrains: {memory['small_config']['samples']} samples, "
        f"{memory['small_config']['iterations']} iterations",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- whole

def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the app's latency and memory targets in Chromium.")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--retrains", type=int, default=20, help="small retrains for the memory reading")
    parser.add_argument("--keep-log", help="copy the server's log to this file")
    parser.add_argument("--app", default="streamlit_app.py",
                        help="script to serve, relative to the repository (default: streamlit_app.py)")
    parser.add_argument("--streamlit-arg", action="append", default=[],
                        help="extra argument for `streamlit run`, e.g. --streamlit-arg=--runner.postScriptGC=false")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    results = {
        "app": " ".join([args.app, *args.streamlit_arg]),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu_model(),
        "load": " ".join(f"{value:.1f}" for value in os.getloadavg()),
    }
    print("timing train() without the app", file=sys.stderr, flush=True)
    results["headless_seconds"] = measure_headless_training(samples=5000, iterations=400)

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        models = Path(folder) / "models"
        models.mkdir()
        log_path = Path(folder) / "streamlit.log"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Nothing may leave this machine: only the app's own address is served.
        page.route(re.compile(r"^(?!http://127\.0\.0\.1:).*"), lambda route: route.abort())

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        environment = dict(os.environ, SAE_EXPLORER_MODELS=str(models))
        started = time.perf_counter()
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", args.app,
                 "--server.port", str(port), "--server.address", "127.0.0.1",
                 "--server.headless", "true", "--browser.gatherUsageStats", "false",
                 *args.streamlit_arg],
                cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            print("cold start", file=sys.stderr, flush=True)
            wait_for_health(url, server, 120)
            page.goto(url)
            session = AppSession(page, server, models)
            results["cold_start"] = session.wait_complete(0.1) - started

            print("retraining after slider moves", file=sys.stderr, flush=True)
            results["first_retrain"] = session.retrain("ArrowLeft", 0.09)
            print(f"  {results['first_retrain']}", file=sys.stderr, flush=True)
            results["retrain"] = session.retrain("ArrowLeft", 0.08)
            print(f"  {results['retrain']}", file=sys.stderr, flush=True)
            session.set_warm_start(True)
            results["warm_retrain"] = session.retrain("ArrowLeft", 0.07)
            print(f"  {results['warm_retrain']}", file=sys.stderr, flush=True)
            session.set_warm_start(False)

            print("showing configurations trained before", file=sys.stderr, flush=True)
            results["trained_before"] = [session.show_trained("ArrowRight", rho) for rho in (0.08, 0.09, 0.1)]
            print(f"  {results['trained_before']}", file=sys.stderr, flush=True)

            print(f"memory over {args.retrains} small retrains", file=sys.stderr, flush=True)
            results["memory"] = measure_memory(session, 0.1, args.retrains)
        except Exception:
            print(f"partial results: {json.dumps(results)}", file=sys.stderr, flush=True)
            page.screenshot(path=str(Path(args.keep_log or "app_latency").with_suffix(".failure.png")))
            raise
        finally:
            browser.close()
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
            if args.keep_log:
                Path(args.keep_log).write_text(log_path.read_text())

    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
