"""The named recipes: the lecture's exact procedure and the defaults."""

from __future__ import annotations

import pytest

from training.recipes import LECTURE, preset
from training.specs import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_lecture_recipe_is_full_batch_sgd_at_lr_0_001_momentum_0_9(family: str) -> None:
    """Every lecture preset fits with full-batch SGD, lr 0.001, momentum 0.9, on raw pixels."""
    chosen = LECTURE[family]  # type: ignore[index]  # parametrized with the literal names
    assert chosen.recipe.optimizer == "sgd"
    assert chosen.recipe.batch_size is None
    assert (chosen.recipe.lr, chosen.recipe.momentum) == (0.001, 0.9)
    assert chosen.spec.input_scale == 1.0


def test_preset_names_what_exists_for_an_unknown_recipe() -> None:
    """Asking for an unknown recipe is a ValueError listing the recipes."""
    with pytest.raises(ValueError, match="lecture, default"):
        preset("cnn", "fancy")  # type: ignore[arg-type]  # deliberately invalid
