"""The README documents what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import Settings

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
