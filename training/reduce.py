"""load_digits' own reduction of a grey image to its 64 values (steps 2-4 of
``service/inference/digit_image.py``'s docstring): each of the 8x8 blocks of the image counts
its ink, as the 32x32 bitmaps of the original data were counted in 4x4 blocks (0..16).

In ``training`` because both sides need it: the service reduces uploads with it, and
``training.outlier`` draws letters with Pillow and reduces them the same way to measure the
outlier flag on inputs that are no digit.
"""

from __future__ import annotations

import numpy as np

SIDE = 8  # the 8x8 result
BLOCK = 4  # 4x4 pixels of the 32x32 bitmap per result value
#: Rows of the image are reduced this many pixels at a time: float64 temporaries of 8 MB.
CHUNK_PIXELS = 1 << 20


def reduce_grey(grey: np.ndarray) -> np.ndarray:
    """Steps 2-4 on an (H, W) uint8 grey image: 64 values 0..16 as float32. Memory: the
    (H, 8) row sums and float64 chunks of ``CHUNK_PIXELS``, whatever the image's shape."""
    height, width = grey.shape
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    light = border.astype(np.float64).mean() >= 128
    across = _weights(width).T  # (W, 8)
    row_sums = np.empty((height, SIDE))  # each row's ink summed into the 8 column blocks
    step = max(1, CHUNK_PIXELS // width)
    for top in range(0, height, step):
        ink = grey[top : top + step].astype(np.float64)
        if light:
            np.subtract(255.0, ink, out=ink)
        row_sums[top : top + step] = ink @ across
    sums = _weights(height) @ row_sums  # (8, 8) ink sums per block
    area = (height / SIDE) * (width / SIDE)
    counts = np.floor(sums * 16 / (area * 255) + 0.5)
    result: np.ndarray = np.clip(counts, 0, BLOCK * BLOCK).astype(np.float32)
    return result.reshape(SIDE * SIDE)


def _weights(length: int) -> np.ndarray:
    """(8, length): how much of pixel ``i`` lies in eighth ``j`` of a side of ``length``
    (``length`` is at most ``max_side``: checked before decoding)."""
    edges = np.arange(SIDE + 1) * (length / SIDE)  # block j covers [edges[j], edges[j + 1])
    pixels = np.arange(length)
    low = np.maximum(pixels[None, :], edges[:-1, None])
    high = np.minimum(pixels[None, :] + 1, edges[1:, None])
    overlap: np.ndarray = np.clip(high - low, 0.0, None)
    return overlap
