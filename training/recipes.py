"""How a model is fitted: the ``Recipe``, and the ``lecture`` and ``default`` presets.

A ``Preset`` pairs an architecture (``ModelSpec``) with a ``Recipe``. ``LECTURE`` holds the
lecture's procedure exactly (full batch, SGD lr 0.001 momentum 0.9, its iteration counts);
``DEFAULT`` holds the better recipe per family that the shipped models are fitted with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from training.specs import Family, ModelSpec

Optimizer = Literal["sgd", "adam", "adamw"]
Schedule = Literal["constant", "cosine"]
RecipeName = Literal["lecture", "default"]
RECIPE_NAMES: tuple[RecipeName, ...] = ("lecture", "default")


@dataclass(frozen=True)
class Recipe:
    """The fitting procedure. ``iterations`` counts optimizer steps."""

    iterations: int = 1000
    lr: float = 0.001
    momentum: float = 0.9
    optimizer: Optimizer = "sgd"
    weight_decay: float = 0.0
    schedule: Schedule = "constant"
    #: Rows per step; ``None`` = full batch (all training rows every step, as in the lecture).
    batch_size: int | None = None
    label_smoothing: float = 0.0
    #: Random shifts of up to one pixel (CNN only: it ruins linear models).
    augment_shift: bool = False
    #: Train and test accuracy are recorded every ``acc_step`` iterations (and at the end).
    acc_step: int = 10
    seed: int = 0
    #: Linear warm-up of the learning rate over the first ``warmup`` steps (0 = none); with
    #: the cosine schedule the cosine then runs over the remaining steps.
    warmup: int = 0
    #: Exponential moving average of the weights, updated after every step with this decay
    #: (0 = off). When on, the accuracies are those of the averaged weights and the fitted
    #: model ends up holding them (so the exported model is the averaged one).
    ema_decay: float = 0.0
    #: Random rotations of up to this many degrees either way (CNN only; 0 = off), drawn per
    #: image and applied before the shifts.
    augment_rotate: float = 0.0
    #: Stochastic weight averaging: the equal average of the weights after every step from
    #: this fraction of the iterations on (0 = off; e.g. 0.75 averages the last quarter). Like
    #: EMA, the accuracies and the fitted model are then the averaged weights.
    swa_start: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for manifests and job records)."""
        return asdict(self)

    def with_overrides(self, **changes: Any) -> Recipe:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Preset:
    """An architecture and the recipe that fits it."""

    spec: ModelSpec
    recipe: Recipe


_LECTURE_SGD = Recipe(lr=0.001, momentum=0.9, optimizer="sgd", batch_size=None, acc_step=10)

#: Every row of the lecture's accuracy table, keyed by a short id.
LECTURE_ROWS: dict[str, Preset] = {
    "logistic_hand": Preset(
        ModelSpec("logistic", hand_made=True, label="logistic, hand-made parameters"),
        replace(_LECTURE_SGD, iterations=1000),
    ),
    "logistic": Preset(
        ModelSpec("logistic", label="logistic, nn.Linear"), replace(_LECTURE_SGD, iterations=1000)
    ),
    "fnn_relu": Preset(
        ModelSpec("fnn", hidden=64, depth=1, activation="relu", label="FNN, ReLU"),
        replace(_LECTURE_SGD, iterations=2000),
    ),
    "fnn_tanh": Preset(
        ModelSpec("fnn", hidden=64, depth=1, activation="tanh", label="FNN, Tanh"),
        replace(_LECTURE_SGD, iterations=2000),
    ),
    "fnn2_relu": Preset(
        ModelSpec("fnn", hidden=64, depth=2, activation="relu", label="FNN, 2 hidden, ReLU"),
        replace(_LECTURE_SGD, iterations=1000),
    ),
    "fnn2_tanh": Preset(
        ModelSpec("fnn", hidden=64, depth=2, activation="tanh", label="FNN, 2 hidden, Tanh"),
        replace(_LECTURE_SGD, iterations=1000),
    ),
    "cnn": Preset(
        ModelSpec("cnn", channels=(8,), label="CNN"), replace(_LECTURE_SGD, iterations=1000)
    ),
}

#: The lecture's (train, test) accuracy per row; ``None`` where the lecture gives none.
LECTURE_REPORTED: dict[str, tuple[float | None, float]] = {
    "logistic_hand": (None, 0.8833),
    "logistic": (0.9916, 0.9681),
    "fnn_relu": (0.9979, 0.9722),
    "fnn_tanh": (0.9958, 0.9722),
    "fnn2_relu": (0.9910, 0.9611),
    "fnn2_tanh": (0.9805, 0.9667),
    "cnn": (0.9951, 0.9833),
}

#: The lecture recipe per served family (its ``nn.Linear`` logistic, its ReLU FNN, its CNN).
LECTURE: dict[Family, Preset] = {
    "logistic": LECTURE_ROWS["logistic"],
    "fnn": LECTURE_ROWS["fnn_relu"],
    "cnn": LECTURE_ROWS["cnn"],
}

#: The better default recipe per family: inputs scaled by 1/16 inside the module, Adam with a
#: cosine schedule and mini-batches of 64; label smoothing 0.1 and dropout for the FNN and CNN,
#: one-pixel shifts for the CNN. Chosen by 5-fold cross-validation on the training rows only
#: (``python -m training.cv``; results in ``docs/training.md``).
DEFAULT: dict[Family, Preset] = {
    "logistic": Preset(
        ModelSpec("logistic", input_scale=1 / 16, label="logistic (default recipe)"),
        Recipe(
            iterations=2000,
            lr=0.03,
            optimizer="adam",
            weight_decay=0.0,
            schedule="cosine",
            batch_size=64,
            label_smoothing=0.0,
            acc_step=100,
        ),
    ),
    "fnn": Preset(
        ModelSpec(
            "fnn",
            hidden=256,
            depth=1,
            activation="relu",
            dropout=0.2,
            input_scale=1 / 16,
            label="FNN (default recipe)",
        ),
        Recipe(
            iterations=3000,
            lr=0.003,
            optimizer="adam",
            schedule="cosine",
            batch_size=64,
            label_smoothing=0.1,
            acc_step=100,
        ),
    ),
    "cnn": Preset(
        ModelSpec(
            "cnn", channels=(24, 48), dropout=0.25, input_scale=1 / 16, label="CNN (default recipe)"
        ),
        Recipe(
            iterations=2000,
            lr=0.003,
            optimizer="adam",
            schedule="cosine",
            batch_size=64,
            label_smoothing=0.1,
            augment_shift=True,
            acc_step=100,
        ),
    ),
}

PRESETS: dict[RecipeName, dict[Family, Preset]] = {"lecture": LECTURE, "default": DEFAULT}


def preset(family: Family, recipe: RecipeName = "default") -> Preset:
    """The named preset of a family; ``ValueError`` naming what exists otherwise."""
    try:
        return PRESETS[recipe][family]
    except KeyError:
        raise ValueError(
            f"no {recipe!r} recipe for family {family!r}; families: logistic, fnn, cnn; "
            f"recipes: {', '.join(RECIPE_NAMES)}"
        ) from None
