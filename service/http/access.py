"""Access control: one policy table, enforced by one ASGI layer that every request passes.

``POLICY`` maps each route the app serves (``"METHOD /path/{template}"``) to the key it
needs: ``OPEN`` (none), ``READ`` (the read key or the admin key) or ``ADMIN`` (the admin key).
``AccessControl`` sits in the middleware stack, outside every router and route, so no route,
router or fast path can skip it; a test walks every route of the app against this table, so a
new route cannot be added without saying what it needs.

Keys come from the settings (``DIGITS_READ_API_KEY`` / ``DIGITS_ADMIN_API_KEY``, or their
``*_FILE`` variants): sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``,
compared with ``secrets.compare_digest``. With no read key the ``READ`` routes are open; with
no admin key the ``ADMIN`` routes need what the ``READ`` routes need (and binding a
non-loopback address without an admin key is refused at start, see ``exposure_problem``).
A request for a path or method not in the table needs ``READ`` (``GET``/``HEAD``) or
``ADMIN`` (any other method): unknown routes are closed, not open.

Missing key: 401 with ``WWW-Authenticate: Bearer``, naming the key the route needs; wrong
key: 403. Both in the service's JSON error envelope.

The key that passed is named, for the records of who changed what (alias moves), by a
non-secret id: its role and the first 12 hex digits of its sha256 (``admin:3f2a...``), put in
the ASGI scope under ``ACTOR`` (``anonymous`` when no key is configured or sent).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Forbidden, ServiceError, Unauthorized
from service.http.middleware import send_error
from service.settings import Settings


class Access(enum.Enum):
    """What a route needs."""

    OPEN = "open"
    READ = "read"
    ADMIN = "admin"


OPEN, READ, ADMIN = Access.OPEN, Access.READ, Access.ADMIN

#: Every route the app serves and what it needs. ``HEAD`` follows ``GET``.
POLICY: dict[str, Access] = {
    # probes and scraping: orchestrators and Prometheus carry no key
    "GET /health/live": OPEN,
    "GET /health/ready": OPEN,
    "GET /metrics": OPEN,
    # the API's description: no data, and Swagger UI must load it before a key is entered
    "GET /openapi.json": OPEN,
    "GET /docs": OPEN,
    "GET /docs/assets/{name}": OPEN,
    "GET /redoc": OPEN,
    # the web console's page and files: no data (its API calls carry the key typed into it)
    "GET /": OPEN,
    "GET /console/assets/{name}": OPEN,
    # inference and what is served
    "POST /predict": READ,
    "POST /models/{name}/predict": READ,
    "POST /predict/image": READ,
    "POST /models/{name}/predict/image": READ,
    "GET /models": READ,
    "GET /models/{name}": READ,
    # the Open Inference Protocol (/v2): probes as the other probes, the rest as above;
    # loading and unloading models changes what is served: ADMIN, as is the index beside them
    "GET /v2/health/live": OPEN,
    "GET /v2/health/ready": OPEN,
    "GET /v2/models/{name}/ready": OPEN,
    "GET /v2/models/{name}/versions/{version}/ready": OPEN,
    "GET /v2": READ,
    "GET /v2/models/{name}": READ,
    "GET /v2/models/{name}/versions/{version}": READ,
    "POST /v2/models/{name}/infer": READ,
    "POST /v2/models/{name}/versions/{version}/infer": READ,
    "POST /v2/repository/index": ADMIN,
    "POST /v2/repository/models/{name}/load": ADMIN,
    "POST /v2/repository/models/{name}/unload": ADMIN,
    "GET /models/{name}/versions/{version}/curves.json": READ,
    # rollout: reading the record is READ, moving aliases and traffic is ADMIN
    "GET /models/{name}/history": READ,
    "PUT /models/{name}/aliases/{alias}": ADMIN,
    "POST /models/{name}/aliases/{alias}/rollback": ADMIN,
    "PUT /models/{name}/traffic": ADMIN,
    # training jobs: reading them is READ, starting and stopping them is ADMIN
    "GET /train": READ,
    "GET /train/{job_id}": READ,
    "GET /train/{job_id}/events": READ,
    "GET /train/{job_id}/curve.json": READ,
    "GET /train/{job_id}/curve.{fmt}": READ,
    "POST /train": ADMIN,
    "DELETE /train/{job_id}": ADMIN,
}

KEY_HINT = "Authorization: Bearer <key> or X-API-Key: <key>"
#: ASGI scope key of the id of the key a request passed with.
ACTOR = "digits.actor"
ANONYMOUS = "anonymous"


def key_id(role: str, key: bytes) -> str:
    """A non-secret id of a key: its role and a sha256 prefix."""
    return f"{role}:{hashlib.sha256(key).hexdigest()[:12]}"


@dataclass(frozen=True)
class _Template:
    regex: re.Pattern[str]
    methods: dict[str, Access]


class RouteTable:
    """``POLICY`` compiled for lookups: exact paths in a dict, templated ones as regexes."""

    def __init__(self, policy: dict[str, Access]) -> None:
        by_path: dict[str, dict[str, Access]] = {}
        for key, access in policy.items():
            method, _, path = key.partition(" ")
            by_path.setdefault(path, {})[method] = access
            if method == "GET":
                by_path[path]["HEAD"] = access
        self.exact = {p: m for p, m in by_path.items() if "{" not in p}
        self.templates = [_Template(compile_path(p)[0], m) for p, m in by_path.items() if "{" in p]

    def methods(self, path: str) -> dict[str, Access] | None:
        """The methods served at ``path`` and what each needs; ``None`` for an unknown path."""
        found = self.exact.get(path)
        if found is not None:
            return found
        for template in self.templates:
            if template.regex.match(path):
                return template.methods
        return None

    def access(self, method: str, path: str) -> Access:
        """What a request needs; unknown routes need READ (GET, HEAD) or ADMIN (others)."""
        methods = self.methods(path) or {}
        known = methods.get(method)
        if known is not None:
            return known
        return READ if method in ("GET", "HEAD", "OPTIONS") else ADMIN


class Keys:
    """The configured keys: which ones each access level accepts."""

    def __init__(self, settings: Settings) -> None:
        read, admin = settings.read_api_key, settings.admin_api_key
        #: Keys a READ route accepts (none: open), then an ADMIN route.
        self.read = (
            [] if read is None else [k.get_secret_value().encode() for k in (read, admin) if k]
        )
        self.admin = [admin.get_secret_value().encode()] if admin is not None else self.read
        self.any = bool(self.read or self.admin)
        #: The id of each key (``key_id``), recorded as who made a change.
        self.ids: dict[bytes, str] = {}
        for role, key in (("read", read), ("admin", admin)):
            if key is not None:
                secret = key.get_secret_value().encode()
                self.ids[secret] = key_id(role, secret)

    def required(self, access: Access) -> bool:
        """Whether a route of this access level needs a key with these settings."""
        return access is not OPEN and bool(self.admin if access is ADMIN else self.read)

    def check(self, access: Access, presented: bytes | None) -> str:
        """Raise ``Unauthorized`` (no key) or ``Forbidden`` (wrong key) unless it passes;
        the id of the key that passed (``anonymous`` when none was needed or sent)."""
        known = self.ids.get(presented, ANONYMOUS) if presented else ANONYMOUS
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


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    header_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"x-api-key" and value:
            header_key = value
    return header_key


class AccessControl:
    """ASGI middleware: answer 401/403 before any route runs, per ``POLICY``."""

    def __init__(self, app: ASGIApp, keys: Keys, table: RouteTable) -> None:
        self.app = app
        self.keys = keys
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys.any:
            access = self.table.access(scope["method"], scope["path"])
            try:
                scope[ACTOR] = self.keys.check(access, presented_key(scope["headers"]))
            except ServiceError as error:
                await send_error(send, error)
                return
        await self.app(scope, receive, send)


def exposure_problem(settings: Settings) -> str | None:
    """Why the settings must not start: a non-loopback bind without an admin key."""
    if settings.admin_api_key is not None or settings.allow_unauthenticated:
        return None
    if _is_loopback(settings.host):
        return None
    return (
        f"refusing to listen on {settings.host} without an admin key: anyone who reaches the "
        "port could train and publish models. Set DIGITS_ADMIN_API_KEY (or "
        "DIGITS_ADMIN_API_KEY_FILE, e.g. a Docker secret), or bind 127.0.0.1, or accept an "
        "open service explicitly with DIGITS_ALLOW_UNAUTHENTICATED=1."
    )


def _is_loopback(host: str) -> bool:
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
            access = table.access(method.upper(), path)
            if access is OPEN:
                operation["security"] = []
                continue
            optional: list[dict[str, list[str]]] = [] if keys.required(access) else [{}]
            operation["security"] = [{"bearer": []}, {"apiKey": []}, *optional]
            note = f"Needs the {access.value} key when one is set (see the README, Settings)."
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
    return schema
