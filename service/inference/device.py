"""Which device the service runs its models on: ``"cpu"`` or ``"cuda:N"``, a plain string.

A string, not a ``torch.device``: the serving process imports torch only when a version is
served by TorchScript (issue 24), so choosing the device must not import it either. ``auto``
asks torch for CUDA only when torch is installed and the machine shows an NVIDIA GPU (a GPU
listed in ``/proc/driver/nvidia/gpus`` or a ``/dev/nvidiaN`` device node: the NVIDIA driver
makes both, and the container toolkit passes them into a container); on any other machine it
is the CPU at no cost.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CPU = "cpu"
#: Where the NVIDIA kernel driver lists the GPUs it sees (one folder per GPU).
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
#: Where it makes their device nodes (``nvidia0``, ``nvidia1``, ...).
DEVICE_NODES = Path("/dev")


def resolve_device(name: str = "auto") -> str:
    """``auto`` = the first CUDA device when one is available, else the CPU.

    An explicit ``cuda`` / ``cuda:N`` without such a device (or without torch) raises
    ``RuntimeError`` at start-up rather than failing on the first request.
    """
    if name == CPU:
        return CPU
    if name == "auto":
        if not _nvidia_gpu_present() or importlib.util.find_spec("torch") is None:
            return CPU
        import torch  # only on a machine with an NVIDIA GPU and torch installed

        return "cuda:0" if torch.cuda.is_available() else CPU
    return _check_cuda(name)


def _nvidia_gpu_present() -> bool:
    try:
        if any(NVIDIA_GPUS.iterdir()):
            return True
    except OSError:
        pass
    return any(p.name.removeprefix("nvidia").isdigit() for p in DEVICE_NODES.glob("nvidia*"))


def _check_cuda(name: str) -> str:
    """``cuda:N`` for ``cuda`` / ``cuda:N`` once torch sees that device; ``RuntimeError``
    otherwise."""
    index = int(name.partition(":")[2] or 0)
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError(
            f"device {name!r} asked for, but torch is not installed (an API-only install serves "
            "with ONNX Runtime on the CPU); use DIGITS_DEVICE=auto or cpu"
        )
    import torch

    count = torch.cuda.device_count()
    if index >= count:
        raise RuntimeError(
            f"device {name!r} asked for, but this machine has {count} CUDA device(s); "
            "use DIGITS_DEVICE=auto or cpu"
        )
    return f"cuda:{index}"
