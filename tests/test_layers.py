"""The import graph runs downward only: http -> jobs -> inference -> rollout -> db, the base
modules (errors, settings, metrics, startup) import no layer, and ``training`` imports nothing
of ``service``. Each package is imported alone in a fresh interpreter with the packages above
it blocked (a meta-path finder that raises on them), and every import statement in the source,
deferred ones included, is checked against the same order; the module graph has no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Top to bottom: a package may import those after it, never those before it.
LAYERS = ("service.http", "service.jobs", "service.inference", "service.rollout", "service.db")
BASE = ("service.errors", "service.settings", "service.metrics", "service.startup")
TOP = "service.__main__"

#: Run in a fresh interpreter: block the forbidden packages, import a package and every module
#: under it; exit 1 naming the first forbidden import.
_IMPORT_ALONE = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    target, forbidden = sys.argv[1], sys.argv[2:]

    class Block:
        def find_spec(self, name, path=None, module=None):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                raise ImportError(f"{target} imports {name}, a layer above it")
            return None

    sys.meta_path.insert(0, Block())
    package = importlib.import_module(target)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), target + "."):
        if info.name.endswith(".migrations.env"):
            continue  # Alembic's script: Alembic runs it with its context, nobody imports it
        importlib.import_module(info.name)
    """
)


def forbidden_for(module: str) -> tuple[str, ...]:
    """The packages ``module`` must not import: every layer above its own (all layers for a
    base module and for ``training``)."""
    if module.startswith("training"):
        return ("service",)
    if module == TOP or module.startswith(TOP + "."):
        return ()
    if _within(module, BASE):
        return (*LAYERS, TOP)
    for index, layer in enumerate(LAYERS):
        if _within(module, (layer,)):
            return (*LAYERS[:index], TOP)
    return ()


def _within(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def import_alone(package: str, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Import ``package`` and all its modules in a fresh interpreter with its forbidden
    packages blocked."""
    return run_python(_IMPORT_ALONE, [package, *forbidden_for(package)], root)


def run_python(
    code: str, argv: Iterable[str], root: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` and ``argv`` in a fresh interpreter, in ``root`` and with
    only ``root`` on its path; its output captured."""
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def source_imports(root: Path, top: str) -> dict[str, set[str]]:
    """Module -> the modules its source imports (anywhere in the file, deferred imports and
    ``TYPE_CHECKING`` blocks included), for every module under ``root / top``."""
    graph: dict[str, set[str]] = {}
    for path in sorted((root / top).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[module] = names
    # ``from a.b import c``: keep ``a.b.c`` only where it is a module, not a name in ``a.b``
    return {
        module: {n for n in names if n in graph or n.rpartition(".")[0] not in names}
        for module, names in graph.items()
    }


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``module -> imported`` for each import that runs upward (or into ``service`` from
    ``training``)."""
    return sorted(
        f"{module} -> {name}"
        for module, names in graph.items()
        for name in names
        if _within(name, forbidden_for(module))
    )


def module_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle among the modules of ``graph`` (``a -> b -> a``), or ``None``."""
    edges = {m: sorted(n for n in names if n in graph and n != m) for m, names in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in edges[module]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


@pytest.mark.parametrize("package", [*LAYERS, *BASE, "training"])
def test_each_package_imports_alone_with_the_layers_above_it_blocked(package: str) -> None:
    """Importing a layer (and every module in it) never loads a layer above it."""
    if (
        not (ROOT / Path(*package.split("."))).exists()
        and not (ROOT / Path(*package.split("."))).with_suffix(".py").exists()
    ):
        pytest.skip(f"{package} is not in this tree yet")
    result = import_alone(package)
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_import_statement_runs_upward() -> None:
    """No import anywhere in the source, deferred or not, names a layer above its own."""
    graph = source_imports(ROOT, "service") | source_imports(ROOT, "training")
    upward = upward_imports(graph)
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_module_graph_has_no_cycle() -> None:
    """No module imports itself through others (a cycle hidden behind a deferred import
    included)."""
    graph = source_imports(ROOT, "service") | source_imports(ROOT, "training")
    assert module_cycle(graph) is None


def test_a_planted_upward_import_is_caught(tmp_path: Path) -> None:
    """An inference module that imports the HTTP layer fails all three checks."""
    for folder in ("service", "service/http", "service/inference"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "service/http/app.py").write_text("import service.inference.plane\n")
    (tmp_path / "service/inference/plane.py").write_text(
        "def infer() -> None:\n    from service.http import app\n"
    )
    (tmp_path / "service/inference/deadline.py").write_text("import service.http.app\n")
    graph = source_imports(tmp_path, "service")
    assert upward_imports(graph) == [
        "service.inference.deadline -> service.http.app",
        "service.inference.plane -> service.http",
        "service.inference.plane -> service.http.app",
    ]
    assert module_cycle(graph) == [
        "service.http.app",
        "service.inference.plane",
        "service.http.app",
    ]
    result = import_alone("service.inference", tmp_path)
    assert result.returncode == 1
    assert "service.inference imports service.http, a layer above it" in result.stderr


#: The modules of ``service`` that hold torch (the training stack of a worker process, the
#: TorchScript runtime, the device check on a GPU machine): every other module, and the
#: torch-free half of ``training``, import with torch and scikit-learn unimportable, as on
#: the API install (``digits-serve[api]``; issue 24).
TORCH_SIDE = (
    "service.inference.runtime_torchscript",
    "service.jobs.worker",
    "service.jobs.publish",
)
TORCH_FREE_TRAINING = (
    "training.contract",
    "training.digits",
    "training.specs",
    "training.ensemble_spec",
    "training.recipes",
    "training.curves",
    "training.reduce",
)


def test_the_serving_modules_import_without_torch() -> None:
    """Every module of ``service`` but ``TORCH_SIDE`` (the app factory included) imports
    where torch and scikit-learn cannot be imported."""
    modules = [
        m
        for m in source_imports(ROOT, "service")
        if m not in TORCH_SIDE and not m.endswith(".migrations.env") and "versions" not in m
    ]
    assert "service.http.app" in modules
    code = (
        "import importlib, sys\n"
        "sys.modules.update(dict.fromkeys(['torch', 'sklearn']))\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
    )
    done = run_python(code, [*modules, *TORCH_FREE_TRAINING])
    assert done.returncode == 0, done.stderr[-2000:]
