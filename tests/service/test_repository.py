"""``ModelRepository``: the shipped and runtime folders as one set of versions."""

from __future__ import annotations

from pathlib import Path

import torch

from service.inference.repository import DEFAULT_FILE, ModelRepository
from tests.service.conftest import write_artifact


def test_scan_joins_the_shipped_and_runtime_folders(tmp_path: Path) -> None:
    """Versions of both folders are found; a number present in both is reported, once."""
    shipped, runtime = tmp_path / "shipped", tmp_path / "runtime"
    write_artifact(shipped, "m", 1, torch.nn.Linear(64, 10))
    write_artifact(runtime, "m", 2, torch.nn.Linear(64, 10))
    write_artifact(runtime, "m", 1, torch.nn.Linear(64, 10))
    scan = ModelRepository(shipped, runtime).scan()
    assert sorted(a.key for a in scan.artifacts) == [("m", 1), ("m", 2)]
    assert scan.versions == {"m": {1, 2}}
    assert list(scan.problems) == [str(runtime / "m" / "1")]
    assert str(shipped / "m" / "1") in scan.problems[str(runtime / "m" / "1")]


def test_runtime_pin_wins_and_numbers_follow_both_folders(tmp_path: Path) -> None:
    """A legacy pin in the runtime folder wins over a shipped one; the next version number
    follows the highest of both folders."""
    shipped, runtime = tmp_path / "shipped", tmp_path / "runtime"
    write_artifact(shipped, "m", 3, torch.nn.Linear(64, 10))
    (shipped / "m" / DEFAULT_FILE).write_text("3\n")
    repository = ModelRepository(shipped, runtime)
    assert repository.pinned_default("m") == 3
    (runtime / "m").mkdir(parents=True)
    (runtime / "m" / DEFAULT_FILE).write_text("4\n")
    assert repository.pinned_default("m") == 4
    assert repository.highest_version("m") == 3
    write_artifact(runtime, "m", 5, torch.nn.Linear(64, 10))
    assert repository.highest_version("m") == 5


def test_a_missing_models_folder_is_named(tmp_path: Path) -> None:
    """Scanning a folder that does not exist says so instead of finding nothing silently."""
    scan = ModelRepository(tmp_path / "gone", tmp_path / "runtime").scan()
    assert scan.artifacts == []
    assert scan.missing_root == f"the models folder {tmp_path / 'gone'} does not exist"
