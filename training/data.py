"""The lecture's data as torch tensors: ``load_digits`` split 80/20 with ``random_state=1234``
(``training.digits``: the same split as numpy arrays, and the data's constants)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.digits import (
    LECTURE_RANDOM_STATE,
    OUT_OF_FOLD_FOLDS,
    OUT_OF_FOLD_RANDOM_STATE,
    TEST_SIZE,
    lecture_arrays,
    validation_facts,
    validation_positions,
)


@dataclass(frozen=True)
class Split:
    """Train and test rows as tensors: ``x`` float32 (N, 64) raw 0..16, ``y`` int64 (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    random_state: int

    def describe(self) -> dict[str, object]:
        """The facts a manifest records about this split."""
        return {
            "dataset": "sklearn.datasets.load_digits",
            "test_size": TEST_SIZE,
            "random_state": self.random_state,
            "shuffle": True,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
        }


def load_split(random_state: int = LECTURE_RANDOM_STATE, *, check: bool = True) -> Split:
    """Load the digits and split them as the lecture does (``training.digits.lecture_arrays``:
    with the lecture's ``random_state`` and ``check=True`` the first test labels are checked)."""
    x_train, y_train, x_test, y_test = lecture_arrays(random_state, check=check)
    return Split(
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(y_train),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(y_test),
        random_state=random_state,
    )


@dataclass(frozen=True)
class Validation:
    """Rows held out of fitting, carved from the training rows by :func:`carve_validation`."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor  # positions in the original ``Split.x_train``

    def describe(self) -> dict[str, object]:
        """The facts a manifest records about the carve, enough to carve it again."""
        return validation_facts(len(self.y))


def carve_validation(split: Split) -> tuple[Split, Validation]:
    """Split the training rows into fitting rows and validation rows, the same way every time.

    Returns a :class:`Split` whose training rows exclude the validation rows (its test rows are
    the lecture's, unchanged) and the :class:`Validation` rows. Stratified by label, with a
    fixed seed, so every version ever fitted is scored on the same validation rows.
    """
    fit_idx, val_idx = validation_positions(split.y_train.numpy())
    fit_pos, val_pos = torch.from_numpy(fit_idx), torch.from_numpy(val_idx)
    fitting = Split(
        x_train=split.x_train[fit_pos],
        y_train=split.y_train[fit_pos],
        x_test=split.x_test,
        y_test=split.y_test,
        random_state=split.random_state,
    )
    return fitting, Validation(x=split.x_train[val_pos], y=split.y_train[val_pos], indices=val_pos)


def fold_indices(
    split: Split, k: int = OUT_OF_FOLD_FOLDS, seed: int = OUT_OF_FOLD_RANDOM_STATE
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``k`` stratified folds of the training rows: (fit positions, held-out positions) each."""
    from sklearn.model_selection import StratifiedKFold

    kfold = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    pairs = kfold.split(split.x_train.numpy(), split.y_train.numpy())
    return [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in pairs]


def held_out_fold(split: Split, fit_pos: torch.Tensor, out_pos: torch.Tensor) -> Split:
    """The training rows at ``fit_pos`` as training rows, those at ``out_pos`` as "test"."""
    return Split(
        x_train=split.x_train[fit_pos],
        y_train=split.y_train[fit_pos],
        x_test=split.x_train[out_pos],
        y_test=split.y_train[out_pos],
        random_state=split.random_state,
    )


def out_of_fold_record(split: Split, k: int = OUT_OF_FOLD_FOLDS) -> dict[str, object]:
    """What a manifest records of the out-of-fold scoring (its ``validation`` entry, with the
    accuracy added): every training row scored by a model fitted without it."""
    return {
        "from": "out_of_fold",
        "folds": k,
        "random_state": OUT_OF_FOLD_RANDOM_STATE,
        "stratified": True,
        "n_validation": len(split.y_train),
    }
