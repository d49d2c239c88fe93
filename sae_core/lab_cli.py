"""The `reconstruct` command: one image file through a trained model, without the app.

    python -m sae_core reconstruct --model DIR --image FILE --out OUT.png

DIR is a folder written by `train --out` (weights.npz and metrics.json). OUT.png shows
the preprocessed 28x28 input, its reconstruction and the signed error side by side. The
per-pixel mean squared error is printed on stdout.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .preprocess import MAX_FILE_BYTES, ImageInputError, NoInkError, preprocess_digit

logger = logging.getLogger(__name__)

PANEL_SCALE = 8  # each 28x28 panel is written 8 times larger


def _read_image_file(path: Path) -> bytes:
    """Read at most MAX_FILE_BYTES + 1 bytes, so a huge file is rejected without loading it."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ImageInputError(f"{path}: the image file does not exist; check the path.") from None
    except IsADirectoryError:
        raise ImageInputError(f"{path}: is a folder, not an image file; pass the path of a file.") from None
    except OSError as error:
        raise ImageInputError(f"{path}: the image file could not be read ({error.strerror}).") from None


def run_reconstruct(args: argparse.Namespace) -> int:
    """Preprocess the image, reconstruct it, write the panels and print the error."""
    image_path = Path(args.image)
    data = _read_image_file(image_path)
    try:
        pixels = preprocess_digit(data)
    except (ImageInputError, NoInkError) as error:
        raise type(error)(f"{image_path}: {error}") from None

    # TensorFlow comes in with the model code, so a bad image fails before that cost.
    from .features import analyse_digit
    from .images import save_png
    from .lab_charts import panels_image
    from .store import load_model_dir

    weights, _metrics = load_model_dir(args.model)
    analysis = analyse_digit(weights, pixels)

    out = Path(args.out)
    try:
        save_png(panels_image(analysis.pixels, analysis.reconstruction, scale=PANEL_SCALE), out)
    except OSError as error:
        raise ValueError(f"{out}: the output image could not be written ({error.strerror or error}).") from None
    logger.info("wrote %s (input as seen, reconstruction, error)", out)
    print(f"per-pixel MSE: {analysis.mse:.6f}")
    return 0


def add_reconstruct_command(subparsers) -> argparse.ArgumentParser:
    """Add `reconstruct` to the CLI's subparsers; it runs run_reconstruct."""
    parser = subparsers.add_parser(
        "reconstruct",
        help="reconstruct one digit image with a trained model and save input, reconstruction and error",
        description=(
            "Turn a PNG, JPEG, GIF, BMP or WebP digit into MNIST form, reconstruct it with "
            "a trained model, save the input as seen, its reconstruction and the error side "
            "by side, and print the per-pixel mean squared error."
        ),
    )
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="model folder written by 'train --out' (weights.npz and metrics.json)")
    parser.add_argument("--image", required=True, metavar="FILE",
                        help="digit image: PNG, JPEG, GIF, BMP or WebP, any size or background")
    parser.add_argument("--out", required=True, metavar="OUT.png",
                        help="where to write the three panels as a PNG")
    parser.set_defaults(run=run_reconstruct)
    return parser
