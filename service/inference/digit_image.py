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

import numpy as np

from service.errors import InvalidInput, PayloadTooLarge, without_reprs
from service.inference.image_modes import check_mode, to_grey
from training.reduce import reduce_grey

#: Formats Pillow may open: the ones the console and the docs promise, nothing more.
FORMATS = ("PNG", "JPEG")
EXPECTED_IMAGE = "a PNG or JPEG of one digit, dark on light (or light on dark), filling the frame"


#: The longest side may be at most this many times the shortest (422 beyond): a digit is
#: taller than wide, a few times at most; 16,777,216 x 1 is no digit.
MAX_ASPECT = 16
#: Most bytes one PNG text chunk or ICC profile may inflate to, and all text chunks together.
TEXT_CHUNK_BYTES = 256 * 1024
TEXT_MEMORY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """What an uploaded image may be: at most ``max_bytes`` encoded, ``max_pixels`` decoded,
    ``max_side`` pixels on its longest side."""

    max_bytes: int
    max_pixels: int
    max_side: int = 8192


def reduce_image(data: bytes, limits: ImageLimits) -> np.ndarray:
    """The 64 load_digits values (float32, row by row) of an encoded PNG or JPEG; 413 or 422
    naming the limit or the problem otherwise."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data)} bytes, over the limit max_image_bytes = {limits.max_bytes}",
            expected=f"an image of at most {limits.max_bytes} bytes",
        )
    grey = _decode(data, limits)  # (H, W) uint8
    return reduce_grey(grey)


def _decode(data: bytes, limits: ImageLimits) -> np.ndarray:
    """Step 1: Pillow reads the header, the size and mode are checked before any pixel is
    decoded, then grey (the first frame of an animated PNG)."""
    from PIL import Image, PngImagePlugin, UnidentifiedImageError

    # PNG text chunks (zTXt, iTXt, and the iCCP profile) are inflated when the file is opened:
    # a 200 KB PNG of them took 84 MB under Pillow's own bounds (1 MB a chunk, 64 MB in all).
    # A digit needs none: bounded here, Pillow's documented knobs (a ValueError past them).
    PngImagePlugin.MAX_TEXT_CHUNK = min(PngImagePlugin.MAX_TEXT_CHUNK, TEXT_CHUNK_BYTES)
    PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, TEXT_MEMORY_BYTES)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (MAX_IMAGE_PIXELS) fires at open, before anything is decoded.
        raise PayloadTooLarge(
            f"the image is a decompression bomb ({exc}); the limit is max_image_pixels = "
            f"{limits.max_pixels}",
            expected=f"an image of at most {limits.max_pixels} pixels",
        ) from None
    except UnidentifiedImageError:  # its text is "cannot identify image file <_io.BytesIO ...>"
        raise InvalidInput(
            f"the body is not a PNG or JPEG image: {what_it_is(data)}", expected=EXPECTED_IMAGE
        ) from None
    except (OSError, ValueError) as exc:  # e.g. a PNG text chunk over its bound
        raise InvalidInput(
            f"the body is not a PNG or JPEG image Pillow can read ({without_reprs(str(exc))})",
            expected=EXPECTED_IMAGE,
        ) from None
    with image:
        check_size(image.size, limits)
        check_mode(image.mode)
        try:
            return to_grey(image)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow: corrupt, truncated
            raise InvalidInput(
                f"the image could not be decoded ({without_reprs(str(exc))})",
                expected=EXPECTED_IMAGE,
            ) from None


#: The first bytes of the formats an upload is most often instead of a PNG or JPEG.
SIGNATURES = (
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a RIFF file (WebP image or WAV sound)"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)


def what_it_is(data: bytes) -> str:
    """What a body that Pillow could not identify as a PNG or JPEG is, in a user's words."""
    if not data:
        return "the body is empty"
    if data.startswith((b"\x89PNG", b"\xff\xd8")):
        return f"its PNG or JPEG header is damaged ({len(data)} bytes)"
    for signature, name in SIGNATURES:
        if data.startswith(signature):
            return f"it is {name}, which is not read here"
    if data[4:8] == b"ftyp":
        return "it is an ISO media file (HEIC or AVIF image, MP4), which is not read here"
    if data.lstrip()[:1] in (b"{", b"["):
        return "it is JSON (send 64 numbers to /predict instead)"
    return f"its {len(data)} bytes start with neither a PNG nor a JPEG signature"


def check_size(size: tuple[int, int], limits: ImageLimits) -> None:
    """413 over ``max_side`` or ``max_pixels``, 422 past ``MAX_ASPECT``: from the header."""
    width, height = size
    shape = f"{width}x{height}"
    if max(width, height) > limits.max_side:
        raise PayloadTooLarge(
            f"the image is {shape}, over the limit max_image_side = {limits.max_side}",
            expected=f"an image of at most {limits.max_side} pixels on each side",
        )
    if width * height > limits.max_pixels:
        raise PayloadTooLarge(
            f"the image is {shape} = {width * height} pixels, over the limit "
            f"max_image_pixels = {limits.max_pixels}",
            expected=f"an image of at most {limits.max_pixels} pixels",
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidInput(
            f"the image is {shape}, an aspect ratio over the limit of {MAX_ASPECT}:1",
            expected=f"{EXPECTED_IMAGE}, no side over {MAX_ASPECT} times the other",
        )
