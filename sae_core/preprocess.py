"""Turn a drawn, uploaded or array image into a 28x28 digit that looks like MNIST.

MNIST digits are white ink on black, fitted into a 20x20 box with their aspect ratio
kept, and placed in a 28x28 field so that their centre of mass sits at the centre.
`preprocess_digit` applies the same steps to any input. Bad files raise ImageInputError
with one sentence saying what is wrong. An input without ink raises NoInkError, which is
a ValueError but not an ImageInputError, so the app can show a "draw a digit" hint
instead of an error.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
UPLOAD_TYPES = ("png", "jpg", "jpeg", "gif", "bmp", "webp")  # file name extensions
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # width x height, checked from the header before decoding
MAX_ASPECT_RATIO = 20.0  # longer side / shorter side
WORKING_SIDE = 1024  # larger inputs are shrunk to this before the ink is measured

FIELD_SIZE = 28  # MNIST images are 28x28
BOX_SIZE = 20  # MNIST digits are fitted into a 20x20 box
MIN_CONTRAST = 0.15  # ink must differ from the background by this much (of full scale)
NOISE_FLOOR = 0.1  # normalised ink below this is treated as background
# Stroke thickness is measured as twice the largest distance from an ink pixel to the
# background. Among the 5,000 embedded MNIST digits it is 4 px at the median and at most
# 10.8 px. A dot or blob is never scaled thicker than MAX_THICKNESS, so a single dot
# becomes a small disk instead of filling the 20x20 box, and real digits are unaffected.
MAX_THICKNESS = 11.0
# Stroke width as _thin_strokes estimates it, in 28x28 pixels: among the embedded MNIST
# digits the median is 2.7, the 95th percentile 3.9 and the 99th 4.8. Wider strokes are
# thinned to TYPICAL_STROKE, so only the boldest 1% of real digits are touched.
TYPICAL_STROKE = 3.5
WIDE_STROKE = 4.8


class ImageInputError(ValueError):
    """The input is not a usable image; the message is one sentence for the user."""


class NoInkError(ValueError):
    """The image decoded fine but is blank, so there is no digit to read."""


NO_INK_MESSAGE = "The image is blank, so there is no digit to read. Draw a digit or choose an image that shows one."

_FORMAT_LIST = "PNG, JPEG, GIF, BMP or WebP"

# Pillow's decoders report damaged data through several exception types.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)


def _check_dimensions(width: int, height: int) -> None:
    """Reject sizes that are too large to decode or too thin to hold a digit."""
    if width < 1 or height < 1:
        raise ImageInputError(f"The image is {width} x {height} pixels, which is empty; choose an image with content.")
    if width * height > MAX_PIXELS:
        raise ImageInputError(
            f"The image claims {width} x {height} pixels, more than the limit of "
            f"{MAX_PIXELS:,} pixels, so it was not decoded; choose a smaller image."
        )
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        raise ImageInputError(
            f"The image is {width} x {height} pixels, so one side is more than "
            f"{MAX_ASPECT_RATIO:g} times the other and it cannot hold a digit; "
            "choose an image closer to square."
        )


def load_image(data: bytes) -> Image.Image:
    """Decode image file bytes (PNG, JPEG, GIF, BMP or WebP) into a loaded PIL image.

    The size in bytes and the pixel count from the header are checked before any pixel
    is decoded. The EXIF orientation is applied, and only the first frame of an animated
    GIF or WebP is kept. Raises ImageInputError with one sentence for any bad file.
    """
    data = bytes(data)
    if not data:
        raise ImageInputError(f"The file is empty (0 bytes); choose a {_FORMAT_LIST} image.")
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError(
            f"The file is {len(data) / 1e6:.1f} MB, more than the limit of "
            f"{MAX_FILE_BYTES / 1e6:.0f} MB; choose a smaller image."
        )

    # Opening reads only the header. Pillow's own bomb check fires above
    # 2 * Image.MAX_IMAGE_PIXELS and its warning above Image.MAX_IMAGE_PIXELS;
    # both are turned into the same sentence as our lower limit.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(
            f"The image claims more than {MAX_PIXELS:,} pixels, so it was not decoded; choose a smaller image."
        ) from None
    except _DECODE_ERRORS:
        raise ImageInputError(
            f"The file is not a {_FORMAT_LIST} image that can be read; choose an image in one of those formats."
        ) from None
    _check_dimensions(*image.size)

    # Decode. A JPEG is decoded at a reduced scale when it is much larger than needed.
    image_format = image.format
    try:
        if image_format == "JPEG":
            image.draft(image.mode, (WORKING_SIDE, WORKING_SIDE))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(
            f"The image claims more than {MAX_PIXELS:,} pixels, so it was not decoded; choose a smaller image."
        ) from None
    except _DECODE_ERRORS as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise ImageInputError(
            f"The {image_format} file could not be decoded ({reason}), so it is probably "
            "damaged; export or save the image again."
        ) from None
    return image


def _border(array: np.ndarray) -> np.ndarray:
    """Pixels of the one-pixel frame around a 2-D array."""
    if min(array.shape) <= 2:
        return array.ravel()
    return np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])


def _gray_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Return luminance in [0, 1] (1 is white) and alpha in [0, 1] or None."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "RGBa", "La"):
        image = image.convert("RGBA")

    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0, None
    if image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if values.max() > 255 else 255.0
        return np.clip(values / full_scale, 0.0, 1.0).astype(np.float32), None
    if image.mode == "F":
        return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0), None
    if image.mode in ("RGBA", "LA"):
        gray_alpha = np.asarray(image.convert("LA"), dtype=np.float32) / 255.0
        return gray_alpha[..., 0], gray_alpha[..., 1]
    if image.mode != "L":
        image = image.convert("RGB").convert("L")  # '1', CMYK, YCbCr and the rest
    return np.asarray(image, dtype=np.float32) / 255.0, None


def _shrink(array: np.ndarray, side: int) -> np.ndarray:
    """Shrink a 2-D float array so its longer side is at most `side`, by area averaging."""
    height, width = array.shape
    scale = side / max(height, width)
    if scale >= 1.0:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BOX), dtype=np.float32)


def ink_map(image: Image.Image) -> np.ndarray:
    """Return the ink of an image as float32 (H, W) in [0, 1]: 1 is ink, 0 background.

    Where the background is transparent, the alpha channel is the drawing, whatever
    colour the strokes have. Otherwise the image is flattened on white, converted to
    luminance and inverted when the background (the median of the border) is light.
    The background level maps to 0 and the strongest ink to 1. Raises NoInkError when
    no pixel differs from the background by MIN_CONTRAST.
    """
    gray, alpha = _gray_and_alpha(image)

    # A mostly transparent border means the drawing lives in the alpha channel.
    if alpha is not None and float(np.median(_border(alpha))) < 0.5:
        ink = alpha
    else:
        if alpha is not None:
            gray = gray * alpha + (1.0 - alpha)  # flatten onto white
        ink = 1.0 - gray if float(np.median(_border(gray))) > 0.5 else gray
    ink = _shrink(np.asarray(ink, dtype=np.float32), WORKING_SIDE)

    # Background to 0 and strongest ink to 1; faint noise goes to 0.
    background = float(np.median(_border(ink)))
    strongest = float(ink.max())
    if strongest - background < MIN_CONTRAST:
        raise NoInkError(NO_INK_MESSAGE)
    ink = np.clip((ink - background) / (strongest - background), 0.0, 1.0)
    ink[ink < NOISE_FLOOR] = 0.0
    return ink.astype(np.float32)


def _stroke_thickness(ink: np.ndarray) -> float:
    """Twice the largest distance from an ink pixel (ink > 0.5) to the background."""
    mask = np.pad(ink > 0.5, 1)
    if not mask.any():
        return 1.0
    return max(1.0, 2.0 * float(ndimage.distance_transform_edt(mask).max()))


def _thin_strokes(crop: np.ndarray, scale: float) -> np.ndarray:
    """Thin strokes that would be wider than WIDE_STROKE after scaling to TYPICAL_STROKE.

    The stroke width is estimated as 4 x the mean distance from an ink pixel to the
    background, which is right for a long uniform stroke and barely changed by
    junctions. Thinning peels the ink by the distance transform, so it costs O(pixels).
    """
    mask = crop > 0.5
    if not mask.any():
        return crop
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    # Half a pixel comes off each distance because it is measured between pixel centres.
    stroke_width = 4.0 * (float(distance[mask].mean()) - 0.5) * scale  # in 28x28 pixels
    if stroke_width <= WIDE_STROKE:
        return crop
    radius = (stroke_width - TYPICAL_STROKE) / 2.0 / scale  # in source pixels
    thinned = np.clip(distance - radius, 0.0, 1.0).astype(np.float32)
    return thinned if thinned.max() > 0 else crop


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    enlarging = width > array.shape[1] or height > array.shape[0]
    method = Image.Resampling.BILINEAR if enlarging else Image.Resampling.BOX
    resized = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32)).resize((width, height), method)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def centre_digit(ink: np.ndarray) -> np.ndarray:
    """Crop ink (H, W) to its bounding box, fit it into 20x20 and centre it in 28x28.

    Strokes far wider than MNIST's are thinned first. The aspect ratio is kept, and the
    scale is capped so a dot or blob stays at most MAX_THICKNESS pixels thick. The patch
    is placed by its centre of mass, moved at whole pixels as far as the 28x28 field
    allows. Returns float32 (28, 28) with maximum 1.
    """
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    columns = np.flatnonzero(ink.max(axis=0) > 0)
    if rows.size == 0:
        raise NoInkError(NO_INK_MESSAGE)
    crop = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]

    # Strokes much wider than MNIST's are thinned first, and the ink is cropped again.
    crop = _thin_strokes(crop, BOX_SIZE / max(crop.shape))
    rows = np.flatnonzero(crop.max(axis=1) > 0)
    columns = np.flatnonzero(crop.max(axis=0) > 0)
    crop = crop[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]

    # Fit into the box, unless that would swell a dot or blob past MNIST's thickest strokes.
    height, width = crop.shape
    scale = min(BOX_SIZE / max(height, width), MAX_THICKNESS / _stroke_thickness(crop))
    new_width = min(BOX_SIZE, max(1, round(width * scale)))
    new_height = min(BOX_SIZE, max(1, round(height * scale)))
    patch = _resize(crop, new_width, new_height)
    if patch.max() <= 0:
        raise NoInkError(NO_INK_MESSAGE)

    # Place the centre of mass at (14, 14), the centre of MNIST's field.
    centre_row, centre_column = ndimage.center_of_mass(patch)
    top = int(np.clip(round(FIELD_SIZE / 2 - centre_row), 0, FIELD_SIZE - new_height))
    left = int(np.clip(round(FIELD_SIZE / 2 - centre_column), 0, FIELD_SIZE - new_width))
    field = np.zeros((FIELD_SIZE, FIELD_SIZE), dtype=np.float32)
    field[top : top + new_height, left : left + new_width] = patch
    return field / field.max()


def _image_from_array(array: np.ndarray) -> Image.Image:
    """Wrap a NumPy image: uint8 gray/RGB/RGBA, uint16 gray, bool, or float in [0, 1]."""
    if array.ndim == 1 and array.size == FIELD_SIZE * FIELD_SIZE:
        array = array.reshape(FIELD_SIZE, FIELD_SIZE)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageInputError(
            f"The array has shape {array.shape}; expected (H, W), (H, W, 3), (H, W, 4) or (784,)."
        )
    _check_dimensions(array.shape[1], array.shape[0])

    if array.dtype == np.uint8:
        return Image.fromarray(array)
    if array.dtype == np.uint16 and array.ndim == 2:
        return Image.fromarray(array)  # mode I;16
    if array.dtype == np.bool_ and array.ndim == 2:
        return Image.fromarray(array.astype(np.float32))
    if np.issubdtype(array.dtype, np.floating) and array.ndim == 2:
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
            raise ImageInputError("The float array has values outside [0, 1] or NaN; scale it to [0, 1].")
        return Image.fromarray(array.astype(np.float32))
    raise ImageInputError(
        f"The array has dtype {array.dtype} and shape {array.shape}; use uint8 gray, RGB or "
        "RGBA, uint16 gray, or float gray in [0, 1]."
    )


def preprocess_digit(source: bytes | Image.Image | np.ndarray) -> np.ndarray:
    """Turn image file bytes, a PIL image or an array into an MNIST-like digit.

    Returns float32 (28, 28) in [0, 1], white ink on black. Raises ImageInputError for a
    bad file and NoInkError for a blank image (see the module docstring).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        image = load_image(source)
    elif isinstance(source, Image.Image):
        _check_dimensions(*source.size)
        image = ImageOps.exif_transpose(source)
    elif isinstance(source, np.ndarray):
        image = _image_from_array(source)
    else:
        raise ImageInputError(
            f"Cannot read a digit from a {type(source).__name__}; pass image file bytes, a PIL image or an array."
        )
    return centre_digit(ink_map(image))
