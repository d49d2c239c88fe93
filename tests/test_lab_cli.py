"""`python -m sae_core reconstruct`: panels and error for a good image, one line for a bad one."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sae_core import cli, features, lab_charts
from sae_core.config import SAEConfig
from sae_core.lab_cli import PANEL_SCALE
from sae_core.preprocess import preprocess_digit
from sae_core.store import save_model_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, mnist):
    """A folder as `train --out` writes it, for a small model trained on shuffled digits."""
    from sae_core.training import train

    rows = np.random.default_rng(5).permutation(len(mnist))[:600]
    result = train(SAEConfig(n_hidden=24, max_iterations=40, seed=2), mnist.images[rows])
    directory = tmp_path_factory.mktemp("model")
    save_model_dir(directory, result.weights, result.metrics)
    return directory, result.weights


@pytest.fixture
def digit_png(tmp_path, mnist) -> Path:
    """A real MNIST 4 drawn dark on white at 140x140, as a PNG file."""
    digit = mnist.images[np.flatnonzero(mnist.labels == 4)[0]].reshape(28, 28)
    paper = Image.fromarray(np.round((1 - digit) * 255).astype(np.uint8)).resize((140, 140))
    path = tmp_path / "four.png"
    paper.save(path)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sae_core", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_reconstruct_writes_panels_and_error(model_dir, digit_png, tmp_path, capsys):
    directory, weights = model_dir
    out = tmp_path / "panels.png"

    status = cli.main(["reconstruct", "--model", str(directory), "--image", str(digit_png), "--out", str(out)])

    assert status == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("per-pixel MSE: ")
    expected = features.analyse_digit(weights, preprocess_digit(digit_png.read_bytes()))
    assert float(printed.split(": ")[1]) == pytest.approx(expected.mse, abs=1e-6)

    panels = np.asarray(Image.open(out))
    side = 28 * PANEL_SCALE
    assert panels.shape == (side, 3 * side + 2 * 4, 3)
    left = panels[:, :side, 0]
    assert np.array_equal(left, lab_charts.digit_image(expected.pixels, PANEL_SCALE))
    middle = panels[:, side + 4 : 2 * side + 4, 0]
    assert np.array_equal(middle, lab_charts.digit_image(expected.reconstruction, PANEL_SCALE))


def test_reconstruct_from_shell(model_dir, digit_png, tmp_path):
    directory, _weights = model_dir
    out = tmp_path / "panels.png"

    finished = run_cli("reconstruct", "--model", str(directory), "--image", str(digit_png), "--out", str(out))

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("per-pixel MSE: ")
    assert out.is_file()


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("empty.png", b"", "empty"),
        ("notes.png", b"shopping list: milk, eggs\n", "PNG, JPEG, GIF, BMP or WebP"),
        ("blank.png", "blank", "blank"),
        ("thin.png", "thin", "closer to square"),
    ],
)
def test_bad_image_one_line_status_2(name, content, words, model_dir, tmp_path, capsys):
    directory, _weights = model_dir
    path = tmp_path / name
    if content == "blank":
        Image.new("L", (100, 100), 255).save(path)
    elif content == "thin":
        Image.new("L", (1, 100_000), 255).save(path)
    else:
        path.write_bytes(content)
    out = tmp_path / "out.png"

    status = cli.main(["reconstruct", "--model", str(directory), "--image", str(path), "--out", str(out)])

    assert status == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1
    assert str(path) in error_lines[0]
    assert words in error_lines[0]
    assert not out.exists()


def test_missing_image_one_line(model_dir, tmp_path, capsys):
    directory, _weights = model_dir
    missing = tmp_path / "nowhere.png"

    status = cli.main(["reconstruct", "--model", str(directory), "--image", str(missing), "--out", str(tmp_path / "o.png")])

    assert status == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert error_lines == [f"error: {missing}: the image file does not exist; check the path."]


def test_truncated_image_from_shell(model_dir, digit_png, tmp_path):
    directory, _weights = model_dir
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(digit_png.read_bytes()[:200])

    finished = run_cli("reconstruct", "--model", str(directory), "--image", str(damaged), "--out", str(tmp_path / "o.png"))

    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert "damaged" in lines[0]


def test_missing_model_folder(digit_png, tmp_path, capsys):
    status = cli.main(["reconstruct", "--model", str(tmp_path / "no-model"), "--image", str(digit_png),
                       "--out", str(tmp_path / "o.png")])

    assert status == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1
    assert "does not exist" in error_lines[0]


def test_unwritable_output(model_dir, digit_png, tmp_path, capsys):
    directory, _weights = model_dir
    out = tmp_path / "missing-folder" / "panels.png"

    status = cli.main(["reconstruct", "--model", str(directory), "--image", str(digit_png), "--out", str(out)])

    assert status == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1
    assert "could not be written" in error_lines[0]


def test_help_lists_reconstruct():
    text = io.StringIO()
    parser = cli.build_parser()
    parser.print_help(file=text)

    assert "reconstruct" in text.getvalue()
