"""Every lecture row and every default architecture maps (N, 64) pixels to (N, 10) logits."""

from __future__ import annotations

import pytest
import torch

from training.models import build_model
from training.recipes import DEFAULT, LECTURE_ROWS
from training.specs import ModelSpec

ALL_SPECS = [pytest.param(p.spec, id=f"lecture-{k}") for k, p in LECTURE_ROWS.items()] + [
    pytest.param(p.spec, id=f"default-{k}") for k, p in DEFAULT.items()
]


@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("n", [1, 7])
def test_model_maps_n_rows_of_64_to_n_rows_of_10_logits(spec: ModelSpec, n: int) -> None:
    """A batch of N raw-pixel rows gives N rows of 10 finite logits."""
    torch.manual_seed(0)
    model = build_model(spec).eval()
    with torch.inference_mode():
        out = model(torch.randint(0, 17, (n, 64)).float())
    assert out.shape == (n, 10)
    assert torch.isfinite(out).all()


def test_build_model_rejects_an_unknown_family() -> None:
    """An unknown family is a ValueError that names the valid ones."""
    with pytest.raises(ValueError, match="logistic, fnn, cnn"):
        build_model(ModelSpec("svm"))  # type: ignore[arg-type]  # deliberately invalid


def test_input_scale_is_applied_inside_the_model() -> None:
    """A model with input_scale 1/16 on raw pixels equals the unscaled model on pixels / 16."""
    torch.manual_seed(0)
    scaled = build_model(ModelSpec("logistic", input_scale=1 / 16))
    torch.manual_seed(0)
    plain = build_model(ModelSpec("logistic"))
    x = torch.randint(0, 17, (4, 64)).float()
    torch.testing.assert_close(scaled(x), plain(x / 16))


def test_cnn_options_add_a_hidden_layer_and_batch_norm() -> None:
    """fc_hidden adds a Linear-ReLU layer of that width; batch_norm one BatchNorm2d per conv."""
    spec = ModelSpec("cnn", channels=(4, 8), dropout=0.1, fc_hidden=16, batch_norm=True)
    model = build_model(spec)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 16), (16, 10)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 2
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    scripted = torch.jit.script(model.eval())
    x = torch.randint(0, 17, (3, 64)).float()
    with torch.inference_mode():
        torch.testing.assert_close(scripted(x), model(x))
