"""`make install` takes torch from one wheel index variable, and the torch installed here is
the pinned version of that index's build."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu128"


def _pin() -> str:
    """The ``torch==X`` pin of pyproject.toml."""
    pins = re.findall(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert len(pins) == 1, pins
    return pins[0]


def _install_commands(tmp_path: Path, *variables: str) -> list[str]:
    """The commands ``make install`` runs into a new virtual environment (``make -n``)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if "pip install" in line]


def test_make_install_takes_torch_from_the_cpu_index_by_default(tmp_path: Path) -> None:
    """By default torch, at pyproject's pin and alone, comes from the CPU wheel index, and
    the project is installed after it (so its pin is already met by the CPU build)."""
    commands = _install_commands(tmp_path)
    torch_step = [c for c in commands if "torch==" in c]
    assert len(torch_step) == 1, commands
    assert f"'torch=={_pin()}'" in torch_step[0]
    assert f"--extra-index-url '{CPU_INDEX}'" in torch_step[0]
    assert "--no-deps" in torch_step[0]
    project_step = next(i for i, c in enumerate(commands) if "-e '.[dev]'" in c)
    assert commands.index(torch_step[0]) < project_step
    assert "--extra-index-url" not in commands[project_step]


def test_make_install_shows_pips_progress(tmp_path: Path) -> None:
    """No install step silences pip: ``make serve`` on a new clone shows what it installs
    instead of minutes of silence."""
    commands = _install_commands(tmp_path)
    assert len(commands) == 3, commands
    for command in commands:
        assert not re.search(r"\s(--quiet|-q+)(\s|$)", command), command


def test_make_install_takes_the_index_from_one_variable(tmp_path: Path) -> None:
    """``TORCH_INDEX=...`` (the CUDA build, as the README says) replaces the CPU index."""
    commands = _install_commands(tmp_path, f"TORCH_INDEX={CUDA_INDEX}")
    assert any(f"--extra-index-url '{CUDA_INDEX}'" in c for c in commands), commands
    assert not any(CPU_INDEX in c for c in commands)
    assert CUDA_INDEX in (ROOT / "README.md").read_text()


def test_installed_torch_is_the_pinned_build_of_its_index() -> None:
    """The torch installed is pyproject's pin with the label of the build it is: ``+cpu``
    for the default CPU index (PyPI's unlabelled torch on Linux is a CUDA build)."""
    public, _, label = version("torch").partition("+")
    assert public == _pin()
    cuda = torch.version.cuda
    assert label == ("cpu" if cuda is None else "cu" + cuda.replace(".", ""))
