"""docs/v2.md documents what the code does: its tritonclient and curl examples, run as written
against ``python -m service`` on the shipped models, print what the page says they print."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_MODELS
from tests.service.live import LiveService, running_service

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "v2.md").read_text()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The service on a private copy of the shipped models."""
    workdir = tmp_path_factory.mktemp("v2-doc")
    shutil.copytree(SHIPPED_MODELS, workdir / "models")
    with running_service(workdir / "models", workdir) as service:
        yield service


def _block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.S)
    assert len(blocks) == 1, f"expected one {language} block in docs/v2.md"
    return str(blocks[0])


def _on(live: LiveService, text: str) -> str:
    return text.replace("localhost:8000", live.url.removeprefix("http://"))


@pytest.mark.timeout(120)
def test_the_tritonclient_example_prints_what_it_says(live: LiveService) -> None:
    """Each ``print`` commented with its output prints that output."""
    code = _block("python")
    done = subprocess.run(
        [sys.executable, "-c", _on(live, code)], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    said = [m.strip() for m in re.findall(r"^print\(.*\)  # (.*)$", code, flags=re.M)]
    assert said == ["[0 1 2 3 4 5 6 7]", "(8, 10)", "False"]
    assert said[0] in printed
    assert said[1] in printed
    assert said[2] in printed
    assert "('logistic', 'READY')" in printed[-1]


def test_the_curl_example_answers_what_it_says(live: LiveService) -> None:
    """The curl command, pasted into bash, answers the JSON shown under it."""
    script = _block("bash")
    command, _, comment = script.rpartition("\n# ")
    done = subprocess.run(
        ["bash", "-c", _on(live, command)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(comment)
