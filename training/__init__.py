"""Offline training package: the lecture's digit classifiers, fitted, reproduced and exported.

Modules (no work happens at import time):

- ``data``: the lecture's split of ``load_digits`` and its fingerprint check.
- ``models``: ``Logistic``, ``HandLogistic``, ``FNN``, ``CNN`` and ``build_model(spec)``.
- ``recipes``: ``Recipe`` (how to fit) and the ``lecture`` / ``default`` presets per family.
- ``fit``: ``fit(model, split, recipe, on_step=None) -> FitResult``; ``optim`` (optimizer,
  schedule, weight average) and ``augment`` (shifts, rotations) are its parts.
- ``export``: TorchScript export and the ``Manifest``; ``scripting`` (scripting, forward
  timing), ``curves`` (the loss and accuracy curves), ``artifacts`` (sha256-checked loading).
- ``__main__``: ``python -m training`` (``digits-train``), fit and export chosen families.
- ``cv``: ``python -m training.cv``, k-fold CV of candidate recipes on the training rows
  (the grid: ``cv_grid``).
- ``report``: ``python -m training.report --seeds 5``, the reproduction report (its rows:
  ``report_rows``, its tables: ``report_tables``).
"""
