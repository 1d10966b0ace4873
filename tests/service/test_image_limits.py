"""An image's cost is bounded by its pixel count and a cap on each side, checked from the
header before any pixel is decoded: the 16 KB PNG of 16,777,216 x 1 pixels that took 6 GB
is a 413 in milliseconds, against a real ``python -m service``."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from service.errors import InvalidInput, PayloadTooLarge, ServiceError
from service.inference.digit_image import MAX_ASPECT, ImageLimits, reduce_grey, reduce_image
from tests.service.live import LiveService, running_copy

LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=4096 * 4096, max_side=8192)
THIN = [(16_777_216, 1), (1, 16_777_216)]


def text_bomb() -> bytes:
    """An 8x8 PNG carrying 200 zTXt chunks of 1,000,000 zeros each (200 KB in all): Pillow
    inflated 64 MB of them before refusing (84 MB peak)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    text = zlib.compress(b"\0" * 1_000_000, 9)
    chunks = b"".join(chunk(b"zTXt", b"k%d\0\0" % i + text) for i in range(200))
    png = white_png(8, 8)
    return png[:33] + chunks + png[33:]  # after the signature and IHDR


def white_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "error", "says"),
    [
        pytest.param(
            (16_777_216, 1), PayloadTooLarge, "16777216x1, over the limit max_image_side", id="wide"
        ),
        pytest.param((1, 16_777_216), PayloadTooLarge, "1x16777216, over the limit", id="tall"),
        pytest.param((8193, 600), PayloadTooLarge, "max_image_side = 8192", id="side"),
        pytest.param((4100, 4100), PayloadTooLarge, "max_image_pixels = 16777216", id="pixels"),
        pytest.param(
            (1700, 100), InvalidInput, f"ratio over the limit of {MAX_ASPECT}:1", id="aspect"
        ),
    ],
)
def test_a_size_past_a_limit_is_refused_naming_it(
    size: tuple[int, int], error: type[Exception], says: str
) -> None:
    """Over the side cap or the pixel count: 413; a side over 16 times the other: 422."""
    with pytest.raises(error, match=says):
        reduce_image(white_png(*size), LIMITS)


def test_the_longest_side_allowed_reduces_exactly() -> None:
    """An 8192 x 512 image (the cap, at the widest aspect) of 8 vertical bands reduces to
    the bands' values: the reduction works in chunks, exactly as on a small image."""
    values = np.arange(8) * 2  # 0, 2, ..., 14 per column block
    band = np.repeat(np.rint(values * 255 / 16).astype(np.uint8), 1024)  # (8192,) light ink
    grey = np.tile(band, (512, 1))  # light ink on a dark ground (border mean < 128)
    np.testing.assert_array_equal(reduce_grey(grey), np.tile(values, 8))


def seeds() -> list[bytes]:
    """A small image in each encoding the fuzz test starts from."""
    grey = np.full((48, 48), 255, dtype=np.uint8)
    grey[8:40, 18:30] = 0
    image = Image.fromarray(grey)
    frames = {"save_all": True, "append_images": [Image.new("L", (48, 48))]}
    encodings: list[tuple[Image.Image, str, dict[str, object]]] = [
        (image, "PNG", {}),
        (image, "PNG", frames),
        (image.convert("RGBA"), "PNG", {}),
        (image.convert("P"), "PNG", {"transparency": 0}),
        (Image.fromarray(grey.astype(np.uint16) * 257), "PNG", {}),
        (image, "JPEG", {}),
        (image.convert("RGB"), "JPEG", {"progressive": True}),
        (image.convert("CMYK"), "JPEG", {}),
    ]
    out = []
    for picture, fmt, options in encodings:
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt, **options)
        out.append(buffer.getvalue())
    return out


SEEDS = seeds()


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_a_corrupted_image_is_a_4xx_never_an_exception(seed: int) -> None:
    """Each of the first 160 bytes of a PNG or JPEG (every mode above: signature, header,
    chunk lengths and types, JPEG markers) set to 0 and to 255 in turn: the answer is an
    image's values or a 4xx ``ServiceError``, never another exception (a 500 and a
    traceback: Pillow's ``SyntaxError`` for a broken PNG chunk was one)."""
    original = SEEDS[seed]
    for position in range(min(160, len(original))):
        for value in (0, 255):
            data = bytearray(original)
            data[position] = value
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow warns of corrupt EXIF, and goes on
                status = 200
                try:
                    reduce_image(bytes(data), LIMITS)
                except ServiceError as error:
                    status = error.status_code
            assert status in (200, 413, 415, 422), (position, value)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[LiveService]:
    with running_copy(tiny_models, tmp_path_factory.mktemp("image-limits")) as service:
        yield service


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_thin_images_cost_no_memory_and_no_time(live: LiveService) -> None:
    """The 16,777,216 x 1 and 1 x 16,777,216 PNGs (16 and 32 KB) raise the server's peak
    memory by under 50 MB and are answered (413 naming the side cap) within 1 s each; so
    does a PNG of compressed text chunks (422)."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        warm = client.post("/predict/image", content=white_png(64, 64), headers=_PNG)
        assert warm.status_code == 200  # Pillow imported, the reduction run once
        before = peak_rss_mb(live.process.pid)
        for width, height in THIN:
            body = white_png(width, height)
            assert len(body) < 100_000  # far under max_image_bytes: the side cap answers
            start = time.perf_counter()
            answer = client.post("/predict/image", content=body, headers=_PNG)
            elapsed = time.perf_counter() - start
            assert answer.status_code == 413, answer.text
            assert "max_image_side" in answer.json()["error"]["message"]
            assert elapsed < 1.0, f"{width}x{height} answered in {elapsed:.2f} s"
        answer = client.post("/predict/image", content=text_bomb(), headers=_PNG)
        assert answer.status_code == 422, answer.text
        assert "MAX_TEXT" in answer.json()["error"]["message"]  # the limit Pillow met
        grown = peak_rss_mb(live.process.pid) - before
    assert grown < 50, f"peak RSS grew by {grown:.0f} MB"
    assert "Traceback" not in live.output()


_PNG = {"Content-Type": "image/png"}


def test_concurrent_large_images_are_decoded_two_at_a_time(live: LiveService) -> None:
    """8 uploads at once of a 2048x2048 RGBA PNG (~48 MB each to decode) raise the server's
    peak memory by under 250 MB: decodes wait their turn (``DECODES_AT_ONCE``), so the
    memory is bounded by the decodes, not by the requests (8 at once took ~520 MB)."""
    grey = np.full((2048, 2048), 255, dtype=np.uint8)
    grey[400:1600, 700:1300] = 0  # a "1"
    buffer = io.BytesIO()
    Image.fromarray(grey).convert("RGBA").save(buffer, format="PNG")
    body = buffer.getvalue()

    async def send_all() -> list[int]:
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post("/predict/image", content=body, headers=_PNG) for _ in range(8))
            )
        return [a.status_code for a in answers]

    with httpx.Client(base_url=live.url, timeout=30) as client:
        assert client.post("/predict/image", content=white_png(64, 64), headers=_PNG).is_success
    before = peak_rss_mb(live.process.pid)
    assert asyncio.run(send_all()) == [200] * 8
    grown = peak_rss_mb(live.process.pid) - before
    assert grown < 250, f"peak RSS grew by {grown:.0f} MB"  # ~130 MB; unbounded: ~520 MB
