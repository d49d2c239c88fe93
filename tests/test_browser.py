"""The real app in headless Chromium: draw, clear, pick and upload a digit in the Digit
lab, then inspect a hidden unit, through Playwright.

The app starts on the shipped models in models/, so no training happens. Set
SAE_EXPLORER_SCREENSHOTS to a folder to keep the screenshots (they always go to a
temporary folder first).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
START_SECONDS = 180  # the server and the first run of the script, on a loaded machine
STEP_MS = 90_000  # each wait for the app to respond to an action


def chromium_path() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with status {server.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url}/_stcore/health did not return ok within {seconds} s")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed at /usr/bin/chromium or on PATH; .ci/run installs it")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    return path


@pytest.fixture(scope="module")
def app_url(chromium, tmp_path_factory):
    """The real app served on a free 127.0.0.1 port; stopped by its PID afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    environment = dict(os.environ, SAE_EXPLORER_MODELS=str(tmp_path_factory.mktemp("user-models")))
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                "--server.port", str(port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
            ],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(url, server, START_SECONDS)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        print(log_path.read_text()[-2000:])


@pytest.fixture
def page(chromium, app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        # Nothing may leave this machine: only the app's own address is served.
        page.route(re.compile(r"^(?!http://127\.0\.0\.1:).*"), lambda route: route.abort())
        page.set_default_timeout(STEP_MS)
        page.goto(app_url)
        yield page
        browser.close()


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("SAE_EXPLORER_SCREENSHOTS")
    if keep:
        shutil.copy(path, Path(keep) / name)
    return path


def draw(page, canvas, points: list[tuple[float, float]]) -> None:
    """Press the mouse at the first point and move through the others in small steps."""
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for step in range(1, 11):
            page.mouse.move(box["x"] + x0 + (x1 - x0) * step / 10, box["y"] + y0 + (y1 - y0) * step / 10)
    page.mouse.up()


def digit_png_bytes() -> bytes:
    """A hand-drawn-looking 1 on white paper, 120 x 160 px."""
    paper = np.full((160, 120), 255, dtype=np.uint8)
    paper[20:140, 55:68] = 0
    paper[20:35, 40:60] = 0
    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, format="PNG")
    return buffer.getvalue()


def open_lab(page):
    page.get_by_role("tab", name="Digit lab").click()
    return page.get_by_role("tabpanel", name="Digit lab")


def wait_until_run_finished(page) -> None:
    """Wait until no element is left over from an earlier run of the script."""
    page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0")


def expect_analysis(page, lab, caption: re.Pattern) -> None:
    """Wait until the lab shows the analysis of the input named by `caption`."""
    lab.get_by_text(caption).wait_for()
    wait_until_run_finished(page)
    lab.get_by_text("reconstruction x̂").wait_for()
    lab.get_by_text("per-pixel MSE").first.wait_for()
    charts = lab.locator("[data-testid='stVegaLiteChart'] svg.marks, [data-testid='stVegaLiteChart'] canvas")
    charts.nth(1).wait_for()
    lab.get_by_text(re.compile(r"units are above 0\.5")).wait_for()


def test_draw_clear_pick_upload_inspect(page, tmp_path):
    from playwright.sync_api import expect

    lab = open_lab(page)

    # Draw a 7 on the canvas with the mouse.
    canvas = lab.locator("[class*='st-key-lab_canvas'] canvas.upper-canvas")
    canvas.wait_for()
    lab.get_by_text("Draw a digit in the box").wait_for()
    draw(page, canvas, [(70, 60), (210, 60), (180, 130), (150, 200), (130, 250)])
    expect_analysis(page, lab, re.compile(r"^Your drawing"))
    save_screenshot(page, tmp_path, "lab_drawn.png")

    # Clearing mounts an empty canvas without reloading the page.
    lab.get_by_role("button", name="Clear canvas").click()
    lab.get_by_text("Draw a digit in the box").wait_for()
    wait_until_run_finished(page)
    expect(lab.get_by_text("reconstruction x̂")).to_have_count(0)
    expect(lab.locator("[class*='st-key-lab_canvas'] canvas.upper-canvas")).to_have_count(1)

    # Pick a 3 from the data, then another one at random.
    lab.get_by_text("Pick from the data").click()
    lab.get_by_text(re.compile(r"Row \d+ of the data")).wait_for()
    lab.get_by_role("combobox", name="Class").click()
    page.get_by_role("option", name="3", exact=True).click()
    lab.get_by_text(re.compile(r"Row \d+ of the data, label 3")).wait_for()
    first = lab.get_by_text(re.compile(r"Row \d+ of the data")).inner_text()
    for _attempt in range(3):  # two random 3s may coincide
        lab.get_by_role("button", name="Random digit").click()
        page.wait_for_timeout(1500)
        if lab.get_by_text(re.compile(r"Row \d+ of the data, label 3")).inner_text() != first:
            break
    assert lab.get_by_text(re.compile(r"Row \d+ of the data, label 3")).inner_text() != first
    expect_analysis(page, lab, re.compile(r"Row \d+ of the data, label 3"))

    # Upload a PNG kept in memory, then a file that is not an image.
    lab.get_by_text("Upload", exact=True).click()
    uploader = lab.locator("[data-testid='stFileUploaderDropzoneInput']")
    uploader.set_input_files(files=[{"name": "one.png", "mimeType": "image/png", "buffer": digit_png_bytes()}])
    expect_analysis(page, lab, re.compile(r"^Uploaded image"))
    save_screenshot(page, tmp_path, "lab_uploaded.png")
    uploader.set_input_files(files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}])
    lab.get_by_text("is not a PNG, JPEG, GIF, BMP or WebP image").wait_for()
    wait_until_run_finished(page)
    expect(lab.get_by_text("reconstruction x̂")).to_have_count(0)

    # Inspect unit 43 by clicking its tile in the mosaic, then unit 7 by number.
    page.get_by_role("tab", name="Feature inspector").click()
    inspector = page.get_by_role("tabpanel", name="Feature inspector")
    tiles = inspector.locator("[class*='st-key-inspector_mosaic'] svg.marks image")
    tiles.nth(43).wait_for()
    tiles.nth(43).click()
    inspector.get_by_role("heading", name="Hidden unit 43").wait_for()
    expect(inspector.locator(".st-key-inspector_unit input")).to_have_value("43")

    number = inspector.locator(".st-key-inspector_unit input")
    number.fill("7")
    number.press("Enter")
    inspector.get_by_role("heading", name="Hidden unit 7").wait_for()
    inspector.get_by_text("W1 row 7: the input filter").wait_for()
    inspector.get_by_text("W2 column 7: what the unit adds").wait_for()
    inspector.get_by_text("Activation a_7 over all").wait_for()
    inspector.get_by_text("The 9 digits that activate unit 7 most").wait_for()
    expect(inspector.get_by_text(re.compile(r"^label \d, a = "))).to_have_count(9)
    inspector.get_by_text("dead units").wait_for()
    inspector.get_by_text("saturated units").wait_for()
    shot = save_screenshot(page, tmp_path, "lab_screenshot.png")

    # Clicking the mosaic still works after the number input moved away from its selection.
    tiles.nth(43).click()
    inspector.get_by_role("heading", name="Hidden unit 43").wait_for()
    tiles.nth(120).click()
    inspector.get_by_role("heading", name="Hidden unit 120").wait_for()

    assert shot.stat().st_size > 10_000
