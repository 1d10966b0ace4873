"""Every pixel mode PNG and JPEG open as, in both polarities, reduced to the right values and
classified with the right label (service/inference/image_modes.py); the modes without a grey
range refused naming the mode. The fixtures are made here from real test digits."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.errors import InvalidInput
from service.http.app import create_app
from service.inference.digit_image import ImageLimits, reduce_image
from service.inference.image_modes import to_grey
from tests.conftest import SHIPPED_MODELS, make_settings
from training.data import Split

LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=4096 * 4096)
SCALE = 16  # each of the 8x8 values a 16x16 square: 128x128 images


def grey_of(row: np.ndarray, dark_on_light: bool) -> np.ndarray:
    """(128, 128) uint8: each value v as a square of ink v/16, on paper or on black."""
    ink = np.rint(row.reshape(8, 8) * 255 / 16).astype(np.uint8)
    grey = 255 - ink if dark_on_light else ink
    return np.kron(grey, np.ones((SCALE, SCALE), dtype=np.uint8))


def bitmap_of(row: np.ndarray, dark_on_light: bool) -> np.ndarray:
    """(128, 128) uint8 of 0 and 255 only: load_digits' own 32x32 bitmap, v pixels of each
    4x4 block on, scaled 4 times (what a 1-bit image can hold exactly)."""
    on = np.zeros((32, 32), dtype=bool)
    for index, value in enumerate(row.astype(int)):
        block = np.zeros(16, dtype=bool)
        block[:value] = True
        y, x = divmod(index, 8)
        on[4 * y : 4 * y + 4, 4 * x : 4 * x + 4] = block.reshape(4, 4)
    grey = np.where(on == dark_on_light, 0, 255).astype(np.uint8)
    return np.kron(grey, np.ones((4, 4), dtype=np.uint8))


def save(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def grey_palette(grey: np.ndarray, transparent_black: bool) -> Image.Image:
    """A ``P`` image with 256 grey entries; with ``transparent_black``, entry 255 is black
    but transparent (a ``tRNS`` chunk): white only once laid over white."""
    image = Image.frombytes("P", (grey.shape[1], grey.shape[0]), grey.tobytes())
    palette = [v for i in range(256) for v in (i, i, i)]
    if transparent_black:
        palette[-3:] = [0, 0, 0]
        image.info["transparency"] = 255
    image.putpalette(palette)
    return image


def ink_as_alpha(grey: np.ndarray, mode: str) -> Image.Image:
    """Black ink whose opacity is the ink (paper fully transparent), in ``LA`` or ``RGBA``."""
    alpha = Image.fromarray(255 - grey)
    black = Image.new(mode[:-1], alpha.size, 0)
    return Image.merge(mode, [*black.split(), alpha])


def sixteen_bit(grey: np.ndarray) -> Image.Image:
    return Image.fromarray(grey.astype(np.uint16) * 257)  # I;16: 0..65535


def animated(grey: np.ndarray) -> bytes:
    """An APNG: the digit, then a black frame (only the first is read)."""
    first = Image.fromarray(grey)
    return save(first, save_all=True, append_images=[Image.new("L", first.size, 0)])


# name -> (encode a grey image, the most any value may be off: 0 lossless, 1-2 JPEG)
ENCODINGS: dict[str, tuple[Callable[[np.ndarray], bytes], int]] = {
    "L": (lambda g: save(Image.fromarray(g)), 0),
    "RGB": (lambda g: save(Image.fromarray(np.dstack([g, g, g]))), 0),
    "P": (lambda g: save(grey_palette(g, False)), 0),
    "P-transparent": (lambda g: save(grey_palette(g, True)), 0),
    "I;16": (lambda g: save(sixteen_bit(g)), 0),
    "APNG-first-frame": (animated, 0),
    "LA": (lambda g: save(Image.fromarray(g).convert("LA")), 0),
    "RGBA": (lambda g: save(Image.fromarray(g).convert("RGBA")), 0),
    "JPEG-L": (lambda g: save(Image.fromarray(g), "JPEG", quality=95), 1),
    "JPEG-RGB-progressive": (
        lambda g: save(Image.fromarray(g).convert("RGB"), "JPEG", quality=95, progressive=True),
        1,
    ),
    "JPEG-CMYK": (lambda g: save(Image.fromarray(g).convert("CMYK"), "JPEG", quality=95), 2),
}
# Transparent paper is white: these hold a dark-on-light digit only.
INK_AS_ALPHA = {
    "LA-ink-as-alpha": lambda g: save(ink_as_alpha(g, "LA")),
    "RGBA-ink-as-alpha": lambda g: save(ink_as_alpha(g, "RGBA")),
}


def fixtures(split: Split, count: int) -> Iterator[tuple[str, bytes, np.ndarray, int, int]]:
    """(id, encoded image, its 64 values, label, tolerance) of every mode and polarity, for
    the first ``count`` test digits."""
    for row, label in zip(split.x_test.numpy()[:count], split.y_test.tolist(), strict=False):
        for polarity in ("dark-on-light", "light-on-dark"):
            dark = polarity == "dark-on-light"
            grey = grey_of(row, dark)
            for name, (encode, tolerance) in ENCODINGS.items():
                yield f"{name}/{polarity}", encode(grey), row, label, tolerance
            bitmap = Image.fromarray(bitmap_of(row, dark)).convert("1")
            yield f"1/{polarity}", save(bitmap), row, label, 0
        for name, encode_alpha in INK_AS_ALPHA.items():
            yield name, encode_alpha(grey_of(row, True)), row, label, 0


def test_every_mode_and_polarity_reduces_to_the_digit(split: Split) -> None:
    """Each of 30 test digits, in every mode and both polarities, comes back as its own 64
    values (within 1 or 2 for JPEG)."""
    for name, data, row, _label, tolerance in fixtures(split, 30):
        opened = Image.open(io.BytesIO(data)).mode
        pixels = reduce_image(data, LIMITS)
        assert np.abs(pixels - row).max() <= tolerance, (name, opened, pixels, row)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    models = tmp_path_factory.mktemp("modes") / "models"
    models.symlink_to(SHIPPED_MODELS)
    with TestClient(create_app(make_settings(models))) as client:
        yield client


def test_every_mode_and_polarity_gets_the_label(shipped: TestClient, split: Split) -> None:
    """``/predict/image`` answers each fixture of 10 test digits with the digit's label."""
    for name, data, _row, label, _tolerance in fixtures(split, 10):
        media = "image/jpeg" if name.startswith("JPEG") else "image/png"
        answer = shipped.post("/predict/image", content=data, headers={"Content-Type": media})
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["predictions"][0]["label"] == label, name


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I;16N"])
def test_sixteen_bit_grey_in_every_byte_order_is_read_to_scale(mode: str) -> None:
    """A 16-bit value v is grey round(v / 257) whatever the byte order (Pillow's own
    conversion clips at 255: every grey became white)."""
    values = np.array([[0, 128, 129, 257 * 100, 65535, 257 * 200 + 128]], dtype=np.uint16)
    order = ">" if mode == "I;16B" else "<" if mode in ("I;16", "I;16L") else "="
    image = Image.frombytes(mode, (6, 1), values.astype(f"{order}u2").tobytes())
    np.testing.assert_array_equal(to_grey(image), [[0, 0, 1, 100, 255, 200]])


def test_a_transparent_sixteen_bit_value_is_white() -> None:
    """A 16-bit grey PNG's ``tRNS`` value is paper."""
    image = Image.fromarray(np.array([[0, 1000, 0]], dtype=np.uint16))
    image.info["transparency"] = 0
    np.testing.assert_array_equal(to_grey(image), [[255, 4, 255]])


@pytest.mark.parametrize("mode", ["I", "F", "HSV", "LAB", "I;16S"])
def test_a_mode_without_a_grey_range_is_refused_naming_it(mode: str) -> None:
    """32-bit integer or float pixels (and any other mode) are a 422 naming the mode, never
    a guess."""
    try:
        image = Image.new(mode, (8, 8))
    except ValueError:
        image = Image.new("I", (8, 8))
        image._mode = mode  # type: ignore[attr-defined]  # a mode Pillow cannot create here
    with pytest.raises(InvalidInput, match=f"pixel mode {mode!r} is not supported"):
        to_grey(image)
