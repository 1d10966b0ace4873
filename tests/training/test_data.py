"""The lecture's split: sizes, dtypes and fingerprint."""

from __future__ import annotations

import torch

from training.data import Split, carve_validation


def test_split_has_1437_train_and_360_test_rows(split: Split) -> None:
    """The 80/20 split of 1,797 digits gives 1,437 training and 360 test rows of 64 values."""
    assert split.x_train.shape == (1437, 64)
    assert split.y_train.shape == (1437,)
    assert split.x_test.shape == (360, 64)
    assert split.y_test.shape == (360,)


def test_split_matches_the_lecture_fingerprint(split: Split) -> None:
    """The first test labels and the start of training row 0 are the lecture's."""
    assert split.y_test[:10].tolist() == [7, 1, 7, 6, 0, 2, 4, 3, 6, 3]
    assert split.x_train[0, :8].tolist() == [0, 0, 0, 10, 11, 0, 0, 0]


def test_split_holds_raw_float32_pixels_and_int64_labels(split: Split) -> None:
    """Pixels stay unscaled integers 0..16 in float32; labels are int64 0..9."""
    assert split.x_train.dtype == torch.float32
    assert split.y_train.dtype == torch.int64
    assert split.x_train.min().item() == 0
    assert split.x_train.max().item() == 16
    assert set(split.y_test.tolist()) == set(range(10))


def test_validation_is_carved_from_train_rows_only_and_is_the_same_every_time(split: Split) -> None:
    fitting, validation = carve_validation(split)
    again_fitting, again = carve_validation(split)
    assert torch.equal(validation.indices, again.indices)
    assert torch.equal(fitting.x_train, again_fitting.x_train)
    # Disjoint, and together exactly the training rows; the test rows untouched.
    assert len(fitting.y_train) + len(validation.y) == len(split.y_train)
    kept = set(range(len(split.y_train))) - {int(i) for i in validation.indices}
    assert torch.equal(fitting.x_train, split.x_train[sorted(kept)])
    assert torch.equal(validation.x, split.x_train[validation.indices])
    assert torch.equal(fitting.x_test, split.x_test)
    assert validation.describe()["n_validation"] == len(validation.y) == 216
    # Stratified: every class is in the validation rows.
    assert set(validation.y.tolist()) == set(range(10))
