"""API keys as FastAPI dependencies: ``AdminDep`` guards the routes that change things
(``POST /train``, ``DELETE /train/{id}``), ``ReaderDep`` the routes that read.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Without
``settings.admin_api_key`` the admin routes are open; without ``settings.read_api_key`` the
read routes are open (when it is set, the admin key reads too). Missing key: 401 with
``WWW-Authenticate: Bearer``; wrong key: 403. Keys are compared with
``secrets.compare_digest``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from service.errors import Forbidden, Unauthorized
from service.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <key>")

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderDep = Annotated[str | None, Depends(_header)]


def _presented(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header or None


def _check(presented: str | None, accepted: list[SecretStr], what: str) -> None:
    if presented is None:
        raise Unauthorized(
            f"this route needs the {what} key",
            expected="Authorization: Bearer <key> or X-API-Key: <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = presented.encode()
    # Compare with every accepted key (no early exit) so timing says nothing about which.
    matches = [secrets.compare_digest(given, key.get_secret_value().encode()) for key in accepted]
    if not any(matches):
        raise Forbidden(f"the key sent is not the {what} key", expected=f"the {what} key")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def require_admin(request: Request, bearer: BearerDep, header: HeaderDep) -> None:
    """Let the request through when no admin key is set or it carries the admin key."""
    admin = _settings(request).admin_api_key
    if admin is not None:
        _check(_presented(bearer, header), [admin], "admin")


def require_reader(request: Request, bearer: BearerDep, header: HeaderDep) -> None:
    """Let the request through when no read key is set or it carries the read or admin key."""
    settings = _settings(request)
    if settings.read_api_key is not None:
        accepted = [k for k in (settings.read_api_key, settings.admin_api_key) if k is not None]
        _check(_presented(bearer, header), accepted, "read")


AdminDep = Depends(require_admin)
ReaderDep = Depends(require_reader)
