"""What each route needs, declared on the route: ``@needs(OPEN | READ | ADMIN)`` on its
endpoint (under the router's decorator), and the table of those declarations that
``service/http/access.py`` enforces, built from ``app.routes`` at start.

``OPEN``: no key; ``READ``: the read key or the admin key; ``ADMIN``: the admin key.
``accepts=`` names the body media types a route takes when not JSON (``image/*``).
``RouteTable.of(app.routes)`` raises ``UndeclaredRoute`` naming every route without a
declaration, so the app does not start with a route that says nothing of what it needs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, compile_path

from service.http import browser


class Access(enum.Enum):
    """What a route needs."""

    OPEN = "open"
    READ = "read"
    ADMIN = "admin"


OPEN, READ, ADMIN = Access.OPEN, Access.READ, Access.ADMIN


@dataclass(frozen=True)
class Rule:
    """A route's declaration: the key it needs, and the body media types it takes."""

    access: Access
    accepts: tuple[bytes, ...] = browser.JSON


_RULE = "__digits_access__"
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def needs(
    access: Access, *, accepts: tuple[str, ...] = ("application/json",)
) -> Callable[[_Endpoint], _Endpoint]:
    """Declare what a route's endpoint needs (under the router's decorator); ``accepts``:
    its body media types, ``image/*`` for any image (a body without ``Content-Type`` is
    always taken)."""
    rule = Rule(access, tuple(a.encode() for a in accepts))

    def declare(endpoint: _Endpoint) -> _Endpoint:
        setattr(endpoint, _RULE, rule)
        return endpoint

    return declare


class UndeclaredRoute(RuntimeError):
    """A route whose endpoint says nothing of what it needs: the app does not start."""


@dataclass(frozen=True)
class _Template:
    regex: re.Pattern[str]
    methods: dict[str, Rule]


class RouteTable:
    """The declarations of the app's routes, for lookups: exact paths in a dict, templated
    ones as regexes."""

    def __init__(self, by_path: dict[str, dict[str, Rule]]) -> None:
        self.exact = {p: m for p, m in by_path.items() if "{" not in p}
        self.templates = [_Template(compile_path(p)[0], m) for p, m in by_path.items() if "{" in p]
        self._seen: dict[str, dict[str, Rule]] = {}

    @classmethod
    def of(cls, routes: Iterable[BaseRoute]) -> RouteTable:
        """The table of ``routes`` (``app.routes``); ``UndeclaredRoute`` names every route
        whose endpoint has no ``@needs``."""
        by_path: dict[str, dict[str, Rule]] = {}
        undeclared = []
        for route in iter_route_contexts(list(routes)):  # included routers' routes too
            rule: Rule | None = getattr(route.endpoint, _RULE, None)
            methods = sorted(getattr(route, "methods", None) or ())
            if route.path is None or not methods:  # no HTTP route (a mount, a websocket)
                continue
            if rule is None:
                undeclared += [f"{method} {route.path}" for method in methods]
                continue
            served = by_path.setdefault(route.path, {})
            served.update(dict.fromkeys(methods, rule))
            if "GET" in methods:  # HEAD follows GET
                served.setdefault("HEAD", rule)
        if undeclared:
            raise UndeclaredRoute(
                f"routes without an access declaration: {', '.join(undeclared)}; decorate "
                "each endpoint with @needs(OPEN | READ | ADMIN) (service/http/policy.py)"
            )
        return cls(by_path)

    def methods(self, path: str) -> dict[str, Rule] | None:
        """The methods served at ``path`` and what each needs; ``None`` for an unknown path.
        Templated paths found are remembered (``/models/cnn/predict`` is asked on every
        request), up to ``_CACHED`` of them: a scanner's paths cannot grow the cache."""
        found = self.exact.get(path) or self._seen.get(path)
        if found is not None:
            return found
        for template in self.templates:
            if template.regex.match(path):
                if len(self._seen) >= _CACHED:
                    self._seen.clear()
                self._seen[path] = template.methods
                return template.methods
        return None

    def rule(self, method: str, path: str) -> Rule:
        """What a request needs; unknown routes need READ (GET, HEAD) or ADMIN (others)."""
        methods = self.methods(path) or {}
        known = methods.get(method)
        if known is not None:
            return known
        return _UNKNOWN_SAFE if method in browser.SAFE_METHODS else _UNKNOWN_UNSAFE

    def access(self, method: str, path: str) -> Access:
        """The key a request needs (``rule``'s access level)."""
        return self.rule(method, path).access


#: Undeclared: no media type to check (routing answers 404 or 405 once the key is checked).
_UNKNOWN_SAFE, _UNKNOWN_UNSAFE = Rule(READ, accepts=()), Rule(ADMIN, accepts=())
#: Most templated paths ``RouteTable.methods`` remembers.
_CACHED = 1024
