"""The lecture's model families, and the builder that makes one from a ``ModelSpec``.

Every module takes a float32 tensor (N, 64) of raw 0..16 pixels and returns (N, 10) logits;
any input scaling is a buffer inside the module, so a caller never needs to know the recipe.
"""

from __future__ import annotations

import torch
from torch import nn

from training.digits import N_CLASSES, N_FEATURES
from training.specs import FAMILIES, Activation, ModelSpec


class _Scale(nn.Module):
    """Multiplies its input by a fixed factor, a constant of the exported module.

    A plain float attribute rather than an annotated buffer: TorchScript cannot resolve the
    string annotation ``"torch.Tensor"`` that ``from __future__ import annotations`` makes
    of a class-level buffer annotation, and a float needs no device move.
    """

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class HandLogistic(nn.Module):
    """The lecture's hand-made logistic regression: ``x @ beta + intercept``, randn init."""

    def __init__(self, input_scale: float = 1.0) -> None:
        super().__init__()
        self.scale = _Scale(input_scale)
        self.beta = nn.Parameter(torch.randn(N_FEATURES, N_CLASSES))
        self.intercept = nn.Parameter(torch.randn(N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.scale(x) @ self.beta + self.intercept
        return out


class Logistic(nn.Module):
    """Multinomial logistic regression as one ``nn.Linear(64, 10)``."""

    def __init__(self, input_scale: float = 1.0) -> None:
        super().__init__()
        self.scale = _Scale(input_scale)
        self.linear = nn.Linear(N_FEATURES, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(self.scale(x))
        return out


def _activation(name: Activation) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Tanh()


class FNN(nn.Module):
    """Feed-forward net: ``depth`` hidden layers of ``hidden`` units, then the output layer."""

    def __init__(
        self,
        hidden: int = 64,
        depth: int = 1,
        activation: Activation = "relu",
        dropout: float = 0.0,
        input_scale: float = 1.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_Scale(input_scale)]
        width = N_FEATURES
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), _activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, N_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class CNN(nn.Module):
    """Convolutional net on the 8x8 image.

    ``channels=(8,)`` is the lecture's model: Conv2d(1, 8, 3, padding 1), ReLU, MaxPool2d(2),
    flatten, Linear(8*4*4, 10). More entries stack more 3x3 convolutions (each with ReLU, and
    ``batch_norm`` before it) before the one max-pool; ``fc_hidden`` adds a hidden Linear-ReLU
    layer before the output one (dropout, when set, precedes each Linear layer).
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (8,),
        dropout: float = 0.0,
        input_scale: float = 1.0,
        fc_hidden: int = 0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_Scale(input_scale), nn.Unflatten(1, (1, 8, 8))]
        in_ch = 1
        for out_ch in channels:
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU())
            in_ch = out_ch
        layers += [nn.MaxPool2d(2), nn.Flatten()]
        width = in_ch * 4 * 4
        if fc_hidden > 0:
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(width, fc_hidden), nn.ReLU()]
            width = fc_hidden
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, N_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the (untrained) module that ``spec`` describes, using torch's current RNG."""
    if spec.family == "logistic":
        if spec.hand_made:
            return HandLogistic(spec.input_scale)
        return Logistic(spec.input_scale)
    if spec.family == "fnn":
        if spec.depth < 1:
            raise ValueError(f"fnn depth must be >= 1, got {spec.depth}")
        return FNN(spec.hidden, spec.depth, spec.activation, spec.dropout, spec.input_scale)
    if spec.family == "cnn":
        if not spec.channels:
            raise ValueError("cnn needs at least one convolution in channels")
        return CNN(spec.channels, spec.dropout, spec.input_scale, spec.fc_hidden, spec.batch_norm)
    raise ValueError(f"unknown family {spec.family!r}; expected one of {', '.join(FAMILIES)}")
