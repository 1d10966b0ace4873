"""Shared fixtures of the training tests: the lecture split and tiny fitted models."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from training.data import Split, load_split
from training.fit import FitResult, train
from training.recipes import DEFAULT, Preset
from training.specs import Family

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Few steps keep the suite fast; enough for the loss to fall.
FEW_ITERATIONS = 20


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The commands set torch's thread count (``--threads``); give other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def split() -> Split:
    """The lecture's split, loaded once per session."""
    return load_split()


@pytest.fixture(scope="session")
def shipped_models_dir() -> Path:
    """The repository's ``models/`` folder, which the service serves."""
    return REPO_ROOT / "models"


def tiny(preset: Preset, iterations: int = FEW_ITERATIONS) -> Preset:
    """The same architecture and recipe, cut to a few iterations."""
    return Preset(preset.spec, replace(preset.recipe, iterations=iterations, acc_step=5))


@pytest.fixture(scope="session")
def fitted(split: Split) -> dict[Family, tuple[Preset, nn.Module, FitResult]]:
    """One briefly fitted default model per family (inputs scaled by 1/16 inside)."""
    out: dict[Family, tuple[Preset, nn.Module, FitResult]] = {}
    for family, chosen in DEFAULT.items():
        short = tiny(chosen)
        model, result = train(short.spec, split, short.recipe)
        out[family] = (short, model, result)
    return out
