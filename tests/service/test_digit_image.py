"""POST /predict/image: a PNG or JPEG reduced to load_digits' 64 values
(service/inference/digit_image.py) and classified; the console's test digits file is the
lecture's test split."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.http.app import create_app
from service.inference.digit_image import ImageLimits, reduce_image
from tests.conftest import make_settings
from tests.service.console_digits import TEST_DIGITS, encode, lecture_test_digits
from training.data import Split

LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=4096 * 4096)


def row_image(row: np.ndarray, scale: int = 32, invert: bool = False) -> Image.Image:
    """A load_digits row scaled up: each value v as a ``scale`` x ``scale`` square of ink v/16
    (dark on white, or light on black with ``invert``)."""
    ink = np.rint(row.reshape(8, 8) * 255 / 16).astype(np.uint8)
    grey = ink if invert else 255 - ink
    return Image.fromarray(np.kron(grey, np.ones((scale, scale), dtype=np.uint8)), mode="L")


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and holds almost no data: what a
    decompression bomb looks like to a decoder before it decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def broken_chunk(png: bytes) -> bytes:
    """``png`` with its IDAT chunk's length set to 0: the data is then read as the next
    chunk's header, and Pillow raises ``SyntaxError`` while decoding (a 500 once)."""
    data = bytearray(png)
    data[png.index(b"IDAT") - 1] = 0
    return bytes(data)


def test_every_scaled_up_test_row_reduces_to_itself(split: Split) -> None:
    """Each of the 360 test rows drawn at 256x256 (one grey square per value) comes back as
    its own 64 values, dark on light and light on dark."""
    for row in split.x_test.numpy():
        for invert in (False, True):
            pixels = reduce_image(encoded(row_image(row, invert=invert)), LIMITS)
            np.testing.assert_array_equal(pixels, row)


def test_a_bitmap_counts_its_on_pixels_per_4x4_block() -> None:
    """A black-and-white 32x32 bitmap gives, per 4x4 block, the count of its black pixels
    (load_digits' own reduction), at any whole scale."""
    rng = np.random.default_rng(0)
    bitmap = rng.random((32, 32)) < 0.4  # True = ink
    grey = np.where(bitmap, 0, 255).astype(np.uint8)
    grey[0, :] = grey[-1, :] = 255  # a light border: dark ink on paper
    grey[:, 0] = grey[:, -1] = 255
    counts = (grey == 0).reshape(8, 4, 8, 4).sum(axis=(1, 3)).reshape(64)
    for scale in (1, 3, 8):
        image = Image.fromarray(np.kron(grey, np.ones((scale, scale), dtype=np.uint8)))
        np.testing.assert_array_equal(reduce_image(encoded(image), LIMITS), counts)


def test_a_jpeg_of_a_test_row_is_within_one(split: Split) -> None:
    """JPEG's losses move no value by more than 1."""
    for row in split.x_test.numpy()[:20]:
        pixels = reduce_image(encoded(row_image(row), "JPEG", quality=95), LIMITS)
        assert np.abs(pixels - row).max() <= 1


def test_the_console_test_digits_are_the_lecture_test_split() -> None:
    """service/static/console/test-digits.json is the lecture's test split, as
    tests/service/console_digits.py writes it."""
    assert TEST_DIGITS.read_text() == encode(lecture_test_digits())


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app on the shipped models (accurate enough to name a test row's label), with
    small image limits: 20,000 bytes and 300x300 pixels."""
    from tests.conftest import SHIPPED_MODELS

    models = tmp_path_factory.mktemp("image") / "models"
    models.symlink_to(SHIPPED_MODELS)
    settings = make_settings(models, max_image_bytes=20_000, max_image_pixels=300 * 300)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("model", ["logistic", "fnn", "cnn"])
def test_a_scaled_up_test_row_gives_its_pixels_and_label(
    shipped: TestClient, split: Split, model: str
) -> None:
    """The PNG of each of the first 10 test rows, raw and as a multipart upload, answers that
    row's 64 values (within 1) and its label, from every model."""
    for row, label in zip(split.x_test.numpy()[:10], split.y_test.tolist()[:10], strict=True):
        png = encoded(row_image(row))
        raw = shipped.post(
            f"/models/{model}/predict/image", content=png, headers={"Content-Type": "image/png"}
        )
        form = shipped.post(
            f"/models/{model}/predict/image", files={"file": ("digit.png", png, "image/png")}
        )
        for answer in (raw, form):
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert np.abs(np.array(body["pixels"]) - row).max() <= 1
            assert body["predictions"][0]["label"] == label
            assert body["model"] == model


def test_the_default_route_answers_like_predict(shipped: TestClient, split: Split) -> None:
    """/predict/image answers what /predict answers for the pixels it derived."""
    png = encoded(row_image(split.x_test.numpy()[3]))
    image = shipped.post("/predict/image", content=png, headers={"Content-Type": "image/png"})
    plain = shipped.post("/predict", json={"pixels": image.json()["pixels"]})
    assert image.status_code == plain.status_code == 200
    assert image.json()["predictions"] == plain.json()["predictions"]


def _error(response: object) -> tuple[int, str, str]:
    status = response.status_code  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    return status, error["code"], error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "says"),
    [
        pytest.param(b"hello", "image/png", 422, "invalid_input", "not a PNG or JPEG", id="text"),
        pytest.param(
            encoded(Image.new("L", (64, 64)), "GIF"),
            "image/gif",
            422,
            "invalid_input",
            "not a PNG or JPEG",
            id="gif",
        ),
        pytest.param(
            encoded(Image.new("L", (64, 64)))[:60],
            "image/png",
            422,
            "invalid_input",
            "could not be decoded",
            id="truncated",
        ),
        pytest.param(
            broken_chunk(encoded(Image.new("L", (64, 64)))),
            "image/png",
            422,
            "invalid_input",
            "could not be decoded (broken PNG file",
            id="broken-chunk",
        ),
        pytest.param(
            b"{}", "application/json", 415, "unsupported_media_type", "is not taken here", id="json"
        ),
        pytest.param(
            b"x" * 20_001,
            "image/png",
            413,
            "payload_too_large",
            "max_image_bytes = 20000",
            id="bytes",
        ),
        pytest.param(
            encoded(Image.new("1", (301, 300))),
            "image/png",
            413,
            "payload_too_large",
            "301x300 = 90300 pixels, over the limit max_image_pixels = 90000",
            id="pixels",
        ),
        pytest.param(
            png_header_only(30_000, 30_000),
            "image/png",
            413,
            "payload_too_large",
            "decompression bomb",
            id="bomb",
        ),
    ],
)
def test_bad_images_are_refused_naming_the_limit(
    shipped: TestClient, body: bytes, content_type: str, status: int, code: str, says: str
) -> None:
    """Not an image, a format other than PNG/JPEG, a truncated file, a wrong content type,
    too many bytes or pixels, a decompression bomb: a 4xx in the envelope saying which."""
    answer = shipped.post("/predict/image", content=body, headers={"Content-Type": content_type})
    got_status, got_code, message = _error(answer)
    assert (got_status, got_code) == (status, code)
    assert says in message


def test_a_multipart_upload_without_a_file_part_is_refused(shipped: TestClient) -> None:
    """A multipart form whose part is not named ``file``: 422 naming the part expected."""
    answer = shipped.post("/predict/image", files={"image": ("d.png", b"x", "image/png")})
    status, code, message = _error(answer)
    assert (status, code) == (422, "invalid_input")
    assert "no file part named 'file'" in message


def test_an_unknown_model_is_a_404(shipped: TestClient, split: Split) -> None:
    """The per-model route answers 404 for a model that is not served."""
    png = encoded(row_image(split.x_test.numpy()[0]))
    answer = shipped.post(
        "/models/nope/predict/image", content=png, headers={"Content-Type": "image/png"}
    )
    assert _error(answer)[:2] == (404, "model_not_found")
