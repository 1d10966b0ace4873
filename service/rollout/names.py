"""Alias names and a request's pick among them: the rules, no storage.

``check_alias_name`` says whether a name may be an alias; ``pick_alias`` places a request in
a model's canary split; ``Routing`` is one model's aliases, weights and shadow alias.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

from service.errors import InvalidInput

PRODUCTION = "production"
#: What an alias name may be; ``shadow`` is the traffic body's key for the shadow alias.
ALIAS_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
RESERVED = frozenset({"shadow"})
#: The same rule as a JSON Schema ``pattern`` (ECMA-262), for the OpenAPI schema of every
#: route that takes an alias name; the routes check names with ``check_alias_name``.
ALIAS_SCHEMA_PATTERN = f"^(?!(?:{'|'.join(sorted(RESERVED))})$){ALIAS_PATTERN.pattern}$"


@dataclass(frozen=True)
class Routing:
    """One model's aliases, canary weights (alias -> percent, summing to 100, or empty) and
    shadow alias."""

    aliases: dict[str, int] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    shadow: str | None = None

    @property
    def production(self) -> int | None:
        return self.aliases.get(PRODUCTION)


def check_alias_name(alias: str) -> str:
    """``alias`` if it is a valid alias name, else ``InvalidInput`` saying what is."""
    if not ALIAS_PATTERN.fullmatch(alias) or alias in RESERVED:
        raise InvalidInput(
            f"{alias!r} is not a valid alias name",
            expected="lower-case letters, digits, '-' or '_', starting with a letter, at most "
            "32 characters, not 'shadow' (e.g. production, staging, canary)",
        )
    return alias


def pick_alias(weights: dict[str, int], request_id: str | None) -> str:
    """The alias a request goes to under ``weights`` (percent, summing to 100): a fixed
    bucket of the ``X-Request-Id`` when one is sent (sticky), else a random one."""
    if request_id:
        digest = hashlib.sha256(request_id.encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") % 100
    else:
        bucket = random.randrange(100)  # a traffic split, not a secret
    for alias, weight in weights.items():
        if bucket < weight:
            return alias
        bucket -= weight
    return PRODUCTION  # unreachable with weights summing to 100
