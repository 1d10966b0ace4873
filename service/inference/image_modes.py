"""Step 1 of ``digit_image`` for every pixel mode: an opened image to 8-bit grey, or a 422
naming a mode that has no grey to read.

What PNG and JPEG open as in Pillow, and how each becomes grey (``L``):

- ``1``, ``L``, ``P``, ``RGB``, ``CMYK`` (JPEG, Adobe's inverted CMYK included), ``YCbCr``,
  ``RGBX``: Pillow's own ``convert("L")`` (``(R*19595 + G*38470 + B*7471 + 2**15) >> 16``).
- With transparency (``LA``, ``RGBA``, ``PA``, premultiplied ``La``/``RGBa``, a ``P`` or
  ``RGB`` with a ``tRNS`` colour): laid over white first.
- 16-bit grey, ``I;16`` in any byte order (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``): each
  value ``v`` of 0..65535 becomes ``round(v / 257)`` (65535 -> 255), a transparent value
  white. Pillow's ``convert("L")`` clips them at 255 instead: every grey became paper.
- ``I`` (32-bit integers) and ``F`` (32-bit floats) have no fixed range (0..255? 0..65535?
  0..1?): refused with a 422 naming the mode. PNG and JPEG do not open as them.
- An animated PNG: its first frame (the one Pillow opens at), the others are not read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from service.errors import InvalidInput

if TYPE_CHECKING:  # Pillow is imported at the first image (~0.2 s of start-up otherwise)
    from PIL import Image

#: Modes Pillow converts to grey as it should, and those laid over white first.
PILLOW_MODES = frozenset({"1", "L", "P", "RGB", "CMYK", "YCbCr", "RGBX"})
ALPHA_MODES = frozenset({"LA", "RGBA", "PA", "La", "RGBa"})
SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
MODES = PILLOW_MODES | ALPHA_MODES | SIXTEEN_BIT


def check_mode(mode: str) -> None:
    """422 naming ``mode`` when it is none this module reads (before any pixel is decoded)."""
    if mode not in MODES:
        raise InvalidInput(
            f"the image's pixel mode {mode!r} is not supported: it has no fixed range of grey",
            expected="an 8- or 16-bit grey, palette, RGB(A) or CMYK image, e.g. a PNG "
            f"saved as 8-bit grey (modes read: {', '.join(sorted(MODES))})",
        )


def to_grey(image: Image.Image) -> np.ndarray:
    """(H, W) uint8: transparency over white, then grey (rules in the module docstring)."""
    check_mode(image.mode)
    if image.mode in SIXTEEN_BIT:
        return _sixteen_bit_grey(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return _over_white(image)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _over_white(image: Image.Image) -> np.ndarray:
    from PIL import Image

    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.uint8)


def _sixteen_bit_grey(image: Image.Image) -> np.ndarray:
    """``round(v / 257)`` of each 16-bit value (any byte order), the transparent one white."""
    values = np.asarray(image)  # (H, W) uint16 in the mode's byte order
    grey = ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        grey[values == transparent] = 255
    return grey
