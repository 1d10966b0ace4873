"""``python -m training``: end to end into a temporary folder, where versions go and how they
are numbered, and its option errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.__main__ import main
from training.artifacts import load_artifact


def test_cli_fits_and_exports_every_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A few iterations of all three families end with 0, valid artifacts and a summary table."""
    code = main(["--iterations", "3", *_into(tmp_path), "--no-progress", "--seed", "1"])
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
    assert main([*argv, *_into(tmp_path), "--no-progress"]) == 0
    manifest, _ = load_artifact(tmp_path / "cnn-lecture" / "1")
    assert (manifest.family, manifest.recipe) == ("cnn", "lecture")
    assert manifest.hyperparameters["optimizer"] == "sgd"


def _into(folder: Path) -> list[str]:
    """Options that make ``folder`` both the runtime and the shipped folder (one sequence)."""
    return ["--models-dir", str(folder), "--shipped-dir", str(folder)]


def _versions(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_cli_writes_to_the_runtime_folder_numbered_after_the_shipped_one(tmp_path: Path) -> None:
    """By default a new version goes to the runtime folder, numbered after every version of
    the name in the shipped folder too, and the shipped folder is left as it was."""
    shipped, runtime = tmp_path / "models", tmp_path / "var" / "models"
    for version in (1, 3):
        (shipped / "fnn" / str(version)).mkdir(parents=True)
    (runtime / "fnn" / "2").mkdir(parents=True)
    argv = ["--family", "fnn", "--iterations", "2", "--no-progress"]
    assert main([*argv, "--models-dir", str(runtime), "--shipped-dir", str(shipped)]) == 0
    assert _versions(runtime / "fnn") == ["2", "4"]
    assert _versions(shipped / "fnn") == ["1", "3"]
    assert load_artifact(runtime / "fnn" / "4")[0].version == 4


def test_cli_ships_only_when_asked_numbered_after_the_runtime_folder(tmp_path: Path) -> None:
    """--ship writes into the shipped folder, numbered after the runtime folder's versions,
    so a job's version and a shipped one never share a number."""
    shipped, runtime = tmp_path / "models", tmp_path / "var" / "models"
    (shipped / "fnn" / "1").mkdir(parents=True)
    (runtime / "fnn" / "2").mkdir(parents=True)
    argv = ["--family", "fnn", "--iterations", "2", "--no-progress", "--ship"]
    assert main([*argv, "--models-dir", str(runtime), "--shipped-dir", str(shipped)]) == 0
    assert _versions(shipped / "fnn") == ["1", "3"]
    assert _versions(runtime / "fnn") == ["2"]


def test_cli_writes_to_var_models_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a checkout with no folder options, the export lands in var/models/ and the
    shipped models/ is not touched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "logistic" / "1").mkdir(parents=True)
    assert main(["--family", "logistic", "--iterations", "2", "--no-progress"]) == 0
    assert _versions(tmp_path / "var" / "models" / "logistic") == ["2"]
    assert _versions(tmp_path / "models" / "logistic") == ["1"]


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
