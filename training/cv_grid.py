"""The candidate recipes of ``python -m training.cv``: a few one-change variants around each
family's default (``training.recipes.DEFAULT``); the report's candidate rows come from here too."""

from __future__ import annotations

from dataclasses import replace

from training.recipes import DEFAULT, Preset
from training.specs import Family


def _variant(family: Family, spec: dict[str, object], recipe: dict[str, object]) -> Preset:
    base = DEFAULT[family]
    return Preset(replace(base.spec, **spec), replace(base.recipe, **recipe))  # type: ignore[arg-type]  # keyword dicts


#: The grid: a few one-change variants around each family's default (kept small on purpose).
CANDIDATES: dict[Family, dict[str, Preset]] = {
    "logistic": {
        "default (adam 0.03, no smoothing)": DEFAULT["logistic"],
        "lr 0.01": _variant("logistic", {}, {"lr": 0.01}),
        "label smoothing 0.1": _variant("logistic", {}, {"label_smoothing": 0.1}),
        "weight decay 1e-3": _variant("logistic", {}, {"weight_decay": 1e-3}),
        "1000 iterations": _variant("logistic", {}, {"iterations": 1000}),
    },
    "fnn": {
        "default (256, dropout 0.2, 3000 it)": DEFAULT["fnn"],
        "2000 iterations": _variant("fnn", {}, {"iterations": 2000}),
        "hidden 512": _variant("fnn", {"hidden": 512}, {}),
        "dropout 0.4": _variant("fnn", {"dropout": 0.4}, {}),
        "lr 0.001": _variant("fnn", {}, {"lr": 0.001}),
        "adamw, weight decay 0.05": _variant(
            "fnn", {}, {"optimizer": "adamw", "weight_decay": 0.05}
        ),
        "+ shift augmentation": _variant("fnn", {}, {"augment_shift": True}),
    },
    # Round 6 (issue 23): 8 fit seeds x 5 folds each; rounds 4-5 (EMA, SWA, rotations,
    # weight decay, lr, warm-up, dropout, hidden FC, batch norm) are in docs/training.md.
    "cnn": {
        "default (24,48)": DEFAULT["cnn"],
        "(16,32)": _variant("cnn", {"channels": (16, 32)}, {}),
        "(16,32), 3000 steps": _variant("cnn", {"channels": (16, 32)}, {"iterations": 3000}),
        "(16,32), smoothing 0.05": _variant(
            "cnn", {"channels": (16, 32)}, {"label_smoothing": 0.05}
        ),
        "(16,32), batch 128": _variant("cnn", {"channels": (16, 32)}, {"batch_size": 128}),
    },
}
