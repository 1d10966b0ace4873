"""The reproduction report's command runs every lecture row and default and prints its table."""

from __future__ import annotations

import pytest

from training.recipes import LECTURE_ROWS
from training.report import main


def test_report_prints_one_row_per_lecture_row_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 3-step, 2-seed smoke run lists all 7 lecture rows with their figure and 3 defaults."""
    assert main(["--seeds", "2", "--iterations", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(LECTURE_ROWS) + 3  # header, lecture rows, defaults
    assert "0.9833 (train 0.9951)" in out  # the lecture CNN's reported figure
    assert "| 1.00x |" in out  # the lecture CNN is the fit-time reference


def test_report_rejects_zero_seeds() -> None:
    """--seeds 0 is an argparse error (exit code 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["--seeds", "0"])
    assert exc.value.code == 2


def test_report_family_option_keeps_only_that_family(capsys: pytest.CaptureFixture[str]) -> None:
    """--only default --family cnn reports the CNN default row alone."""
    assert (
        main(
            [
                "--seeds",
                "1",
                "--iterations",
                "2",
                "--no-progress",
                "--only",
                "default",
                "--family",
                "cnn",
            ]
        )
        == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| CNN")]
    assert len(rows) == 1
    assert "default" in rows[0]
