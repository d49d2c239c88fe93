"""Preprocessing of drawn and uploaded digits: every image kind, bad files, blank input.

Every test image is made here with Pillow from a real MNIST digit, so each case can be
compared with the digit it came from.
"""

from __future__ import annotations

import builtins
import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sae_core.preprocess import (
    MAX_FILE_BYTES,
    MAX_PIXELS,
    MAX_THICKNESS,
    ImageInputError,
    NoInkError,
    load_image,
    preprocess_digit,
)

CANVAS = 280


# Helpers that draw test images


@pytest.fixture(scope="module")
def digit(mnist) -> np.ndarray:
    """A real MNIST 2 (28, 28) in [0, 1]; a 2 looks different when rotated or mirrored."""
    return mnist.images[np.flatnonzero(mnist.labels == 2)[3]].reshape(28, 28)


def ink_at(digit: np.ndarray, size: int = CANVAS, box: tuple[int, int, int] | None = None) -> np.ndarray:
    """The digit's ink (size, size) in [0, 1], enlarged smoothly; box = (top, left, side)."""
    top, left, side = box or (0, 0, size)
    enlarged = Image.fromarray(digit.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR)
    ink = np.zeros((size, size), dtype=np.float32)
    ink[top : top + side, left : left + side] = np.clip(np.asarray(enlarged), 0, 1)
    return ink


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def light_background(ink: np.ndarray) -> Image.Image:
    """Dark strokes on white paper, as gray L."""
    return Image.fromarray(to_uint8(1.0 - ink))


def dark_background(ink: np.ndarray) -> Image.Image:
    return Image.fromarray(to_uint8(ink))


def transparent(ink: np.ndarray, colour: int) -> Image.Image:
    """RGBA whose colour is `colour` everywhere, so only alpha carries the drawing."""
    rgba = np.zeros(ink.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = to_uint8(ink)
    return Image.fromarray(rgba)


def palette_with_transparency(ink: np.ndarray) -> Image.Image:
    """Palette image in which ink and background are both black; index 0 is transparent."""
    indices = (ink > 0.5).astype(np.uint8)
    image = Image.fromarray(indices).convert("P")
    image.putpalette([0, 0, 0, 0, 0, 0] + [0, 0, 0] * 254)
    image.info["transparency"] = 0
    return image


def sixteen_bit(ink: np.ndarray) -> Image.Image:
    """16-bit gray: background 20000 and ink up to 60000, beyond 8-bit range."""
    values = 20000 + np.round(ink * 40000)
    return Image.fromarray(values.astype(np.uint16))


def png_header(width: int, height: int) -> bytes:
    """A PNG with a valid header claiming width x height and almost no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


# Checks


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def assert_mnist_like(out: np.ndarray) -> None:
    assert out.shape == (28, 28)
    assert out.dtype == np.float32
    assert out.min() >= 0.0
    assert out.max() == pytest.approx(1.0)
    rows = np.flatnonzero(out.max(axis=1) > 0)
    columns = np.flatnonzero(out.max(axis=0) > 0)
    assert rows[-1] - rows[0] + 1 <= 20
    assert columns[-1] - columns[0] + 1 <= 20
    centre = ndimage.center_of_mass(out)
    assert abs(centre[0] - 14) <= 1.0, centre
    assert abs(centre[1] - 14) <= 1.0, centre


def assert_bad_file(data: bytes, *words: str) -> str:
    with pytest.raises(ImageInputError) as caught:
        preprocess_digit(data)
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith(".")
    for word in words:
        assert word in message
    return message


# Image kinds


def image_kinds(digit: np.ndarray) -> dict[str, bytes]:
    ink = ink_at(digit)
    rgb_light = light_background(ink).convert("RGB")
    transparent_gif = palette_with_transparency(ink)
    return {
        "png_light_background": encode(light_background(ink), "PNG"),
        "png_dark_background": encode(dark_background(ink), "PNG"),
        "png_rgba_black_strokes": encode(transparent(ink, colour=0), "PNG"),
        "png_rgba_white_strokes": encode(transparent(ink, colour=255), "PNG"),
        "png_la": encode(transparent(ink, colour=0).convert("LA"), "PNG"),
        "png_palette_transparency": encode(transparent_gif, "PNG", transparency=0),
        "png_16_bit": encode(sixteen_bit(ink), "PNG"),
        "png_1_bit": encode(light_background(ink).point(lambda v: 255 if v > 127 else 0).convert("1"), "PNG"),
        "bmp_1_bit": encode(dark_background(ink).convert("1"), "BMP"),
        "bmp_rgb": encode(rgb_light, "BMP"),
        "gif": encode(light_background(ink), "GIF"),
        "gif_transparency": encode(transparent_gif, "GIF", transparency=0),
        "webp_lossy": encode(rgb_light, "WEBP", quality=80),
        "webp_alpha": encode(transparent(ink, colour=0), "WEBP", lossless=True),
        "jpeg_rgb": encode(rgb_light, "JPEG", quality=85),
        "jpeg_gray_dark": encode(dark_background(ink), "JPEG", quality=85),
        "jpeg_cmyk": encode(rgb_light.convert("CMYK"), "JPEG", quality=90),
    }


KINDS = [
    "png_light_background", "png_dark_background", "png_rgba_black_strokes",
    "png_rgba_white_strokes", "png_la", "png_palette_transparency", "png_16_bit",
    "png_1_bit", "bmp_1_bit", "bmp_rgb", "gif", "gif_transparency", "webp_lossy",
    "webp_alpha", "jpeg_rgb", "jpeg_gray_dark", "jpeg_cmyk",
]


@pytest.fixture(scope="module")
def kinds(digit) -> dict[str, bytes]:
    return image_kinds(digit)


def test_kinds_cover_the_modes(kinds):
    modes = {name: Image.open(io.BytesIO(data)).mode for name, data in kinds.items()}
    assert modes["png_rgba_black_strokes"] == "RGBA"
    assert modes["png_la"] == "LA"
    assert modes["png_palette_transparency"] == "P"
    assert modes["png_16_bit"].startswith("I")
    assert modes["png_1_bit"] == "1"
    assert modes["jpeg_cmyk"] == "CMYK"
    assert sorted(kinds) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_image_kind_gives_mnist_digit(kind, kinds, digit):
    out = preprocess_digit(kinds[kind])

    assert_mnist_like(out)
    assert correlation(out, digit) > 0.85, kind


def test_alpha_ignored_gives_no_digit(digit):
    # Both RGBA kinds have one colour everywhere: without alpha they would be blank.
    for colour in (0, 255):
        flat = transparent(ink_at(digit), colour).convert("RGB")
        with pytest.raises(NoInkError):
            preprocess_digit(encode(flat, "PNG"))


def test_sixteen_bit_scaled_not_clipped(digit):
    # Clipping 16-bit values to 255 would make every pixel white and the image blank.
    out = preprocess_digit(encode(sixteen_bit(ink_at(digit)), "PNG"))

    assert correlation(out, digit) > 0.9


@pytest.mark.parametrize("orientation, stored_turn", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_exif_rotated_jpeg_upright(orientation, stored_turn, digit):
    upright = light_background(ink_at(digit)).convert("RGB")
    stored = upright.transpose(stored_turn)
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation tag

    rotated_file = preprocess_digit(encode(stored, "JPEG", quality=90, exif=exif.tobytes()))
    ignoring_tag = preprocess_digit(encode(stored, "JPEG", quality=90))

    assert_mnist_like(rotated_file)
    assert correlation(rotated_file, digit) > 0.85
    assert correlation(ignoring_tag, digit) < 0.5


def test_light_background_inverted(digit):
    out = preprocess_digit(encode(light_background(ink_at(digit)), "PNG"))

    assert out[0, 0] == 0.0  # background is black, as in MNIST
    assert correlation(out, digit) > 0.9


def test_gray_paper_becomes_black(digit):
    # Dark gray ink on light gray paper, like a photographed page, so the paper maps to 0.
    gray = Image.fromarray(to_uint8(0.8 - 0.5 * ink_at(digit)))
    out = preprocess_digit(encode(gray, "PNG"))

    assert np.count_nonzero(out) < 0.4 * out.size
    assert correlation(out, digit) > 0.9


def test_canvas_array_input(digit):
    # st_canvas returns an (H, W, 4) uint8 array: black strokes on white or on transparent.
    ink = ink_at(digit)
    opaque = np.asarray(light_background(ink).convert("RGBA"))
    see_through = np.asarray(transparent(ink, colour=0))

    for array in (opaque, see_through):
        out = preprocess_digit(array)
        assert_mnist_like(out)
        assert correlation(out, digit) > 0.9


def test_mnist_row_nearly_unchanged(mnist):
    # Real digits are already in MNIST form: the result matches within a one-pixel shift.
    for index in range(0, len(mnist), 500):
        row = mnist.images[index]
        out = preprocess_digit(row)
        best = max(
            correlation(np.roll(out, (down, right), axis=(0, 1)), row)
            for down in (-1, 0, 1)
            for right in (-1, 0, 1)
        )
        assert best > 0.99, index


def test_input_not_mutated(digit):
    array = to_uint8(ink_at(digit))
    before = array.copy()

    preprocess_digit(array)

    assert np.array_equal(array, before)


def test_bytes_never_touch_disk(kinds, monkeypatch):
    # Uploads arrive as bytes and must be decoded in memory only.
    def refuse(*args, **kwargs):
        raise AssertionError(f"preprocessing opened a file: {args!r}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    for data in kinds.values():
        assert preprocess_digit(data).shape == (28, 28)


# Placement


def test_off_centre_small_digit_like_centred(digit):
    centred = preprocess_digit(encode(light_background(ink_at(digit)), "PNG"))
    small = ink_at(digit, box=(10, 190, 70))  # a 70 px digit in the top right corner

    out = preprocess_digit(encode(light_background(small), "PNG"))

    assert_mnist_like(out)
    assert correlation(out, centred) > 0.9
    assert correlation(out, digit) > 0.9


def test_thick_strokes_like_real_digit(digit):
    thick = ndimage.grey_dilation(ink_at(digit), size=(15, 15))  # strokes about 3x as wide

    out = preprocess_digit(encode(light_background(thick), "PNG"))

    assert_mnist_like(out)
    assert correlation(out, digit) > 0.8


def test_wide_digit_keeps_aspect_ratio():
    # A 200 x 50 bar becomes 20 x 5, not a 20 x 20 square.
    ink = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    ink[115:165, 40:240] = 1.0

    out = preprocess_digit(encode(dark_background(ink), "PNG"))

    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    columns = np.flatnonzero(out.max(axis=0) > 0.5)
    assert columns[-1] - columns[0] + 1 == 20
    assert 4 <= rows[-1] - rows[0] + 1 <= 6


def test_single_pixel_dot_stays_small():
    paper = np.full((CANVAS, CANVAS), 255, dtype=np.uint8)
    paper[100, 60] = 0

    out = preprocess_digit(encode(Image.fromarray(paper), "PNG"))

    assert_mnist_like(out)
    assert np.count_nonzero(out) <= MAX_THICKNESS**2
    assert np.count_nonzero(out > 0.5) >= 1


def test_canvas_dot_stays_small():
    # One click with a 20 px brush: a filled disk, which must not fill the 20x20 box.
    yy, xx = np.mgrid[:CANVAS, :CANVAS]
    disk = ((yy - 200) ** 2 + (xx - 50) ** 2 <= 10**2).astype(np.float32)

    out = preprocess_digit(encode(light_background(disk), "PNG"))

    assert_mnist_like(out)
    rows = np.flatnonzero(out.max(axis=1) > 0)
    assert rows[-1] - rows[0] + 1 <= MAX_THICKNESS + 1


# Blank input


@pytest.mark.parametrize(
    "blank",
    [
        Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0)),
        Image.new("RGBA", (CANVAS, CANVAS), (255, 255, 255, 0)),
        Image.new("L", (CANVAS, CANVAS), 255),
        Image.new("L", (CANVAS, CANVAS), 0),
        Image.new("RGB", (64, 48), (200, 180, 160)),
    ],
    ids=["transparent_black", "transparent_white", "white", "black", "beige"],
)
def test_blank_image_has_no_ink(blank):
    with pytest.raises(NoInkError) as caught:
        preprocess_digit(encode(blank, "PNG"))

    assert not isinstance(caught.value, ImageInputError)
    assert "Draw a digit" in str(caught.value)


def test_blank_noisy_photo_has_no_ink():
    rng = np.random.default_rng(0)
    paper = np.clip(230 + rng.normal(0, 4, size=(120, 160)), 0, 255).astype(np.uint8)

    with pytest.raises(NoInkError):
        preprocess_digit(encode(Image.fromarray(paper), "JPEG", quality=70))


def test_blank_canvas_array_has_no_ink():
    with pytest.raises(NoInkError):
        preprocess_digit(np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8))


# Bad files


def test_empty_file_rejected():
    assert_bad_file(b"", "empty")


def test_truncated_png_rejected(kinds):
    data = kinds["png_light_background"]

    assert_bad_file(data[: len(data) // 2], "PNG", "damaged")


def test_text_file_rejected():
    assert_bad_file(b"this is a note, not a picture\n" * 20, "PNG, JPEG, GIF, BMP or WebP")


def test_other_image_format_rejected(digit):
    tiff = encode(light_background(ink_at(digit)), "TIFF")

    assert_bad_file(tiff, "PNG, JPEG, GIF, BMP or WebP")


def test_decompression_bomb_rejected_before_decoding():
    # Far beyond Pillow's own limit, and between our limit and Pillow's.
    assert_bad_file(png_header(100_000, 100_000), "pixels")
    assert_bad_file(png_header(8_000, 8_000), "8000 x 8000", f"{MAX_PIXELS:,}")


def test_absurd_dimensions_rejected():
    for size in [(1, 100_000), (100_000, 1), (3, 400)]:
        data = encode(Image.new("L", size, 255), "PNG")
        message = assert_bad_file(data, f"{size[0]} x {size[1]}")
        assert "square" in message


def test_oversized_file_rejected():
    assert_bad_file(b"\x89PNG" + bytes(MAX_FILE_BYTES), "MB")


def test_load_image_applies_pixel_cap_without_decoding():
    # The header alone would need 64 MB of pixels; rejecting it must not touch the data.
    with pytest.raises(ImageInputError):
        load_image(png_header(8_000, 8_000))


def test_damaged_files_never_raise_other_errors(kinds):
    # Truncations and flipped bytes of every kind: a clear error, blank, or a digit.
    rng = np.random.default_rng(0)
    for name, data in kinds.items():
        variants = [data[:cut] for cut in (8, 30, len(data) // 3, len(data) - 5)]
        for _ in range(4):
            damaged = np.frombuffer(data, dtype=np.uint8).copy()
            positions = rng.integers(0, len(damaged), size=8)
            damaged[positions] ^= 0xFF
            variants.append(damaged.tobytes())
        for variant in variants:
            try:
                out = preprocess_digit(variant)
            except (ImageInputError, NoInkError):
                continue
            assert out.shape == (28, 28), name
            assert np.all(np.isfinite(out)), name


def test_bad_arrays_rejected():
    with pytest.raises(ImageInputError):
        preprocess_digit(np.full((28, 28), np.nan, dtype=np.float32))
    with pytest.raises(ImageInputError):
        preprocess_digit(np.zeros((28, 28, 2), dtype=np.uint8))
    with pytest.raises(ImageInputError):
        preprocess_digit(np.full((28, 28), 3.0))
    with pytest.raises(ImageInputError):
        preprocess_digit("digit.png")
