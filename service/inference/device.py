"""Which torch device the service runs its models on."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = the first CUDA device when one is available, else the CPU.

    An explicit ``cuda`` / ``cuda:N`` without such a device raises ``RuntimeError`` at start-up
    rather than failing on the first request.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        index = device.index or 0
        if index >= count:
            raise RuntimeError(
                f"device {name!r} asked for, but this machine has {count} CUDA device(s); "
                "use DIGITS_DEVICE=auto or cpu"
            )
    return device
