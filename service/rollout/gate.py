"""The promotion gate: a version may become ``production`` only if its validation accuracy is
at least production's minus a tolerance (``DIGITS_GATE_TOLERANCE``, one setting).

Rollout never measures: the caller hands in ``Gate(measure, tolerance)``, where ``measure``
is the one accuracy measure (``service.inference.validation``: a version's
manifest record on the validation rows, else a forward over them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

#: A version's validation accuracy, or ``None`` when it cannot be measured (not on disk).
Measure = Callable[[int], float | None]


@dataclass(frozen=True)
class Verdict:
    """The gate's answer, with both figures."""

    passed: bool
    version: int
    accuracy: float | None
    production_version: int | None
    production_accuracy: float | None
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        """The figures in words, for the history and error messages."""
        mine = "unmeasurable" if self.accuracy is None else f"{self.accuracy:.4f}"
        if self.production_accuracy is None:
            return f"validation accuracy {mine} vs (none)"
        relation = ">=" if self.passed else "<"
        return (
            f"validation accuracy {mine} {relation} {self.production_accuracy:.4f} of version "
            f"{self.production_version} - {self.tolerance:g}"
        )


def judge(
    version: int,
    candidate: float | None,
    production_version: int | None,
    production: float | None,
    tolerance: float,
) -> Verdict:
    """Pass when there is no production figure, or ``candidate >= production - tolerance``;
    an unmeasurable candidate never passes against a measured production."""
    passed = production is None or (
        candidate is not None and candidate >= production - tolerance - 1e-12
    )
    return Verdict(passed, version, candidate, production_version, production, tolerance)


@dataclass(frozen=True)
class Gate:
    """The gate of one model: ``measure`` from the caller, ``tolerance`` from the settings."""

    measure: Measure
    tolerance: float

    def check(self, version: int, production: int | None) -> Verdict:
        """``version`` judged against ``production`` (the version production names now)."""
        against = None if production in (None, version) else production
        figure = None if against is None else self.measure(against)
        return judge(version, self.measure(version), against, figure, self.tolerance)
