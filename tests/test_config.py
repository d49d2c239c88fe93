"""SAEConfig rejects out-of-range hyperparameters with messages naming the value."""

from __future__ import annotations

import pytest

from sae_core.config import SAEConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sparsity_target", 0.0, r"rho\) is 0.0; it must lie strictly between 0 and 1"),
        ("sparsity_target", 1.0, r"rho\) is 1.0"),
        ("sparsity_target", float("nan"), "must be finite"),
        ("sparsity_weight", -0.5, r"beta\) is -0.5; it must be >= 0"),
        ("weight_decay", -1e-3, r"lambda\) is -0.001; it must be >= 0"),
        ("n_hidden", 0, "n_hidden is 0; it must be an integer >= 1"),
        ("n_hidden", 2.5, "n_hidden is 2.5; it must be an integer"),
        ("max_iterations", 0, "max_iterations is 0"),
        ("n_samples", 0, "n_samples is 0"),
        ("seed", -1, "seed is -1"),
    ],
)
def test_config_rejects_bad_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        SAEConfig(**{field: value})


def test_config_defaults_are_the_original_experiment():
    config = SAEConfig()
    assert (config.sparsity_target, config.sparsity_weight, config.weight_decay) == (0.1, 3.0, 1e-3)
    assert (config.n_hidden, config.max_iterations) == (200, 400)


def test_config_samples_beyond_data_rejected():
    with pytest.raises(ValueError, match="n_samples is 6000 but the data set has only 5000 images"):
        SAEConfig(n_samples=6000).with_samples_for(5000)


def test_config_samples_resolved_to_all():
    assert SAEConfig().with_samples_for(5000).n_samples == 5000


def test_config_dict_round_trip():
    config = SAEConfig(sparsity_target=0.5, n_samples=100)
    assert SAEConfig.from_dict(config.to_dict()) == config


def test_config_unknown_field_rejected():
    with pytest.raises(ValueError, match="unknown config fields"):
        SAEConfig.from_dict({"sparsity_target": 0.1, "learning_rate": 1.0})
