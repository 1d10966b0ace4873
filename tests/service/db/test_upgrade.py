"""A store made by the release before migrations is upgraded in place at start, and every
row it held is still served over HTTP; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from service.db import HEAD, StoreBehind, current, make_engine, open_database
from service.db.migrate import UNVERSIONED
from service.http.app import create_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.databases import BACKENDS, database_url
from tests.service.conftest import write_artifact
from tests.service.db import store_86eda33 as old
from tests.service.test_registry import lit

ADMIN_KEY = "upgrade-admin-key-0123"


@pytest.fixture(params=BACKENDS)
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a store built by 86eda33's code, holding jobs, curves and alias history."""
    with database_url(request.param, tmp_path) as url:
        old.build(url)
        yield url


def settings_on(url: str, tmp_path: Path, **overrides: object) -> Settings:
    for version in (1, 2):
        write_artifact(tmp_path / "models", "m", version, lit(version))
    return make_settings(
        tmp_path / "models", database_url=url, admin_api_key=ADMIN_KEY, **overrides
    )


def test_an_old_store_is_upgraded_at_start_and_every_row_served(
    old_store: str, tmp_path: Path
) -> None:
    assert _revision(old_store) == UNVERSIONED
    with TestClient(create_app(settings_on(old_store, tmp_path))) as client:
        job = client.get(f"/train/{old.JOB['id']}").json()
        assert job["status"] == "succeeded"
        assert job["loss_curve"] == [2.0, 1.0, 0.5, 0.25]
        assert job["accuracy"] == {"iterations": [4], "train": [0.9], "test": [0.875]}
        assert job["model"] == {"name": "m", "version": 2}
        listed = client.get("/train").json()
        assert [j["id"] for j in listed["jobs"]] == [old.FAILED["id"], old.JOB["id"]]
        assert listed["jobs"][0]["error"] == old.FAILED["error"]
        moves = client.get("/models/m/history").json()["moves"]
        expected = [(m["kind"], m["from_version"], m["to_version"], m["actor"], m["reason"])
                    for m in reversed(old.MOVES)]  # fmt: skip
        assert [
            (m["kind"], m["from_version"], m["to_version"], m["actor"], m["reason"]) for m in moves
        ] == expected
        info = client.get("/models/m").json()
        assert info["aliases"] == {"production": 2, "staging": 1}
        traffic = info["traffic"]
        assert (traffic["weights"], traffic["shadow"]) == (
            {"production": 90, "staging": 10},
            "staging",
        )
        # and the upgraded store takes new rows: a move goes on the history's stack
        moved = client.put(
            "/models/m/aliases/staging",
            json={"version": 2, "reason": "after the upgrade"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["previous"] == 1
    assert _revision(old_store) == HEAD


def test_a_store_behind_is_refused_when_migration_is_off(old_store: str, tmp_path: Path) -> None:
    settings = settings_on(old_store, tmp_path, db_auto_migrate=False)
    with pytest.raises(StoreBehind, match=r"python -m service db upgrade"):  # noqa: SIM117
        with TestClient(create_app(settings)):
            pass
    assert _revision(old_store) == UNVERSIONED  # untouched
    open_database(old_store).dispose()  # the operator's upgrade
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/train/{old.JOB['id']}").status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migrations_build_exactly_the_tables_the_code_defines(
    backend: str, tmp_path: Path
) -> None:
    """A fresh store migrated to HEAD, and an old one upgraded, match the one ``MetaData``
    (so the baseline matched the old tables, and no table changed without a migration)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import service.jobs.tables
    import service.rollout.tables  # noqa: F401  # both define tables on the one MetaData
    from service.db import metadata
    from service.db.migrate import script_head

    assert script_head() == HEAD
    with database_url(backend, tmp_path) as fresh, database_url(backend, tmp_path) as upgraded:
        old.build(upgraded)
        for url in (fresh, upgraded):
            engine = open_database(url)
            with engine.connect() as conn:
                differences = compare_metadata(MigrationContext.configure(conn), metadata)
            engine.dispose()
            assert differences == [], url


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return current(engine)
    finally:
        engine.dispose()


def test_tables_of_an_old_store_are_kept_not_recreated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old.build(url)
    open_database(url).dispose()
    engine = create_engine(url)
    assert {"alembic_version", "jobs", "job_curve", "model_aliases"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_python_m_service_refuses_a_store_behind_with_exit_2(
    old_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.__main__ import main

    monkeypatch.setenv("DIGITS_DATABASE_URL", old_store)
    monkeypatch.setenv("DIGITS_DB_AUTO_MIGRATE", "false")
    assert main([]) == 2  # before uvicorn starts
    assert "python -m service db upgrade" in capsys.readouterr().err
    assert main(["db", "current"]) == 1
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{UNVERSIONED} (behind {HEAD})",
        f"upgraded from {UNVERSIONED} to {HEAD}",
        HEAD,
    ]


def test_a_store_from_a_newer_release_is_refused_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.__main__ import main

    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = open_database(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    monkeypatch.setenv("DIGITS_DATABASE_URL", url)
    assert main([]) == 2
    assert f"revision 9999, which this release ({HEAD}) does not know" in capsys.readouterr().err
