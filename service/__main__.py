"""``python -m service`` / ``digits-serve``: start uvicorn on ``create_app(Settings())``;
``python -m service db upgrade|current``: migrate the database, or say its revision.

The only place the environment is read. Command-line options override environment settings.
"""

from __future__ import annotations

import argparse
import logging.config
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from service.db import HEAD, StoreBehind, current, make_engine, prepare, upgrade
from service.http.access import exposure_problem
from service.http.request_log import log_config
from service.settings import Settings
from service.startup import pause_gc, resume_gc


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Serve the digit classifiers in MODELS_DIR over HTTP. Every option also "
        "comes from the environment (DIGITS_HOST, DIGITS_PORT, ...; see the README).",
    )
    parser.add_argument("--host", help="interface to bind (DIGITS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (DIGITS_PORT, default 8000)")
    parser.add_argument(
        "--workers", type=int, help="uvicorn worker processes (DIGITS_WORKERS, default 1)"
    )
    parser.add_argument(
        "--models-dir", type=Path, help="folder of exported models (DIGITS_MODELS_DIR)"
    )
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (DIGITS_DEVICE)")
    return parser


def db_main(argv: list[str]) -> int:
    """``db upgrade``: bring the database to this release's schema; ``db current``: its
    revision and whether it is behind (exit 1 then)."""
    parser = argparse.ArgumentParser(
        prog="python -m service db",
        description="The database at DIGITS_DATABASE_URL: its schema revision, or upgrade it.",
    )
    parser.add_argument("command", choices=["upgrade", "current"])
    args = parser.parse_args(argv)
    engine = make_engine(Settings().database_url)
    try:
        if args.command == "upgrade":
            before = upgrade(engine)
            done = f"already at {HEAD}" if before == HEAD else f"upgraded from {before} to {HEAD}"
            print(done)  # noqa: T201
            return 0
        found = current(engine)
        print(f"{found or '(empty)'}" + ("" if found == HEAD else f" (behind {HEAD})"))  # noqa: T201
        return 0 if found == HEAD else 1
    finally:
        engine.dispose()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """Stop with exit code 0 on SIGINT/SIGTERM (uvicorn re-raises the signal it stopped on)."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["db"]:
        return db_main(argv[1:])
    args = get_args_parser().parse_args(argv)
    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "models_dir": args.models_dir,
            "device": args.device,
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"digits-serve: invalid settings:\n{exc}", file=sys.stderr)  # noqa: T201
        return 2
    problem = exposure_problem(settings) or _database_problem(settings)
    if problem is not None:
        print(f"digits-serve: {problem}", file=sys.stderr)  # noqa: T201
        return 2
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    _serve(settings, overrides)
    return 0


def _serve(settings: Settings, overrides: dict[str, Any]) -> None:
    """Run uvicorn on ``create_app`` until Ctrl-C or SIGTERM (a clean exit)."""
    # Each worker process builds its app from the environment: pass the overrides along.
    for key, value in overrides.items():
        os.environ[f"DIGITS_{key.upper()}"] = str(value)
    # uvicorn shuts down gracefully on Ctrl-C or SIGTERM, then raises the same signal again
    # under the handlers it found: with Python's own, that is a KeyboardInterrupt traceback
    # (Ctrl-C) or death by SIGTERM (exit 143). A stop that was asked for is a clean exit.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _exit_cleanly)
    # One process imports torch and the app, then loads the models: with no collections on
    # the way (service/startup.py); its lifespan resumes them. (With several workers, this
    # process only supervises: each worker imports the app itself.)
    if settings.workers == 1:
        pause_gc()
    try:
        uvicorn.run(
            "service.http.app:create_app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            # The same logging in each worker process; uvicorn's access log off: the app
            # writes one access line per request (service/http/request_log.py).
            log_config=log_config(settings.log_level, settings.log_format),
            access_log=False,
            factory=True,
            # No route is a WebSocket: without this uvicorn imports the websockets package at
            # start-up (~30 ms) to serve none.
            ws="none",
        )
    finally:
        resume_gc()  # when the app never started (e.g. the port was taken)


def _database_problem(settings: Settings) -> str | None:
    """Why the database cannot be served as it is (behind, with migration off), else ``None``
    after migrating it (once, before the workers start; their lifespans find it current)."""
    try:
        engine = make_engine(settings.database_url)
    except OSError as exc:  # SQLite: its folder cannot be made
        return f"cannot open the database {settings.database_url}: {exc}"
    try:
        prepare(engine, auto_migrate=settings.db_auto_migrate)
    except StoreBehind as exc:
        return str(exc)
    except SQLAlchemyError as exc:
        return f"cannot open the database {settings.database_url}: {exc}"
    finally:
        engine.dispose()
    return None


if __name__ == "__main__":
    raise SystemExit(main())
