"""Access control: each route declares what it needs; one ASGI layer, which every request
passes, enforces it with the browser checks of ``service/http/browser.py``.

Each route declares what it needs (``@needs(OPEN | READ | ADMIN)``, ``service/http/policy.py``);
the app does not start with a route that does not. ``AccessControl`` sits in the middleware stack,
outside every router and route, so no route, router or fast path can skip it.

Keys come from the settings (``DIGITS_READ_API_KEY`` / ``DIGITS_ADMIN_API_KEY``, or their
``*_FILE`` variants): sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``,
compared with ``secrets.compare_digest``. With no read key the ``READ`` routes are open; with
no admin key the ``ADMIN`` routes need what the ``READ`` routes need (and binding a
non-loopback address without an admin key, or with a short one, is refused at start, see
``exposure_problem``). A request for a path or method no route serves needs ``READ``
(``GET``/``HEAD``) or ``ADMIN`` (any other method): unknown routes are closed, not open.

In order, before any route runs: a ``Host`` not allowed is a 400; a browser's cross-site
request with a method that changes state a 403 (``cross_site``), whether keys are set or
not; a missing key a 401 with ``WWW-Authenticate: Bearer``, naming the key the route needs;
a wrong key a 403; a body of a media type the route does not take a 415. All in the
service's JSON error envelope.

The key that passed is named, for the records of who changed what (alias moves), by the
name configured with it (``DIGITS_ADMIN_API_KEY_NAME``, default ``admin``; the read key's
``read``), which says nothing about the key; put in the ASGI scope under ``ACTOR``
(``anonymous`` when no key is configured or sent; service/http/request_log.py), where the
access line reads it too.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import (
    CrossSite,
    Forbidden,
    InvalidHost,
    ServiceError,
    Unauthorized,
    UnsupportedMediaType,
)
from service.http import browser
from service.http.middleware import send_error
from service.http.policy import ADMIN, OPEN, READ, Access, RouteTable
from service.http.request_log import ACTOR, ANONYMOUS
from service.settings import Settings

KEY_HINT = "Authorization: Bearer <key> or X-API-Key: <key>"


class Keys:
    """The configured keys: which ones each access level accepts, and their names."""

    def __init__(self, settings: Settings) -> None:
        read, admin = settings.read_api_key, settings.admin_api_key
        #: Keys a READ route accepts (none: open), then an ADMIN route.
        self.read = (
            [] if read is None else [k.get_secret_value().encode() for k in (read, admin) if k]
        )
        self.admin = [admin.get_secret_value().encode()] if admin is not None else self.read
        self.any = bool(self.read or self.admin)
        #: The name of each key, recorded as who made a change: it says nothing of the key.
        self.names: dict[bytes, str] = {}
        for name, key in ((settings.read_api_key_name, read), (settings.admin_api_key_name, admin)):
            if key is not None:
                self.names[key.get_secret_value().encode()] = name

    def required(self, access: Access) -> bool:
        """Whether a route of this access level needs a key with these settings."""
        return access is not OPEN and bool(self.admin if access is ADMIN else self.read)

    def reads(self, presented: bytes | None) -> bool:
        """Whether a request with this key may call the READ routes."""
        try:
            self.check(READ, presented)
        except ServiceError:
            return False
        return True

    def check(self, access: Access, presented: bytes | None) -> str:
        """Raise ``Unauthorized`` (no key) or ``Forbidden`` (wrong key) unless it passes;
        the name of the key that passed (``anonymous`` when none was needed or sent)."""
        known = self.names.get(presented, ANONYMOUS) if presented else ANONYMOUS
        if not self.required(access):
            return known
        accepted = self.admin if access is ADMIN else self.read
        what = "admin" if access is ADMIN and accepted is not self.read else "read"
        if not presented:
            raise Unauthorized(
                f"this route needs the {what} key",
                expected=KEY_HINT,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Compare with every accepted key (no early exit) so timing says nothing about which.
        matches = [secrets.compare_digest(presented, key) for key in accepted]
        if not any(matches):
            raise Forbidden(f"the key sent is not the {what} key", expected=f"the {what} key")
        return known


class _Headers:
    """The headers the checks read, from one pass over a request's headers."""

    __slots__ = ("content_type", "fetch_site", "host", "key", "origin")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.host = self.origin = self.fetch_site = self.content_type = None
        self.key = bearer = None
        for name, value in headers:
            if name == b"host":
                self.host = value
            elif name == b"content-type":
                self.content_type = value
            elif name == b"origin":
                self.origin = value
            elif name == b"sec-fetch-site":
                self.fetch_site = value.lower()
            elif name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer" and credentials.strip():
                    bearer = credentials.strip()
            elif name == b"x-api-key" and value:
                self.key = value
        self.key = bearer or self.key  # ``Authorization: Bearer`` first, else ``X-API-Key``


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    return _Headers(headers).key


class AccessControl:
    """ASGI middleware: answer 400/403/415/401 before any route runs (module docstring)."""

    def __init__(
        self, app: ASGIApp, keys: Keys, table: RouteTable, hosts: browser.HostCheck
    ) -> None:
        self.app = app
        self.keys = keys
        self.table = table
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self._check(scope)
            except ServiceError as error:
                await send_error(scope, send, error)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        seen = _Headers(scope["headers"])
        if not self.hosts.allows(seen.host):
            name = browser.hostname(seen.host) if seen.host else "(none)"
            raise InvalidHost(
                f"Host {name!r} is not a name this service answers to",
                expected=f"one of: {self.hosts.described} (DIGITS_ALLOWED_HOSTS)",
            )
        method = scope["method"]
        unsafe = method not in browser.SAFE_METHODS
        if not (unsafe or self.keys.any):
            return
        rule = self.table.rule(method, scope["path"])
        if unsafe and browser.cross_site(seen.fetch_site, seen.origin, seen.host):
            raise CrossSite(
                f"{method} from another site's page is refused: a browser marked it cross-site",
                expected="the request from this service's own pages, or from a client that "
                "is no browser (curl, httpx, tritonclient)",
            )
        if self.keys.any:
            scope[ACTOR] = self.keys.check(rule.access, seen.key)
        media = seen.content_type
        declared = rule.accepts  # empty for an undeclared method: routing answers 405
        if unsafe and media and declared and not browser.media_type_accepted(media, declared):
            types = ", ".join(a.decode() for a in rule.accepts)
            raise UnsupportedMediaType(
                f"Content-Type {media.decode('latin-1')!r} is not taken here",
                expected=f"Content-Type: {types}, or none",
            )


#: Shortest key accepted on an exposed address: a short key falls to guessing.
MIN_KEY_LENGTH = 16


def exposure_problem(settings: Settings) -> str | None:
    """Why the settings must not start: a non-loopback bind without an admin key, or with
    a key shorter than ``MIN_KEY_LENGTH``."""
    if is_loopback(settings.host):
        return None
    for variable, key in (
        ("DIGITS_ADMIN_API_KEY", settings.admin_api_key),
        ("DIGITS_READ_API_KEY", settings.read_api_key),
    ):
        if key is not None and len(key.get_secret_value()) < MIN_KEY_LENGTH:
            return (
                f"refusing to listen on {settings.host} with a {variable} of "
                f"{len(key.get_secret_value())} characters: a key of an exposed service needs "
                f"at least {MIN_KEY_LENGTH} (e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')."
            )
    if settings.admin_api_key is not None or settings.allow_unauthenticated:
        return None
    return (
        f"refusing to listen on {settings.host} without an admin key: anyone who reaches the "
        "port could train and publish models. Set DIGITS_ADMIN_API_KEY (or "
        "DIGITS_ADMIN_API_KEY_FILE, e.g. a Docker secret), or bind 127.0.0.1, or accept an "
        "open service explicitly with DIGITS_ALLOW_UNAUTHENTICATED=1."
    )


def unauthenticated_warning(settings: Settings) -> str | None:
    """What ``/health/ready`` and the start-up log say while the service runs exposed
    without an admin key by ``DIGITS_ALLOW_UNAUTHENTICATED=1``."""
    if not settings.allow_unauthenticated or settings.admin_api_key is not None:
        return None
    if is_loopback(settings.host):
        return None
    return (
        f"DIGITS_ALLOW_UNAUTHENTICATED=1: listening on {settings.host} without an admin key; "
        "anyone who reaches the port can train, publish and move models"
    )


def allowed_hosts(settings: Settings) -> browser.HostCheck:
    """The ``Host`` values answered: ``DIGITS_ALLOWED_HOSTS``, else ``browser.default_hosts``."""
    if settings.allowed_hosts is not None:
        return browser.HostCheck(settings.allowed_hosts.split(","))
    return browser.HostCheck(browser.default_hosts(settings.host, is_loopback(settings.host)))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def document(schema: dict[str, Any], table: RouteTable, keys: Keys) -> dict[str, Any]:
    """Add the API-key schemes to an OpenAPI schema and each operation's requirement: a key
    scheme, or none (``{}``) besides where these settings leave the route open."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Bearer <key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    )
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _document_browser_checks(method.upper(), operation.setdefault("responses", {}))
            access = table.access(method.upper(), path)
            if access is OPEN:
                operation["security"] = []
                continue
            optional: list[dict[str, list[str]]] = [] if keys.required(access) else [{}]
            operation["security"] = [{"bearer": []}, {"apiKey": []}, *optional]
            note = f"Needs the {access.value} key when one is set (see the README, Settings)."
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
    return schema


def _document_browser_checks(method: str, responses: dict[str, Any]) -> None:
    """The answers of ``AccessControl``'s browser checks, on the operations they apply to."""
    responses.setdefault("400", {"description": "a Host not in DIGITS_ALLOWED_HOSTS"})
    if method not in browser.SAFE_METHODS:
        responses.setdefault("403", {"description": "a browser's cross-site request"})
        responses.setdefault("415", {"description": "a body of a media type not taken here"})
