"""The lecture's data: ``load_digits`` split 80/20 with ``random_state=1234``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: The split of the lecture; every reported figure uses it.
LECTURE_RANDOM_STATE = 1234
TEST_SIZE = 0.20
#: The first test labels of the lecture's split, used as its fingerprint.
LECTURE_FIRST_TEST_LABELS = (7, 1, 7, 6, 0, 2, 4, 3, 6, 3)
N_FEATURES = 64
N_CLASSES = 10
PIXEL_MIN = 0.0
PIXEL_MAX = 16.0
#: The validation rows carved from the training rows (never from the test rows): the rows that
#: choose (promotion gate, temperature scaling), while the lecture's test rows stay the report.
VALIDATION_FRACTION = 0.15
VALIDATION_RANDOM_STATE = 0
#: The out-of-fold scoring of the training rows (temperature, held-out accuracy): stratified
#: k-fold with this many folds and this shuffle seed.
OUT_OF_FOLD_FOLDS = 5
OUT_OF_FOLD_RANDOM_STATE = 0


class SplitMismatch(RuntimeError):
    """The split does not match the lecture's (different sklearn data or split code)."""


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
    """Load the digits and split them as the lecture does.

    With the lecture's ``random_state`` and ``check=True`` the first test labels are compared
    with the lecture's, so a changed dataset or split never goes unnoticed.
    """
    # Imported here, not at module level: the service imports this module for its constants
    # and must not pay scikit-learn's import time and memory (~1 s, ~80 MB) to serve.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=TEST_SIZE, shuffle=True, random_state=random_state
    )
    split = Split(
        x_train=torch.from_numpy(np.asarray(x_train, dtype=np.float32)),
        y_train=torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
        x_test=torch.from_numpy(np.asarray(x_test, dtype=np.float32)),
        y_test=torch.from_numpy(np.asarray(y_test, dtype=np.int64)),
        random_state=random_state,
    )
    if check and random_state == LECTURE_RANDOM_STATE:
        first = tuple(int(v) for v in split.y_test[: len(LECTURE_FIRST_TEST_LABELS)])
        if first != LECTURE_FIRST_TEST_LABELS:
            raise SplitMismatch(
                f"first test labels are {first}, the lecture's split has "
                f"{LECTURE_FIRST_TEST_LABELS}; check the scikit-learn version"
            )
    return split


@dataclass(frozen=True)
class Validation:
    """Rows held out of fitting, carved from the training rows by :func:`carve_validation`."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor  # positions in the original ``Split.x_train``

    def describe(self) -> dict[str, object]:
        """The facts a manifest records about the carve, enough to carve it again."""
        return {
            "from": "train",
            "fraction": VALIDATION_FRACTION,
            "random_state": VALIDATION_RANDOM_STATE,
            "stratified": True,
            "n_validation": len(self.y),
        }


def carve_validation(split: Split) -> tuple[Split, Validation]:
    """Split the training rows into fitting rows and validation rows, the same way every time.

    Returns a :class:`Split` whose training rows exclude the validation rows (its test rows are
    the lecture's, unchanged) and the :class:`Validation` rows. Stratified by label, with a
    fixed seed, so every version ever fitted is scored on the same validation rows.
    """
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(split.y_train))
    fit_idx, val_idx = train_test_split(
        positions,
        test_size=VALIDATION_FRACTION,
        shuffle=True,
        stratify=split.y_train.numpy(),
        random_state=VALIDATION_RANDOM_STATE,
    )
    fit_pos = torch.from_numpy(np.sort(fit_idx))
    val_pos = torch.from_numpy(np.sort(val_idx))
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
