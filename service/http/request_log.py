"""Each request's id and its access line, and the logging setup that writes them.

``RequestMetrics`` (service/http/middleware.py), the outermost of the service's middleware,
which every request passes (the predict fast path included), gives each request its id and,
once it is answered, writes its one access line on the ``digits.access`` logger. What the
layers inside learn on the way is left in the ASGI scope under these keys:

- ``REQUEST_ID``: the client's ``X-Request-Id`` when it is sane (``SANE_REQUEST_ID``), else a
  new one (32 random hex digits); sent back in ``X-Request-Id`` and in every error body.
- ``ACTOR``: the name of the key a request passed with (``DIGITS_READ_API_KEY_NAME``, ...;
  set by ``AccessControl``, service/http/access.py), never the key itself.
- ``ANSWERED_BY``: ``(model, version)`` of the version that answered a predict request.

The line is formatted only when a handler writes it (``AccessLine.__str__``, or the fields
read by ``JsonFormatter``), and not even built when ``digits.access`` is off
(``DIGITS_LOG_LEVEL=warning``). ``DIGITS_LOG_FORMAT`` picks the format of every log line:
``text`` (one line per access) or ``json`` (one object per line); docs/service.md shows both.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any

import orjson
from starlette.types import Scope

#: The access logger (``INFO``: on at ``DIGITS_LOG_LEVEL=info`` or ``debug``).
ACCESS_LOGGER = "digits.access"
#: ASGI scope keys: the request's id, the name of the key it passed with, who answered.
REQUEST_ID = "digits.request_id"
ACTOR = "digits.actor"
ANSWERED_BY = "digits.answered_by"
#: ``ACTOR`` of a request that passed with no key (none configured, or none needed and sent).
ANONYMOUS = "anonymous"
#: A client's ``X-Request-Id`` kept as the request's id; any other is replaced by a new one.
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_log = logging.getLogger(ACCESS_LOGGER)


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` when it matches ``SANE_REQUEST_ID``, else a new id."""
    for name, value in headers:
        if name == b"x-request-id":
            if SANE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return os.urandom(16).hex()  # as random as a uuid4, for a fifth of its cost


def with_request_id(body: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """An error ``body`` with the request's id (``request_id``) beside the error."""
    body["request_id"] = scope.get(REQUEST_ID)
    return body


class AccessLine:
    """One request's access line: its fields, formatted only when a handler writes it."""

    __slots__ = ("client", "duration_ms", "key", "method", "model", "path", "rid", "status")

    def __init__(self, scope: Scope, status: int, seconds: float) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.status = status
        self.duration_ms = seconds * 1000.0
        client = scope.get("client")
        self.client: str | None = client[0] if client else None
        self.rid: str | None = scope.get(REQUEST_ID)
        actor = scope.get(ACTOR)
        self.key: str | None = None if actor == ANONYMOUS else actor
        self.model: tuple[str, int] | None = scope.get(ANSWERED_BY)

    def fields(self) -> dict[str, Any]:
        """The line as JSON fields (``model`` and ``version`` null unless a model answered)."""
        model, version = self.model or (None, None)
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "client": self.client,
            "request_id": self.rid,
            "key_id": self.key,
            "model": model,
            "version": version,
        }

    def __str__(self) -> str:
        # A path is percent-decoded: its control characters and quotes are escaped here so
        # that a line stays one line and its quoted request one field.
        path = self.path
        if not path.isprintable() or '"' in path:
            path = json.dumps(path)[1:-1]
        line = (
            f'{self.client or "-"} "{self.method} {path}" {self.status} '
            f"{self.duration_ms:.2f}ms id={self.rid} key={self.key or '-'}"
        )
        if self.model is not None:
            line += f" model={self.model[0]} version={self.model[1]}"
        return line


def write_access(scope: Scope, status: int, seconds: float) -> None:
    """Write the access line of a request answered ``status`` after ``seconds``, if the
    access logger is on (no caller lookup: the line's origin is always this one)."""
    if _log.isEnabledFor(logging.INFO):
        line = AccessLine(scope, status, seconds)
        _log.handle(_log.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, line, (), None))


class _Clock:
    """A record's time as text, the date and time formatted once per second (strftime is
    a third of a line's cost)."""

    def __init__(self, utc: bool) -> None:
        self.convert = time.gmtime if utc else time.localtime
        self.pattern = "%Y-%m-%dT%H:%M:%S" if utc else "%Y-%m-%d %H:%M:%S"
        self.cached = (-1, "")

    def stamp(self, created: float) -> str:
        """``created`` to the second, cached: the caller appends the milliseconds."""
        second = int(created)
        cached = self.cached
        if cached[0] != second:
            cached = self.cached = (second, time.strftime(self.pattern, self.convert(second)))
        return cached[1]


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``: ``2026-12-05 07:21:13,785 INFO digits.access: <line>``, local time."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self.clock = _Clock(utc=False)

    def formatTime(
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:  # logging's name
        return f"{self.clock.stamp(record.created)},{int(record.msecs):03d}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC), ``level``, ``logger``, then the access
    fields of an access line, or the ``message`` (and ``exception``) of any other record."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock(utc=True)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{self.clock.stamp(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        if isinstance(record.msg, AccessLine):
            entry.update(record.msg.fields())
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = orjson.dumps(entry, default=str).decode()
        # orjson leaves non-ASCII as it is, U+2028 included, which some readers take for a
        # line break: such a line is written ASCII-escaped, as json.dumps does.
        return text if text.isascii() else json.dumps(entry, default=str)


class BufferedStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """The access lines' handler: stderr through a 64 KiB buffer, written every ``flush_s``
    seconds (and when full, and at exit), not once per line. A line-buffered stderr costs a
    write call per request (~12 us into a pipe, the largest part of an access line). Lines
    reach the log up to ``flush_s`` late; other records keep the root handler, unbuffered.

    It also turns off what every ``LogRecord`` would look up and no format here prints (the
    thread and process names, the pid): a few microseconds per record."""

    def __init__(self, flush_s: float = 0.5) -> None:
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        try:
            raw = io.FileIO(sys.stderr.fileno(), "wb", closefd=False)
            stream: Any = io.TextIOWrapper(
                io.BufferedWriter(raw, 65536), encoding="utf-8", errors="backslashreplace"
            )
        except (AttributeError, OSError, ValueError):  # a stderr with no descriptor (tests)
            stream = sys.stderr
        super().__init__(stream)
        self.flush_s = flush_s
        threading.Thread(target=self._flush_every, name="access-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
        except Exception:  # as logging's own handlers: report, never raise into a request
            self.handleError(record)

    def _flush_every(self) -> None:
        while True:
            time.sleep(self.flush_s)
            self.flush()


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the service (and of each uvicorn worker): every
    logger to stderr at ``level`` in format ``fmt`` (``text`` or ``json``), the access lines
    through ``BufferedStderr``; uvicorn's own access log stays off (``RequestMetrics`` writes
    one line per request)."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "service",
            },
            "access": {"()": BufferedStderr, "formatter": "service"},
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            ACCESS_LOGGER: {"handlers": ["access"], "propagate": False},
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
