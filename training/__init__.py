"""Offline training package: the lecture's digit classifiers, fitted, reproduced and exported.

Modules (no work happens at import time):

- ``data``: the lecture's split of ``load_digits`` and its fingerprint check.
- ``models``: ``Logistic``, ``HandLogistic``, ``FNN``, ``CNN`` and ``build_model(spec)``.
- ``recipes``: ``Recipe`` (how to fit) and the ``lecture`` / ``default`` presets per family.
- ``fit``: ``fit(model, split, recipe, on_step=None) -> FitResult``.
- ``export``: TorchScript export, the ``Manifest`` and sha256-checked loading.
- ``__main__``: ``python -m training`` (``digits-train``), fit and export chosen families.
- ``cv``: ``python -m training.cv``, k-fold CV of candidate recipes on the training rows.
- ``report``: ``python -m training.report --seeds 5``, the reproduction report.
"""
