"""`make install` takes torch from one wheel index variable, and the torch installed here is
the pinned version of that index's build."""

from __future__ import annotations

import json
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


_SHIM = """#!/usr/bin/env python3
import json, pathlib, sys
log = pathlib.Path(__file__).with_name("calls.jsonl")
with log.open("a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
print("Collecting", " ".join(sys.argv[1:]), flush=True)  # what pip shows as it works
"""


def _run_install(tmp_path: Path) -> tuple[list[list[str]], str]:
    """Run ``make install`` for real into a new environment whose python records its
    arguments and prints a line as pip would; the calls, and what the user saw."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(_SHIM)
    python.chmod(0o755)
    result = subprocess.run(
        ["make", "install", f"VENV={tmp_path / 'venv'}", "PYTHON=false"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    calls = [json.loads(line) for line in (python.parent / "calls.jsonl").read_text().splitlines()]
    assert (tmp_path / "venv" / ".installed").exists(), "make install did not finish"
    return calls, result.stdout + result.stderr


def test_make_install_takes_torch_from_the_cpu_index_by_default(tmp_path: Path) -> None:
    """By default torch, at pyproject's pin and alone, comes from the CPU wheel index, and
    the project is installed after it (so its pin is already met by the CPU build)."""
    calls, _ = _run_install(tmp_path)
    assert calls == [
        ["-m", "pip", "install", "--upgrade", "pip"],
        ["-m", "pip", "install", "--no-deps", f"torch=={_pin()}", "--extra-index-url", CPU_INDEX],
        ["-m", "pip", "install", "-e", ".[dev]"],
    ]


def test_make_install_shows_pips_progress(tmp_path: Path) -> None:
    """No install step silences pip: ``make serve`` on a new clone shows what it installs
    instead of minutes of silence."""
    calls, seen = _run_install(tmp_path)
    for call in calls:
        assert not {"-q", "-qq", "--quiet"} & set(call), call
        assert "Collecting " + " ".join(call) in seen


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
