"""``python -m training``: end to end into a temporary folder, and its option errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.__main__ import main
from training.export import load_artifact


def test_cli_fits_and_exports_every_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A few iterations of all three families end with 0, valid artifacts and a summary table."""
    code = main(
        ["--iterations", "3", "--models-dir", str(tmp_path), "--no-progress", "--seed", "1"]
    )
    assert code == 0
    table = capsys.readouterr().out
    for family in ("logistic", "fnn", "cnn"):
        folder = tmp_path / family / "1"
        manifest, _ = load_artifact(folder)
        assert manifest.family == family
        assert manifest.recipe == "default"
        assert manifest.hyperparameters["seed"] == 1
        assert manifest.metrics.iterations == 3
        assert f"/{manifest.metrics.n_test}" in table
        curves = json.loads((folder / "curves.json").read_text())
        assert len(curves["loss"]) == 3
        assert (folder / "curves.png").stat().st_size > 0
        assert family in table


def test_cli_exports_one_family_under_a_chosen_name(tmp_path: Path) -> None:
    """--name puts the single family's model under that name with the lecture recipe."""
    argv = ["--family", "cnn", "--recipe", "lecture", "--iterations", "2", "--name", "cnn-lecture"]
    assert main([*argv, "--models-dir", str(tmp_path), "--no-progress"]) == 0
    manifest, _ = load_artifact(tmp_path / "cnn-lecture" / "1")
    assert (manifest.family, manifest.recipe) == ("cnn", "lecture")
    assert manifest.hyperparameters["optimizer"] == "sgd"


def test_cli_numbers_after_another_folder(tmp_path: Path) -> None:
    """--number-after: a version exported beside a folder holding v1..v3 of the same name is
    v4, so the two folders never hold the same version (``make train`` into var/models)."""
    for version in (1, 3):
        (tmp_path / "shipped" / "fnn" / str(version)).mkdir(parents=True)
    argv = ["--family", "fnn", "--iterations", "2", "--no-progress"]
    runtime = tmp_path / "runtime"
    assert (
        main([*argv, "--models-dir", str(runtime), "--number-after", str(tmp_path / "shipped")])
        == 0
    )
    assert [p.name for p in (runtime / "fnn").iterdir()] == ["4"]
    assert load_artifact(runtime / "fnn" / "4")[0].version == 4


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--family", "svm"], id="unknown-family"),
        pytest.param(["--recipe", "fancy"], id="unknown-recipe"),
        pytest.param(["--iterations", "0"], id="zero-iterations"),
        pytest.param(["--iterations", "many"], id="non-numeric-iterations"),
        pytest.param(["--seed", "-1"], id="negative-seed"),
        pytest.param(["--name", "x"], id="name-with-three-families"),
        pytest.param(["--family", "cnn", "--name", "../x"], id="name-with-a-slash"),
        pytest.param(["--threads", "0"], id="zero-threads"),
        pytest.param(["--unknown"], id="unknown-option"),
    ],
)
def test_cli_rejects_a_bad_option_with_exit_code_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad option ends with argparse's usage error (exit code 2) before any fit."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--models-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
