"""What the tests of tests/deploy share: the checkout's root and a loader for the scripts of
deploy/ (they are files run by path, not modules of a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_deploy_script(name: str, register: bool = False) -> ModuleType:
    """``deploy/<name>.py`` loaded as the module ``name``; with ``register`` also put in
    ``sys.modules`` before it runs (dataclasses resolve the module's annotations through it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
