"""The lecture's digits without torch: the constants of the data, its 80/20 split of
``load_digits`` (``random_state=1234``) and the validation carve, as numpy arrays.

``training.data`` builds its torch ``Split`` from these; the serving process (which has no
torch, issue 24) reads its constants and, for a version with no recorded figure, the gate's
validation rows from here. scikit-learn is imported inside the functions only.
"""

from __future__ import annotations

import numpy as np

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


def lecture_arrays(
    random_state: int = LECTURE_RANDOM_STATE, *, check: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test`` of the lecture's split: float32 (N, 64) raw
    0..16 pixels and int64 labels.

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
    arrays = (
        np.asarray(x_train, dtype=np.float32),
        np.asarray(y_train, dtype=np.int64),
        np.asarray(x_test, dtype=np.float32),
        np.asarray(y_test, dtype=np.int64),
    )
    if check and random_state == LECTURE_RANDOM_STATE:
        first = tuple(int(v) for v in arrays[3][: len(LECTURE_FIRST_TEST_LABELS)])
        if first != LECTURE_FIRST_TEST_LABELS:
            raise SplitMismatch(
                f"first test labels are {first}, the lecture's split has "
                f"{LECTURE_FIRST_TEST_LABELS}; check the scikit-learn version"
            )
    return arrays


def validation_positions(y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions of the fitting rows and of the validation rows among the training
    rows: stratified by label, with a fixed seed, the same every time."""
    from sklearn.model_selection import train_test_split

    fit_idx, val_idx = train_test_split(
        np.arange(len(y_train)),
        test_size=VALIDATION_FRACTION,
        shuffle=True,
        stratify=y_train,
        random_state=VALIDATION_RANDOM_STATE,
    )
    return np.sort(fit_idx), np.sort(val_idx)


def validation_facts(n_validation: int) -> dict[str, object]:
    """What a manifest records of the validation carve, enough to carve it again."""
    return {
        "from": "train",
        "fraction": VALIDATION_FRACTION,
        "random_state": VALIDATION_RANDOM_STATE,
        "stratified": True,
        "n_validation": n_validation,
    }
