"""``python -m training.cost``: a row per architecture, relative to the default CNN."""

from __future__ import annotations

import pytest

from training.cost import architectures, main


def test_cost_table_has_a_row_per_architecture_and_the_cnn_is_1x(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One round prints a row for each family and each ensemble; the CNN row is 1.00x."""
    assert main(["--rounds", "1", "--repeats", "5", "--blocks", "2"]) == 0
    rows = [
        r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "---" not in r
    ]
    assert len(rows) == 1 + len(architectures())
    cnn = next(r for r in rows if r.startswith("| cnn |"))
    assert cnn.count("| 1.00x |") == 2
