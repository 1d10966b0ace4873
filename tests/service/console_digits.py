"""The lecture's test rows as the console's "Random test digit" serves them
(``service/static/console/test-digits.json``): checked by tests/service/test_digit_image.py,
rewritten by ``.venv/bin/python -m tests.service.console_digits``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.data import load_split

TEST_DIGITS = Path(__file__).resolve().parents[2] / "service/static/console/test-digits.json"


def lecture_test_digits() -> dict[str, Any]:
    """Labels and 64 integer pixels of every test row of the lecture's split, in order."""
    split = load_split()
    return {
        "source": "sklearn load_digits, the lecture's test split (random_state=1234, 20%)",
        "labels": [int(v) for v in split.y_test],
        "pixels": [[int(v) for v in row] for row in split.x_test],
    }


def encode(digits: dict[str, Any]) -> str:
    """The file's text: one row per line, so that it stays small and diffable."""
    rows = ",\n".join(json.dumps(row, separators=(",", ":")) for row in digits["pixels"])
    labels = json.dumps(digits["labels"], separators=(",", ":"))
    return (
        f'{{"source":{json.dumps(digits["source"])},\n"labels":{labels},\n"pixels":[\n{rows}\n]}}\n'
    )


if __name__ == "__main__":
    TEST_DIGITS.write_text(encode(lecture_test_digits()))
