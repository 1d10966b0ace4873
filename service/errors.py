"""Errors the service answers with, and the one JSON envelope they are rendered in.

Tree::

    ServiceError               500 internal
    ├── InvalidInput           422 invalid_input
    ├── PayloadTooLarge        413 payload_too_large
    ├── UnsupportedMediaType   415 unsupported_media_type
    ├── RequestTimeout         408 request_timeout
    ├── ModelNotFound          404 model_not_found
    ├── VersionNotFound        404 version_not_found
    ├── CurvesNotFound         404 curves_not_found
    ├── AliasNotFound          404 alias_not_found
    ├── NothingToRollBack      409 nothing_to_roll_back
    ├── GateRefused            409 gate_refused
    ├── AliasChanged           409 alias_changed
    ├── JobNotFound            404 job_not_found
    ├── JobNotCancellable      409 job_not_cancellable
    ├── QueueFull              429 queue_full
    ├── Overloaded             429 overloaded
    ├── Unauthorized           401 unauthorized
    ├── Forbidden              403 forbidden
    │   └── CrossSite          403 cross_site (a browser's cross-site write)
    ├── InvalidHost            400 invalid_host (a Host not in DIGITS_ALLOWED_HOSTS)
    ├── ModelNotReady          503 not_ready
    │   └── ModelUnavailable   503 model_unavailable, Retry-After (unloaded or reloading)
    │       └── ModelUnloaded  (unloaded on request, until loaded again)
    ├── StoreUnavailable       503 store_unavailable
    └── DeadlineExceeded       504 deadline_exceeded

Body: ``{"error": {"code": str, "message": str, "expected": str | null, ...details}}``.
Domain code raises these; only ``app.py`` turns them into HTTP responses.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlalchemy.exc import OperationalError, SQLAlchemyError

#: What a client is told of a database that cannot be reached (never its host or user).
DATABASE_UNAVAILABLE = "database unavailable"


class ServiceError(Exception):
    """Base class: carries the HTTP status, a stable code and a human message."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.headers = headers
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "expected": self.expected,
                **self.details,
            }
        }


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class RequestTimeout(ServiceError):
    status_code = 408
    code = "request_timeout"


class ModelNotFound(ServiceError):
    status_code = 404
    code = "model_not_found"


class VersionNotFound(ServiceError):
    status_code = 404
    code = "version_not_found"


class CurvesNotFound(ServiceError):
    """A model version exported without its ``curves.json``."""

    status_code = 404
    code = "curves_not_found"


class JobNotFound(ServiceError):
    status_code = 404
    code = "job_not_found"


class JobNotCancellable(ServiceError):
    status_code = 409
    code = "job_not_cancellable"


class QueueFull(ServiceError):
    status_code = 429
    code = "queue_full"


class Overloaded(ServiceError):
    """A queue is full (a model's rows waiting for a forward, plots waiting to be drawn, job
    followers): shed load now rather than answer late."""

    status_code = 429
    code = "overloaded"


class DeadlineExceeded(ServiceError):
    """The request's deadline passed while it waited for a forward; it was not run."""

    status_code = 504
    code = "deadline_exceeded"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class CrossSite(Forbidden):
    """A request a browser sent from another site's page to a route that changes state."""

    code = "cross_site"


class InvalidHost(ServiceError):
    """A ``Host`` header the service does not answer to (DNS rebinding, a stray proxy)."""

    status_code = 400
    code = "invalid_host"


class ModelNotReady(ServiceError):
    status_code = 503
    code = "not_ready"


class ModelUnavailable(ModelNotReady):
    """The model is unloaded, or was reloaded or unloaded while the request waited for its
    forward: the service runs, retry (``Retry-After``: ``RETRY_AFTER_S``)."""

    code = "model_unavailable"
    RETRY_AFTER_S: ClassVar[int] = 1

    def __init__(self, message: str, *, expected: str | None = None, **details: Any) -> None:
        headers = {"Retry-After": str(self.RETRY_AFTER_S)}
        super().__init__(message, expected=expected, headers=headers, **details)


class ModelUnloaded(ModelUnavailable):
    """The model was unloaded on request (``POST /v2/repository/models/{name}/unload``)."""


class TrainingUnavailable(ServiceError):
    """This install cannot fit a model: the local job backend on an install without torch
    (``digits-serve[api]``, the ``api`` image)."""

    status_code = 501
    code = "training_unavailable"


class StoreUnavailable(ServiceError):
    """The job store cannot take a write now (disk full, database down); retry later."""

    status_code = 503
    code = "store_unavailable"


class AliasNotFound(ServiceError):
    status_code = 404
    code = "alias_not_found"


class NothingToRollBack(ServiceError):
    status_code = 409
    code = "nothing_to_roll_back"


class GateRefused(ServiceError):
    """A move that asked for the promotion gate, refused: the body carries both figures."""

    status_code = 409
    code = "gate_refused"


class AliasChanged(ServiceError):
    """A gated move whose alias kept changing between its check and its move."""

    status_code = 409
    code = "alias_changed"


def public_message(exc: BaseException) -> str:
    """What a failure may show over HTTP (a job's ``error``): its type and message, but only
    what failed for a database error, whose text names hosts, ports, users and SQL; the
    full error goes to the log."""
    if isinstance(exc, OperationalError):
        return database_failure(exc)
    if isinstance(exc, SQLAlchemyError):
        return f"database error ({type(exc).__name__})"
    return f"{type(exc).__name__}: {without_reprs(str(exc))}"


#: A Python object's default repr (``<_io.BytesIO object at 0x7f...>``): it says nothing to a
#: client and names a memory address.
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def without_reprs(message: str) -> str:
    """A library error's ``message`` as a client may read it: each object repr it names
    becomes ``<object>``."""
    return _OBJECT_REPR.sub("<object>", message)


def database_failure(exc: OperationalError) -> str:
    """What failed, in words that name no host, port or user: a full disk (SQLite's
    "database or disk is full", PostgreSQL's "No space left on device") is said, as the
    operator can act on it; anything else is ``database unavailable``."""
    text = str(exc.orig).lower()
    if "disk is full" in text or "no space left" in text:
        return "database or disk is full"
    return DATABASE_UNAVAILABLE
