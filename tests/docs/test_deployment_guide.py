"""docs/deployment.md's steps, in the order a user types them, run where this machine can.

The secrets step runs as written; the check step's commands run against a real ``python -m
service`` holding the key the secrets step made; the upgrade's database command runs against a
real store; every ``docker compose`` line names services and profiles the compose file has.
The whole stack itself is built and run by ``make deploy-test`` (podman).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHIPPED_MODELS
from tests.service.live import running_service

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "deployment.md").read_text()
STEPS = ["Prerequisites", "Secrets", "Build", "Up", "Check", "Scale", "Upgrade"]


def step(name: str) -> str:
    """The text of step ``name`` (``## N. name`` up to the next heading)."""
    number = STEPS.index(name) + 1
    return GUIDE.split(f"\n## {number}. {name}\n", 1)[1].split("\n#", 1)[0]


def commands(name: str) -> list[str]:
    """The commands of step ``name``'s bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", step(name), flags=re.S)
    return [c for b in blocks for c in b.replace("\\\n", " ").splitlines() if c.strip()]


def test_the_steps_come_first_in_the_order_a_user_types_them() -> None:
    """Prerequisites, secrets, build, up, check, scale, upgrade, then the reference."""
    headings = re.findall(r"^## (\d)\. (\w+)$", GUIDE, flags=re.M)
    assert [(int(n), t) for n, t in headings] == list(enumerate(STEPS, start=1))
    assert GUIDE.index("## 7. Upgrade") < GUIDE.index("\n# Reference\n")
    assert GUIDE.index("## 2. Secrets") < GUIDE.index("\ndocker compose up")  # a command line


def test_every_compose_line_names_what_the_compose_file_has() -> None:
    """Services after ``--scale``, ``run``, ``logs``, ``exec`` and ``up`` and the profiles
    named exist in docker-compose.yml."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = set(compose["services"])
    profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
    lines = [c for name in STEPS for c in commands(name) if c.startswith("docker compose")]
    lines += re.findall(r"`(docker compose [^`]+)`", GUIDE.split("\n# Reference\n")[0])
    assert len(lines) >= 8, lines
    for line in lines:
        words = shlex.split(line.split(">")[0])
        named = (
            [w.split("=")[0] for w in words[words.index("--scale") + 1 :: 2]]
            if ("--scale" in words)
            else []
        )
        for verb in ("run", "logs", "exec", "build", "up"):
            if verb in words:
                rest = [w for w in words[words.index(verb) + 1 :] if not w.startswith("-")]
                rest = [w for w in rest if not re.fullmatch(r"\d+|\w+=\d+", w)]
                named += rest[:1]
        assert set(named) <= services, line
        if "--profile" in words:
            assert words[words.index("--profile") + 1] in profiles, line


def run_bash(command: str, cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def secrets_made(tmp_path: Path) -> Path:
    """A folder where the secrets step ran exactly as written."""
    for command in commands("Secrets"):
        run_bash(command, tmp_path)
    return tmp_path


def test_the_secrets_step_makes_the_keys_compose_mounts(secrets_made: Path) -> None:
    """``secrets/admin_api_key`` holds a fresh key of 32+ characters; ``.env`` a read key."""
    admin = (secrets_made / "secrets" / "admin_api_key").read_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", admin)
    env = (secrets_made / ".env").read_text()
    assert re.fullmatch(r"DIGITS_READ_API_KEY=[A-Za-z0-9_-]{32,}\n", env)
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./secrets/admin_api_key" in compose


def test_the_check_step_answers_ready_and_a_prediction(secrets_made: Path) -> None:
    """The check step's ``curl`` lines, against a service that holds the key the secrets step
    made (as the compose stack does), answer ready and label the example row 0."""
    if shutil.which("curl") is None:
        pytest.skip("no curl on this machine")
    models = secrets_made / "models"
    shutil.copytree(SHIPPED_MODELS, models)
    key_file = secrets_made / "secrets" / "admin_api_key"
    settings = {"DIGITS_ADMIN_API_KEY_FILE": str(key_file)}
    with running_service(models, secrets_made, settings) as live:
        host = live.url.removeprefix("http://")
        answers = [
            run_bash(c.replace("localhost:8000", host), secrets_made)
            for c in commands("Check")
            if c.startswith("curl")
        ]
    assert len(answers) == 2
    assert json.loads(answers[0])["status"] == "ready"
    assert json.loads(answers[1])["predictions"][0]["label"] == 0


def test_the_upgrade_step_s_database_command_runs(tmp_path: Path) -> None:
    """``python -m service db upgrade`` (what the upgrade step runs in the api container)
    brings a new store to this release's revision, and says so again when run twice."""
    line = next(c for c in commands("Upgrade") if "db upgrade" in c)
    argv = shlex.split(line)[shlex.split(line).index("python") :]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    env["DIGITS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'jobs.db'}"
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "upgraded" in outputs[0]
    assert "already at" in outputs[1]
