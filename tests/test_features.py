"""Inspector statistics, typical errors, lab pictures and charts, and whether drawn or
uploaded digits reconstruct recognisably through the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sae_core import features, lab_charts
from sae_core.config import SAEConfig
from sae_core.model import SAEWeights, encode, reconstruct
from sae_core.preprocess import preprocess_digit

N_TRAIN = 1500


@pytest.fixture(scope="module")
def shuffled_rows(mnist) -> np.ndarray:
    # The embedded digits are sorted by label, so every subset here is drawn at random.
    return np.random.default_rng(7).permutation(len(mnist))


def train_shuffled(mnist, rows, n_hidden: int, iterations: int):
    from sae_core.training import train

    config = SAEConfig(n_hidden=n_hidden, max_iterations=iterations, seed=1)
    return train(config, mnist.images[rows]).weights


@pytest.fixture(scope="module")
def model(mnist, shuffled_rows):
    """A 784-32-784 autoencoder trained for 60 iterations on 800 shuffled digits."""
    return train_shuffled(mnist, shuffled_rows[:800], n_hidden=32, iterations=60)


@pytest.fixture(scope="module")
def better_model(mnist, shuffled_rows):
    """A 784-64-784 autoencoder trained for 100 iterations on 1,500 shuffled digits."""
    return train_shuffled(mnist, shuffled_rows[:N_TRAIN], n_hidden=64, iterations=100)


@pytest.fixture(scope="module")
def heldout(shuffled_rows) -> np.ndarray:
    return shuffled_rows[N_TRAIN : N_TRAIN + 1000]


# One input


def test_analyse_digit_matches_model(model, mnist):
    x = mnist.images[42]

    analysis = features.analyse_digit(model, x.reshape(28, 28))

    assert analysis.pixels.shape == (784,)
    assert analysis.reconstruction.shape == (784,)
    assert analysis.activations.shape == (32,)
    np.testing.assert_allclose(analysis.activations, encode(model, x[None])[0], rtol=1e-6)
    np.testing.assert_allclose(analysis.reconstruction, reconstruct(model, x[None])[0], rtol=1e-6)
    assert analysis.mse == pytest.approx(float(np.mean((analysis.reconstruction - x) ** 2)), rel=1e-5)
    assert analysis.squared_error.mean() == pytest.approx(analysis.mse, rel=1e-5)


def test_analyse_digit_rejects_two_digits(model, mnist):
    with pytest.raises(ValueError, match="one digit"):
        features.analyse_digit(model, mnist.images[:2])


def test_most_active_units_order():
    activations = np.array([0.1, 0.9, 0.5, 0.9, 0.0])

    assert features.most_active_units(activations, 3).tolist() == [1, 3, 2]
    assert features.most_active_units(activations, 10).tolist() == [1, 3, 2, 0, 4]
    assert features.most_active_units(activations, 0).tolist() == []


def test_weights_digest_tracks_weights(model):
    changed = SAEWeights(W1=model.W1 + 1e-3, b1=model.b1, W2=model.W2, b2=model.b2)

    assert features.weights_digest(model) == features.weights_digest(model)
    assert features.weights_digest(changed) != features.weights_digest(model)


# Typical errors


def test_reconstruction_errors_per_pixel(model, mnist):
    images = mnist.images[:20]

    errors = features.reconstruction_errors(model, images)

    expected = np.mean((reconstruct(model, images) - images) ** 2, axis=1)
    np.testing.assert_allclose(errors, expected, rtol=1e-5)


def test_error_reference_percentiles():
    reference = features.ErrorReference(errors=np.arange(1, 101, dtype=float) / 1000, description="100 digits")

    assert reference.percentile(0.0005) == 0.0
    assert reference.percentile(0.0505) == 50.0
    assert reference.percentile(1.0) == 100.0
    assert reference.threshold() == pytest.approx(np.percentile(reference.errors, 95))
    assert reference.is_unusual(0.2)
    assert not reference.is_unusual(0.05)


def test_describe_error_three_cases():
    reference = features.ErrorReference(errors=np.arange(1, 101, dtype=float) / 1000, description="100 digits")

    low = features.describe_error(0.0105, reference)
    usual = features.describe_error(0.0705, reference)
    high = features.describe_error(0.5, reference)

    assert "lower than for 90% of the 100 digits" in low
    assert "usual range" in usual
    assert "70%" in usual
    assert "higher than for 100%" in high
    assert "not read this input as a typical digit" in high


def test_real_digits_typical_scribble_unusual(model, mnist, heldout):
    reference = features.error_reference(model, mnist.images[heldout[:500]], "500 held-out digits")
    others = features.reconstruction_errors(model, mnist.images[heldout[500:]])

    # A scribble: a random walk of thick strokes on a 280 px canvas.
    rng = np.random.default_rng(3)
    canvas = np.zeros((280, 280), dtype=np.float32)
    point = np.array([140.0, 140.0])
    for _ in range(400):
        point = np.clip(point + rng.normal(0, 12, size=2), 10, 270)
        row, column = point.astype(int)
        canvas[row - 10 : row + 10, column - 10 : column + 10] = 1.0
    scribble = features.analyse_digit(model, preprocess_digit(canvas))

    assert np.mean([reference.is_unusual(error) for error in others]) < 0.15
    assert reference.is_unusual(scribble.mse)


# Hidden units across digits


def test_unit_statistics_thresholds():
    m = 10_000
    activations = np.full((m, 4), 0.1, dtype=np.float32)
    activations[:, 1] = 0.9  # always active
    activations[:5, 2] = 0.9  # active on 0.05% of digits
    activations[: m // 2, 3] = 0.9  # active on half

    statistics = features.unit_statistics(activations)

    np.testing.assert_allclose(statistics.rho_hat, activations.mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(statistics.active_fraction, [0.0, 1.0, 0.0005, 0.5])
    assert statistics.dead.tolist() == [True, False, True, False]
    assert statistics.saturated.tolist() == [False, True, False, False]
    assert statistics.n_dead == 2
    assert statistics.n_saturated == 1


def test_unit_statistics_threshold_edges():
    # Exactly at the documented fractions a unit is neither dead nor saturated.
    m = 1000
    activations = np.zeros((m, 2), dtype=np.float32)
    activations[: round(features.DEAD_FRACTION * m), 0] = 1.0
    activations[: round(features.SATURATED_FRACTION * m), 1] = 1.0

    statistics = features.unit_statistics(activations)

    assert statistics.n_dead == 0
    assert statistics.n_saturated == 0


def test_unit_statistics_rejects_empty():
    with pytest.raises(ValueError, match="expected"):
        features.unit_statistics(np.zeros((0, 5)))


def test_trained_model_units_healthy(model, mnist):
    statistics = features.unit_statistics(encode(model, mnist.images))

    assert statistics.rho_hat.shape == (32,)
    assert np.all((statistics.rho_hat > 0) & (statistics.rho_hat < 1))
    assert statistics.n_dead + statistics.n_saturated < 32


def test_top_activating_digits(model, mnist):
    activations = encode(model, mnist.images)
    unit = 5

    rows = features.top_activating(activations, unit, 9)

    assert rows.shape == (9,)
    values = activations[rows, unit]
    assert np.all(np.diff(values) <= 0)
    assert values[-1] >= np.sort(activations[:, unit])[-9]


def test_top_activating_unknown_unit(model, mnist):
    activations = encode(model, mnist.images[:10])

    with pytest.raises(ValueError, match="choose 0 to 31"):
        features.top_activating(activations, 32)


def test_activation_histogram_counts_all():
    values = np.array([0.0, 0.01, 0.5, 0.99, 1.0])

    counts, edges = features.activation_histogram(values, bins=10)

    assert counts.sum() == 5
    assert edges[0] == 0.0
    assert edges[-1] == 1.0
    assert counts[0] == 2
    assert counts[-1] == 2


# Whole pipeline: drawn and uploaded digits reconstruct recognisably


def standardise(images: np.ndarray) -> np.ndarray:
    """Rows with mean 0 and norm 1, so a dot product is a correlation."""
    rows = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.slow
def test_reconstructions_recognisable(better_model, mnist, shuffled_rows, heldout):
    # Ten held-out digits per class, drawn three ways on a 280 px white canvas. Each
    # reconstruction is labelled by its most correlated real digit from another subset.
    references = standardise(mnist.images[shuffled_rows[-1500:]])
    reference_labels = mnist.labels[shuffled_rows[-1500:]]
    chosen = np.concatenate([heldout[mnist.labels[heldout] == label][:10] for label in range(10)])
    correct = {"original": 0, "centred": 0, "small off-centre": 0, "thick": 0}

    for row in chosen:
        digit = mnist.images[row].reshape(28, 28)
        large = np.clip(np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR)), 0, 1)
        small = np.zeros((280, 280), dtype=np.float32)
        small[20:90, 180:250] = np.clip(np.asarray(Image.fromarray(digit).resize((70, 70), Image.Resampling.BILINEAR)), 0, 1)
        thick = ndimage.grey_dilation(large, size=(15, 15))  # strokes 14 px wider
        variants = {"original": digit, "centred": large, "small off-centre": small, "thick": thick}

        for name, ink in variants.items():
            paper = Image.fromarray(np.round((1.0 - ink) * 255).astype(np.uint8))
            pixels = digit if name == "original" else preprocess_digit(paper)
            reconstruction = features.analyse_digit(better_model, pixels).reconstruction
            nearest = np.argmax(references @ standardise(reconstruction[None])[0])
            correct[name] += reference_labels[nearest] == mnist.labels[row]

    # This small model gets about 83 of 100 originals right. Thick strokes fill small
    # loops, so they may lose up to 15 more.
    for name, count in correct.items():
        assert count >= 0.65 * len(chosen), (name, correct)
        assert count >= correct["original"] - 0.15 * len(chosen), (name, correct)


# Pictures and charts


def test_pictures_have_expected_shapes(mnist):
    digit = mnist.images[0]

    assert lab_charts.digit_image(digit, scale=3).shape == (84, 84)
    assert lab_charts.digit_image(digit, scale=3).dtype == np.uint8
    assert lab_charts.difference_image(digit - 0.5, scale=2).shape == (56, 56, 3)
    assert lab_charts.panels_image(digit, digit, scale=2, gap=4).shape == (56, 3 * 56 + 8, 3)


def test_weight_image_zero_is_mid_gray():
    weights = np.zeros(784)
    weights[0], weights[1] = 2.0, -2.0

    image = lab_charts.weight_image(weights, scale=1)

    assert image[0, 0] == 255
    assert image[0, 1] == 0
    assert image[0, 2] == 128


def test_difference_image_colours():
    difference = np.zeros(784)
    difference[0], difference[1] = 0.5, -0.5

    image = lab_charts.difference_image(difference, scale=1, limit=0.5)

    assert image[0, 0, 0] == 255
    assert image[0, 0, 2] == 0
    assert image[0, 1, 2] == 255
    assert image[0, 1, 0] == 0
    assert image[0, 2].tolist() == [0, 0, 0]


def test_activation_chart_marks_rho():
    spec = lab_charts.activation_chart(np.linspace(0, 1, 200), rho=0.05, highlighted=[3, 7]).to_dict()

    assert len(spec["layer"]) == 3
    values = spec["datasets"]
    assert any(row.get("rho") == 0.05 for rows in values.values() for row in rows)
    units = [row for rows in values.values() for row in rows if "most active" in row]
    assert len(units) == 200
    assert sum(row["most active"] for row in units) == 2


def test_mosaic_chart_one_tile_per_unit(model):
    chart = lab_charts.mosaic_chart(model.W1, np.full(32, 0.1), selected=3)
    spec = chart.to_dict()

    tiles = [row for rows in spec["datasets"].values() for row in rows if "url" in row]
    assert len({row["unit"] for row in tiles}) == 32
    assert all(row["url"].startswith("data:image/png;base64,") for row in tiles)
    assert spec["params"][0]["name"] == "unit_pick"


def test_histogram_charts_build(mnist):
    counts, edges = features.activation_histogram(np.random.default_rng(0).random(100))

    for chart in (
        lab_charts.histogram_chart(counts, edges, "a_j", {"ρ = 0.1": 0.1}),
        lab_charts.rho_hat_chart(np.random.default_rng(1).random(50) * 0.2, 0.1),
        lab_charts.error_chart(np.random.default_rng(2).random(100) * 0.05, 0.03),
    ):
        spec = chart.to_dict()
        assert spec["layer"][0]["mark"]["type"] == "bar"
