"""What to fit, without torch: the architecture of one model (``ModelSpec``) and the
lecture's families. ``training.models`` builds an ``nn.Module`` from a spec; the service
validates and records job requests with these (issue 24: its API process has no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Family = Literal["logistic", "fnn", "cnn"]
Activation = Literal["relu", "tanh"]
FAMILIES: tuple[Family, ...] = ("logistic", "fnn", "cnn")


@dataclass(frozen=True)
class ModelSpec:
    """The architecture of one model. Fields not used by a family keep their defaults."""

    family: Family
    #: logistic: the lecture's hand-made ``X @ beta + intercept`` form instead of ``nn.Linear``.
    hand_made: bool = False
    #: fnn: width of each hidden layer.
    hidden: int = 64
    #: fnn: number of hidden layers (1 or 2 in the lecture).
    depth: int = 1
    #: fnn: the hidden activation.
    activation: Activation = "relu"
    #: cnn: output channels of each 3x3 convolution (one max-pool after the last).
    channels: tuple[int, ...] = (8,)
    #: fnn/cnn: dropout before the output layer (and between hidden layers of an fnn).
    dropout: float = 0.0
    #: cnn: width of a hidden fully connected layer (ReLU) after the convolutions; 0 = none.
    fc_hidden: int = 0
    #: cnn: batch normalisation after each convolution (before its ReLU).
    batch_norm: bool = False
    #: Multiplies the raw 0..16 input inside the module (1/16 maps it to 0..1).
    input_scale: float = 1.0
    #: Free-form label, e.g. ``"lecture FNN, Tanh"``; not used to build the model.
    label: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for manifests and job records)."""
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of ``to_dict``."""
        data = dict(data)
        if "channels" in data:
            data["channels"] = tuple(data["channels"])
        return cls(**data)
