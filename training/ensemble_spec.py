"""What an ensemble fits, without torch: its members (each an architecture and a recipe with
its own seed) and the default members. ``training.ensemble`` fits one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from training.recipes import Recipe, RecipeName, preset
from training.specs import Family, ModelSpec

ENSEMBLE = "ensemble"
#: The default members: two CNNs, each the CNN's default recipe with its own seed. Measured
#: against 3 CNNs + 2 FNNs (issue 23, docs/training.md): fewer test errors on 4 of 5 seeds
#: (0, 0, 1, 1, 2 against 2, 2, 2, 1, 2) at about half the serving cost.
DEFAULT_MEMBERS: tuple[Family, ...] = ("cnn", "cnn")


@dataclass(frozen=True)
class Member:
    """One member: its architecture and the recipe (with its own seed) that fits it."""

    spec: ModelSpec
    recipe: Recipe

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.spec.family,
            "seed": self.recipe.seed,
            "architecture": self.spec.to_dict(),
            "hyperparameters": self.recipe.to_dict(),
        }


@dataclass(frozen=True)
class EnsembleSpec:
    """The members of an ensemble; ``family`` is always ``"ensemble"``."""

    members: tuple[Member, ...]
    seed: int = 0
    family: str = field(default=ENSEMBLE, init=False)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``architecture``: the members' families and architectures."""
        return {
            "family": ENSEMBLE,
            "members": [
                {"family": m.spec.family, "architecture": m.spec.to_dict()} for m in self.members
            ],
        }

    def recipe(self) -> EnsembleRecipe:
        """The manifest's ``hyperparameters``: the ensemble seed and each member's recipe."""
        return EnsembleRecipe(self.seed, tuple(m.recipe for m in self.members))

    @classmethod
    def from_members(cls, members: list[dict[str, Any]], seed: int) -> EnsembleSpec:
        """Inverse of the members' ``Member.to_dict`` (a job record keeps them so)."""
        return cls(
            tuple(
                Member(ModelSpec.from_dict(m["architecture"]), Recipe(**m["hyperparameters"]))
                for m in members
            ),
            seed,
        )

    @property
    def iterations(self) -> int:
        """Optimizer steps of the whole fit (the members' together)."""
        return sum(m.recipe.iterations for m in self.members)


@dataclass(frozen=True)
class EnsembleRecipe:
    """What the manifest records as the ensemble's hyper-parameters."""

    seed: int
    members: tuple[Recipe, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "iterations": sum(r.iterations for r in self.members),
            "members": [r.to_dict() for r in self.members],
        }


def member_seed(seed: int, index: int, n_members: int) -> int:
    """Seed of member ``index`` of ensemble seed ``seed``: distinct across ensemble seeds."""
    return seed * n_members + index


def ensemble_spec(
    families: Sequence[Family] = DEFAULT_MEMBERS,
    *,
    seed: int = 0,
    recipe: RecipeName = "default",
    iterations: int | None = None,
) -> EnsembleSpec:
    """An ensemble of ``families`` (repeats allowed), each with its family's ``recipe`` preset
    and seed ``member_seed(seed, i, n)``; ``iterations`` overrides every member's."""
    if not families:
        raise ValueError("an ensemble needs at least one member family")
    members = []
    for index, family in enumerate(families):
        chosen = preset(family, recipe)
        member_recipe = chosen.recipe.with_overrides(
            seed=member_seed(seed, index, len(families)), iterations=iterations
        )
        members.append(Member(chosen.spec, member_recipe))
    return EnsembleSpec(tuple(members), seed)
