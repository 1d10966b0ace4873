"""Offline training package: the lecture's digit classifiers, fitted, reproduced and exported.

Modules (no work happens at import time):

Torch-free (the serving process imports these and never torch):

- ``digits``: the data's constants, the lecture's split of ``load_digits`` as numpy arrays
  and its fingerprint check, the validation carve.
- ``contract``: the artifact contract of ``models/``: the ``Manifest``, the file names,
  reading and sha256-checking a version folder.
- ``specs`` / ``ensemble_spec``: what to fit (``ModelSpec``, the families, an ensemble's
  members); ``recipes``: ``Recipe`` (how to fit) and the ``lecture`` / ``default`` presets
  per family; ``curves``: the curves' files and drawing (matplotlib).

With torch:

- ``data``: the split as tensors (``Split``), folds and the carve.
- ``models``: ``Logistic``, ``HandLogistic``, ``FNN``, ``CNN`` and ``build_model(spec)``.
- ``fit``: ``fit(model, split, recipe, on_step=None) -> FitResult``; ``optim`` (optimizer,
  schedule, weight average) and ``augment`` (shifts, rotations) are its parts.
- ``export``: TorchScript and ONNX export (``onnx_export``); ``scripting`` (scripting, forward
  timing), ``artifacts`` (loading a checked ``model.pt``).
- ``__main__``: ``python -m training`` (``digits-train``), fit and export chosen families.
- ``cv``: ``python -m training.cv``, k-fold CV of candidate recipes on the training rows
  (the grid: ``cv_grid``).
- ``report``: ``python -m training.report --seeds 5``, the reproduction report (its rows:
  ``report_rows``, its tables: ``report_tables``).
"""
