"""The reproduction report's command runs every lecture row and default and prints its table."""

from __future__ import annotations

import re

import pytest

from training.recipes import LECTURE_ROWS
from training.report import main


def test_report_prints_one_row_per_lecture_row_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 3-step, 2-seed smoke run lists all 7 lecture rows, each with the lecture's figure, 3
    defaults and the ensemble (1 seed); the calibrated rows (defaults, ensemble) show T and
    ECE, lecture rows do not."""
    argv = ["--seeds", "2", "--ensemble-seeds", "1", "--iterations", "3", "--no-progress"]
    assert main([*argv, "--members", "logistic", "fnn"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(LECTURE_ROWS) + 3 + 1  # header, lecture, defaults, ensemble
    assert "0.9833 (train 0.9951)" in out  # the lecture CNN's reported figure
    lecture_rows = [r.split(" | ") for r in rows if r.split(" | ")[1] == "lecture"]
    assert len(lecture_rows) == len(LECTURE_ROWS)
    # every reproduced row shows the lecture's own figure to compare with
    assert all(re.fullmatch(r"0\.\d{4}( \(train 0\.\d{4}\))?", r[5]) for r in lecture_rows)
    assert "| 1.00x |" in out  # the lecture CNN is the fit-time reference
    ensemble = next(r for r in rows if r.startswith("| ensemble (logistic + fnn), 1 seeds |"))
    assert ensemble.count("→") == 2  # test and validation ECE, before -> after
    lecture_cnn = next(r for r in rows if r.startswith("| CNN | lecture"))
    assert lecture_cnn.endswith("| - | - | - |")


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
