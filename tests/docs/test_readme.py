"""The README documents what the code does."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import SHIPPED_MODELS
from tests.service.live import running_service

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_setting_and_no_other() -> None:
    """The README's settings table lists exactly the fields of ``Settings``, each with its
    real default, so a setting can't be added, renamed or changed undocumented."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `DIGITS_([A-Z0-9_]+)` \| ([^|]+) \|", section, flags=re.M))
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        documented = rows[name.upper()].strip().strip("`")
        default = "unset" if field.default is None else str(field.default)
        assert documented in {default, default.removesuffix(".0")}, name


def test_readme_commands_are_make_targets() -> None:
    """Every ``make <target>`` the README tells a newcomer to type exists in the Makefile."""
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    used = set(re.findall(r"`make ([a-z-]+)`", readme)) | set(
        re.findall(r"^make ([a-z-]+)", readme, flags=re.M)
    )
    assert used, "the README names no make command"
    assert used <= targets


def _quick_start_commands() -> str:
    """The README's quick-start block of commands for a running service."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "expected the make block and the curl block"
    return str(blocks[1])


@pytest.mark.timeout(300)
def test_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    """The quick start's curl commands, pasted as they are into bash against the service on
    the shipped models, classify the "0", start a job whose id they capture themselves, and
    follow its events to the end."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    models = tmp_path / "models"
    shutil.copytree(SHIPPED_MODELS, models)
    with running_service(models, tmp_path) as service:
        script = _quick_start_commands().replace("localhost:8000", service.url.split("//")[1])
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert result.returncode == 0, result.stderr
    # curl -s prints each answer as it came, without a newline: two JSON objects, then SSE.
    decoder, answers, at = json.JSONDecoder(), [], 0
    for _ in range(2):
        answer, at = decoder.raw_decode(result.stdout, at)
        answers.append(answer)
    assert [a["predictions"][0]["label"] for a in answers] == [0, 0]
    assert answers[1]["model"] == "fnn"
    assert "event: final" in result.stdout
    final = result.stdout.split("event: final", 1)[1]
    assert '"status": "succeeded"' in final, final[:500]


def _shell_blocks(path: Path) -> list[str]:
    """The lines of the ```sh / ```bash blocks of a Markdown file."""
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", path.read_text(), flags=re.S)
    return [line for block in blocks for line in block.splitlines()]


def test_documented_entry_points_run_with_the_project_environment() -> None:
    """Every ``python -m <module>`` command in the README and the service and training docs
    names the project's interpreter (``.venv/bin/python``: the system one has no torch), and
    its module exists."""
    commands = [
        line
        for doc in ("README.md", "docs/training.md", "docs/service.md")
        for line in _shell_blocks(ROOT / doc)
        if re.search(r"\bpython3? -m ", line)
    ]
    assert commands, "no python -m command documented"
    for line in commands:
        assert re.match(r"\s*\.venv/bin/python -m ", line), line
        module = re.search(r"-m ([\w.]+)", line).group(1)  # type: ignore[union-attr]
        assert importlib.util.find_spec(module) is not None, line


def _training_commands() -> list[str]:
    """Every ``python -m training[.x] ...`` command written in the docs' shell blocks, the
    README's ``make`` table and the Makefile."""
    lines = [
        line for doc in ("README.md", "docs/training.md") for line in _shell_blocks(ROOT / doc)
    ]
    lines += re.findall(r"`\.venv/bin/python (-m training[^`]*)`", (ROOT / "README.md").read_text())
    lines += re.findall(r"\$\(BIN\)/python (-m training.*)", (ROOT / "Makefile").read_text())
    return [m.group(0) for line in lines if (m := re.search(r"-m training[^#]*", line))]


def test_documented_training_commands_parse() -> None:
    """Each training command the docs and the Makefile give is accepted by that command's own
    parser: no documented option is missing, renamed or given a value it refuses."""
    commands = _training_commands()
    assert len(commands) >= 10, commands
    for command in commands:
        module, *argv = shlex.split(command)[1:]
        entry = importlib.import_module(module if module != "training" else "training.__main__")
        if not hasattr(entry, "get_args_parser"):  # parses in main(): documented without options
            assert argv == [], command
            continue
        code: object = 0
        try:
            entry.get_args_parser().parse_args(argv)
        except SystemExit as exit:  # --help exits 0; a refused option exits 2
            code = exit.code
        assert code == 0, f"the documented command does not parse: {command}"


def test_training_help_runs_as_documented() -> None:
    """``.venv/bin/python -m training --help``, as the README says, exits 0 and lists the
    options the docs name (where versions go: --models-dir, --shipped-dir, --ship)."""
    result = subprocess.run(
        [sys.executable, "-m", "training", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--recipe", "--models-dir", "--shipped-dir", "--ship"):
        assert re.search(rf"\s{option}\b", result.stdout), option


def test_make_train_and_make_test_say_what_they_do() -> None:
    """``make train`` names the families ``python -m training`` fits by default (the ensemble
    is not one of them); ``make test`` runs pytest verbosely (each test named as it starts),
    as the README says, and the README gives its duration."""
    from training.specs import FAMILIES

    makefile = (ROOT / "Makefile").read_text()
    train = makefile.split("\ntrain:", 1)[1].split("\n\n", 1)[0]
    said = re.search(r'echo "make: fitting ([a-z, ]+) with', train)
    assert said is not None
    assert re.split(r", | and ", said.group(1)) == list(FAMILIES)
    test = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "pytest -v" in test
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"`make test` takes about \d+ minutes", readme)
