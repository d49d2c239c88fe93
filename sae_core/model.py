"""The sparse autoencoder: its weights, its Keras model and its cost function.

The cost minimised over W1, b1, W2, b2, for m examples x with hidden activations a and
outputs x_hat, is

    J = (1/2m) sum_i ||x_i - x_hat_i||^2                    reconstruction
        + (lambda/2) (||W1||^2 + ||W2||^2)                  weight_decay
        + beta sum_j KL(rho || rho_hat_j)                   sparsity

with rho_hat_j = (1/m) sum_i a_j(x_i), the mean activation of hidden unit j, and
KL(rho || r) = rho log(rho / r) + (1 - rho) log((1 - rho) / (1 - r)).

TensorFlow is imported on first use of the cost or the Keras model, so code that only
loads weights and runs the NumPy forward pass (the app's first screen) starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import N_PIXELS

COST_TERMS = ("reconstruction", "weight_decay", "sparsity")


@dataclass(frozen=True)
class SAEWeights:
    """The four parameter arrays, float32, in the notation of the field.

    W1: (n_hidden, 784), row j is the input filter of hidden unit j.
    b1: (n_hidden,).  W2: (784, n_hidden), column j is unit j's decoder image.  b2: (784,).
    """

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray

    def __post_init__(self) -> None:
        n_hidden = np.shape(self.W1)[0] if np.ndim(self.W1) == 2 else -1
        expected = {
            "W1": (n_hidden, N_PIXELS),
            "b1": (n_hidden,),
            "W2": (N_PIXELS, n_hidden),
            "b2": (N_PIXELS,),
        }
        for name, shape in expected.items():
            array = np.asarray(getattr(self, name))
            if array.shape != shape or n_hidden < 1:
                raise ValueError(
                    f"{name} has shape {array.shape}; expected {shape} "
                    "for a 784-n_hidden-784 autoencoder"
                )
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} contains NaN or infinite values")
            object.__setattr__(self, name, np.ascontiguousarray(array, dtype=np.float32))

    @property
    def n_hidden(self) -> int:
        return self.W1.shape[0]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}


def initial_weights(n_hidden: int, seed: int) -> SAEWeights:
    """Draw weights uniformly in +-sqrt(6 / (n_in + n_out + 1)), biases zero."""
    rng = np.random.default_rng(seed)
    bound = np.sqrt(6.0 / (n_hidden + N_PIXELS + 1))
    return SAEWeights(
        W1=rng.uniform(-bound, bound, size=(n_hidden, N_PIXELS)),
        b1=np.zeros(n_hidden),
        W2=rng.uniform(-bound, bound, size=(N_PIXELS, n_hidden)),
        b2=np.zeros(N_PIXELS),
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def encode(weights: SAEWeights, images: np.ndarray) -> np.ndarray:
    """Return the hidden activations a, shape (m, n_hidden), of images (m, 784)."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, N_PIXELS)
    return _sigmoid(images @ weights.W1.T + weights.b1)


def decode(weights: SAEWeights, activations: np.ndarray) -> np.ndarray:
    """Return the outputs x_hat, shape (m, 784), of hidden activations (m, n_hidden)."""
    return _sigmoid(np.asarray(activations, dtype=np.float32) @ weights.W2.T + weights.b2)


def reconstruct(weights: SAEWeights, images: np.ndarray) -> np.ndarray:
    """Return x_hat for images (m, 784) with values in [0, 1]."""
    return decode(weights, encode(weights, images))


def kl_divergence(rho, rho_hat, one_minus_rho_hat):
    """KL(rho || rho_hat) per hidden unit, finite when rho_hat is saturated.

    1 - rho_hat is passed separately, computed as the mean of sigmoid(-z), because
    1 - mean(sigmoid(z)) is exactly 0 in float32 once every z exceeds about 17.
    """
    from .tf_quiet import tf

    tiny = np.finfo(rho_hat.dtype.as_numpy_dtype).tiny
    rho_hat = tf.maximum(rho_hat, tiny)
    one_minus_rho_hat = tf.maximum(one_minus_rho_hat, tiny)
    return rho * tf.math.log(rho / rho_hat) + (1.0 - rho) * tf.math.log(
        (1.0 - rho) / one_minus_rho_hat
    )


def sparse_autoencoder_cost(W1, b1, W2, b2, x, rho, beta, lam):
    """Return (J, terms) for the cost in this module's docstring.

    Shapes: W1 (h, 784), b1 (h,), W2 (784, h), b2 (784,), x (m, 784). Works in the dtype of
    the arguments (float32 for training, float64 for the gradient check). `terms` maps
    reconstruction, weight_decay and sparsity to scalars, and mean_activation to rho_hat.
    """
    from .tf_quiet import tf

    m = tf.cast(tf.shape(x)[0], x.dtype)

    # Forward pass.
    z2 = tf.matmul(x, W1, transpose_b=True) + b1  # (m, h)
    a2 = tf.sigmoid(z2)
    x_hat = tf.sigmoid(tf.matmul(a2, W2, transpose_b=True) + b2)  # (m, 784)

    # The three terms of J.
    reconstruction = tf.reduce_sum(tf.square(x - x_hat)) / (2.0 * m)
    weight_decay = (lam / 2.0) * (tf.reduce_sum(tf.square(W1)) + tf.reduce_sum(tf.square(W2)))
    rho_hat = tf.reduce_mean(a2, axis=0)  # (h,), one value per hidden unit
    one_minus_rho_hat = tf.reduce_mean(tf.sigmoid(-z2), axis=0)
    sparsity = beta * tf.reduce_sum(kl_divergence(rho, rho_hat, one_minus_rho_hat))

    total = reconstruction + weight_decay + sparsity
    terms = {
        "reconstruction": reconstruction,
        "weight_decay": weight_decay,
        "sparsity": sparsity,
        "mean_activation": rho_hat,
    }
    return total, terms


def build_keras_autoencoder(weights: SAEWeights):
    """Return a Keras model 784 -> sigmoid(n_hidden) -> sigmoid(784) holding `weights`.

    Keras Dense kernels are (inputs, outputs), so the encoder kernel is W1.T and the
    decoder kernel is W2.T. The encoder layer is named "encoder" for reuse in classifiers.
    """
    from .tf_quiet import keras

    inputs = keras.Input(shape=(N_PIXELS,), name="pixels")
    hidden = keras.layers.Dense(weights.n_hidden, activation="sigmoid", name="encoder")(inputs)
    outputs = keras.layers.Dense(N_PIXELS, activation="sigmoid", name="decoder")(hidden)
    model = keras.Model(inputs, outputs, name="sparse_autoencoder")
    model.get_layer("encoder").set_weights([weights.W1.T, weights.b1])
    model.get_layer("decoder").set_weights([weights.W2.T, weights.b2])
    return model


def weights_from_keras(model) -> SAEWeights:
    """Read SAEWeights back from a model made by build_keras_autoencoder."""
    kernel1, b1 = model.get_layer("encoder").get_weights()
    kernel2, b2 = model.get_layer("decoder").get_weights()
    return SAEWeights(W1=kernel1.T, b1=b1, W2=kernel2.T, b2=b2)
