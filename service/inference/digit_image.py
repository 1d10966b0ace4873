"""An image of a handwritten digit reduced to the 64 values of scikit-learn's ``load_digits``.

``load_digits`` (UCI optdigits) made its images from 32x32 bitmaps: non-overlapping 4x4
blocks, each counted as the number of its pixels that are on, 0..16, giving an 8x8 image.
``reduce_image`` does the same to any PNG or JPEG, in these steps (the console's JavaScript,
``service/static/console/reduce.js``, implements the same steps and is tested against this one):

1. Decode with Pillow (PNG or JPEG only); transparent pixels are laid over white, then the
   image is converted to 8-bit grey (Pillow's ``L``: ``(R*19595 + G*38470 + B*7471 + 2**15)
   >> 16``).
2. Ink: the border decides the polarity. When the mean of the outermost pixels is at least
   128 (dark ink on light paper) a pixel's ink is ``255 - grey``, else (light ink on a dark
   ground, as MNIST) ``grey``.
3. The whole image is the digit's frame (no cropping or centring: frame the digit as the
   optdigits forms did, filling the height): it is cut into a 32x32 grid of cells, each a
   ``W/32 x H/32`` area (fractions of a pixel weighted by their overlap), and a cell's value
   is its mean ink over 255, from 0 (paper) to 1 (ink). A black-and-white image at a multiple
   of 32 pixels gives a 32x32 bitmap of 0s and 1s, as load_digits had.
4. Each 4x4 block of cells is summed: its count of on pixels, 0..16, rounded half up to an
   integer. Grey cells count in part, so a load_digits image scaled up (one grey level per
   block) comes back as its own 64 values.

Steps 3 and 4 are linear, so they run as one area-weighted sum over each eighth of the image:
``round_half_up(16 * ink_sum / (255 * area))``, in float64 in both implementations.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:  # Pillow is imported at the first image (~0.2 s of start-up otherwise)
    from PIL import Image

#: Formats Pillow may open: the ones the console and the docs promise, nothing more.
FORMATS = ("PNG", "JPEG")
SIDE = 8  # the 8x8 result
BLOCK = 4  # 4x4 pixels of the 32x32 bitmap per result value
EXPECTED_IMAGE = "a PNG or JPEG of one digit, dark on light (or light on dark), filling the frame"


@dataclass(frozen=True)
class ImageLimits:
    """What an uploaded image may be: at most ``max_bytes`` encoded, ``max_pixels`` decoded."""

    max_bytes: int
    max_pixels: int


def reduce_image(data: bytes, limits: ImageLimits) -> np.ndarray:
    """The 64 load_digits values (float32, row by row) of an encoded PNG or JPEG; 413 or 422
    naming the limit or the problem otherwise."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data)} bytes, over the limit max_image_bytes = {limits.max_bytes}",
            expected=f"an image of at most {limits.max_bytes} bytes",
        )
    grey = _decode(data, limits.max_pixels)  # (H, W) uint8
    return reduce_grey(grey)


def reduce_grey(grey: np.ndarray) -> np.ndarray:
    """Steps 2-4 on an (H, W) uint8 grey image: 64 values 0..16 as float32."""
    values = grey.astype(np.float64)
    border = np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])
    ink = 255.0 - values if border.mean() >= 128 else values
    height, width = ink.shape
    sums = _weights(height) @ ink @ _weights(width).T  # (8, 8) ink sums per block
    area = (height / SIDE) * (width / SIDE)
    counts = np.floor(sums * 16 / (area * 255) + 0.5)
    result: np.ndarray = np.clip(counts, 0, BLOCK * BLOCK).astype(np.float32)
    return result.reshape(SIDE * SIDE)


def _weights(length: int) -> np.ndarray:
    """(8, length): how much of pixel ``i`` lies in eighth ``j`` of a side of ``length``."""
    edges = np.arange(SIDE + 1) * (length / SIDE)  # block j covers [edges[j], edges[j + 1])
    pixels = np.arange(length)
    low = np.maximum(pixels[None, :], edges[:-1, None])
    high = np.minimum(pixels[None, :] + 1, edges[1:, None])
    overlap: np.ndarray = np.clip(high - low, 0.0, None)
    return overlap


def _decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Step 1: Pillow decodes, the pixel count is checked before any pixel is, then grey."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (MAX_IMAGE_PIXELS) fires at open, before anything is decoded.
        raise PayloadTooLarge(
            f"the image is a decompression bomb ({exc}); the limit is max_image_pixels = "
            f"{max_pixels}",
            expected=f"an image of at most {max_pixels} pixels",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput(
            f"the body is not a PNG or JPEG image Pillow can read ({exc})",
            expected=EXPECTED_IMAGE,
        ) from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise PayloadTooLarge(
                f"the image is {width}x{height} = {width * height} pixels, over the limit "
                f"max_image_pixels = {max_pixels}",
                expected=f"an image of at most {max_pixels} pixels",
            )
        try:
            return _to_grey(image)
        except (OSError, ValueError) as exc:  # truncated or corrupt pixel data
            raise InvalidInput(
                f"the image could not be decoded ({exc})", expected=EXPECTED_IMAGE
            ) from None


def _to_grey(image: Image.Image) -> np.ndarray:
    """(H, W) uint8: transparency over white, then Pillow's ``L`` conversion."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)
