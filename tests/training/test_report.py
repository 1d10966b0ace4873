"""The reproduction report's command runs every lecture row and default and prints its table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from training.recipes import LECTURE_ROWS
from training.report import main


def test_report_prints_one_row_per_lecture_row_and_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A 3-step, 2-seed smoke run lists all 7 lecture rows with their figure, 3 defaults and the
    ensemble (1 seed); the calibrated rows (defaults, ensemble) show T and ECE, lecture rows
    do not; then the calibration table, the reliability diagrams and the outlier table."""
    argv = ["--seeds", "2", "--ensemble-seeds", "1", "--iterations", "3", "--no-progress"]
    figure = tmp_path / "reliability.png"
    assert main([*argv, "--members", "logistic", "fnn", "--figure", str(figure)]) == 0
    assert figure.read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    main_table, calibration, outliers = ("| " + t for t in out.split("\n\n| ")[1:4])
    rows = [line for line in main_table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(LECTURE_ROWS) + 3 + 1  # header, lecture, defaults, ensemble
    assert "0.9833 (train 0.9951)" in out  # the lecture CNN's reported figure
    lecture_rows = [r.split(" | ") for r in rows if r.split(" | ")[1] == "lecture"]
    assert len(lecture_rows) == len(LECTURE_ROWS)
    # every reproduced row shows the lecture's own figure to compare with
    assert all(re.fullmatch(r"0\.\d{4}( \(train 0\.\d{4}\))?", r[5]) for r in lecture_rows)
    assert "| 1.00x |" in out  # the lecture CNN is the fit-time reference
    ensemble = next(r for r in rows if r.startswith("| ensemble (logistic + fnn), 1 seeds |"))
    assert ensemble.count("→") == 2  # test and out-of-fold ECE, before -> after
    # the calibration table: a row per calibrated row (defaults, ensemble), five figures each
    calibrated = [r for r in calibration.splitlines()[2:] if r.startswith("| ")]
    assert len(calibrated) == 3 + 1
    assert all(r.count("→") == 5 for r in calibrated)
    assert "| all zeros | 1 | 100.0% |" in outliers
    assert "| uniform noise | 200 | 100.0% |" in outliers
    lecture_cnn = next(r for r in rows if r.startswith("| CNN | lecture"))
    assert lecture_cnn.endswith("| - | - | - |")


def test_report_rejects_zero_seeds() -> None:
    """--seeds 0 is an argparse error (exit code 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["--seeds", "0"])
    assert exc.value.code == 2


def test_report_family_option_keeps_only_that_family(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
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
                "--figure",
                str(tmp_path / "reliability.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.split("\n\n| ")[1]  # the main table
    rows = [line for line in out.splitlines() if line.startswith("| CNN")]
    assert len(rows) == 1
    assert "default" in rows[0]
