"""What a web browser sends, and what the service answers it: the checks that keep another
site's page from using the service through a visitor's browser, and the headers of the pages.

- ``HostCheck``: the ``Host`` header must name this service (``DIGITS_ALLOWED_HOSTS``; by
  default the loopback names when bound to loopback, any host when exposed): a page on a
  rebinding domain (``evil.example`` resolving to 127.0.0.1) sends its own name.
- ``cross_site``: a browser marks the requests another site's page makes, with
  ``Sec-Fetch-Site`` (``cross-site``, ``same-site``) or, in older browsers, an ``Origin`` of
  another host; such a request may not change state. Clients that are no browser (curl,
  httpx, tritonclient) send neither header and are not affected.
- ``media_type_accepted``: a body must be JSON (or what the route declares), or carry no
  ``Content-Type`` at all (tritonclient sends none); a form or text body is what a page can
  send anywhere without CORS.
- ``page_headers``: Content-Security-Policy, ``X-Frame-Options`` and ``X-Content-Type-Options``
  of the HTML pages (the console, Swagger UI, ReDoc).

All of it runs in ``service/http/access.py``'s one middleware, from one pass over the headers.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

#: Methods that never change state: not subject to the cross-site and media-type checks.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: What a route's body may be unless it declares otherwise.
JSON: tuple[bytes, ...] = (b"application/json",)
#: The names of this machine's loopback interface, as a ``Host`` header carries them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class HostCheck:
    """Which ``Host`` header values the service answers: exact names, ``*.domain`` for any
    name under a domain, or ``*`` for any (Starlette's ``TrustedHostMiddleware`` patterns)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        names = [p.strip().lower() for p in patterns if p.strip()]
        self.any = "*" in names
        self.exact = frozenset(n for n in names if not n.startswith("*."))
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self.described = ", ".join(names)

    def allows(self, host: bytes | None) -> bool:
        """Whether a request with this ``Host`` header (``None``: none) is answered."""
        if self.any:
            return True
        if not host:
            return False
        name = hostname(host)
        return name in self.exact or name.endswith(self.suffixes)


def hostname(host: bytes) -> str:
    """The name in a ``Host`` header, without the port: ``[::1]:8000`` -> ``[::1]``."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text.partition("]")[0] + "]"
    return text.partition(":")[0]


def default_hosts(bind: str, loopback: bool) -> list[str]:
    """``DIGITS_ALLOWED_HOSTS`` when unset: the loopback names when bound to loopback (and
    the bound name itself), any host (``*``) when exposed, where the names are not known."""
    return [*LOOPBACK_HOSTS, bind] if loopback else ["*"]


def cross_site(fetch_site: bytes | None, origin: bytes | None, host: bytes | None) -> bool:
    """Whether a browser sent this request from another site's (or another port's) page.
    ``Sec-Fetch-Site`` decides where a browser sends it; else an ``Origin`` whose host is
    not this request's (``null``: a sandboxed page or a file)."""
    if fetch_site is not None:
        return fetch_site not in (b"same-origin", b"none")
    if origin is None:
        return False
    netloc = origin.partition(b"://")[2]  # empty for "null"
    return not host or hostname(netloc) != hostname(host)


def media_type_accepted(content_type: bytes, accepted: tuple[bytes, ...]) -> bool:
    """Whether a body of this ``Content-Type`` is one the route takes: one of ``accepted``
    (``image/*`` takes any image; ``application/json`` any ``application/...+json``)."""
    media = content_type.partition(b";")[0].strip().lower()
    for pattern in accepted:
        if media == pattern:
            return True
        if pattern.endswith(b"/*") and media.startswith(pattern[:-1]):
            return True
        json_type = media.startswith(b"application/") and media.endswith(b"+json")
        if pattern == b"application/json" and json_type:
            return True
    return False


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_POLICY = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self'{styles}; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def page_headers(html: bytes = b"", *, inline_styles: bool = False) -> dict[str, str]:
    """The security headers of an HTML page: a Content-Security-Policy admitting the
    service's own files and the page's inline scripts by hash (none in the console; Swagger
    UI's start-up script), inline styles only when asked (ReDoc and Swagger UI set them from
    script); the page may not be framed, nor a file read as another type."""
    hashes = [hashlib.sha256(body).digest() for body in _INLINE_SCRIPT.findall(html)]
    scripts = "".join(f" 'sha256-{base64.b64encode(h).decode()}'" for h in hashes)
    policy = _POLICY.format(scripts=scripts, styles=" 'unsafe-inline'" if inline_styles else "")
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
    }


#: Headers of the files the pages load (scripts, styles): never read as another type.
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff"}
