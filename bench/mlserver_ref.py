"""The MLServer reference of ``bench/serve_bench.py --mlserver``: its virtual environment, made
on demand, and a model repository serving the shipped CNN's ``model.onnx`` through the custom
runtime ``bench/mlserver_digits.py``.

MLServer (1.7.x) is not a dependency of the project: it lives in its own virtual environment,
``bench/.venvs/mlserver`` (git-ignored), made by the first ``--mlserver`` run with ``pip``
(``mlserver``, ``onnxruntime`` at the project's own version so both servers run the same
ONNX Runtime, ``numpy``, and ``httptools`` so that MLServer's uvicorn parses HTTP with the
parser the service's uvicorn uses: the comparison is of the serving stacks, not of h11
against httptools; uvloop comes with MLServer). A stamp file names what was installed; a
run asking for something else reinstalls.

Server settings (``settings.json``), chosen for one process on one core, as every other
server of the bench is:

- ``parallel_workers: 0``. MLServer's default (1) runs inference in a pool of worker
  processes fed over IPC by the HTTP process; pinned to core 0 with the rest, that is two
  processes sharing one core, plus the IPC per request. With 0 the pool is not created and
  ``predict`` runs in the HTTP process's event loop, like the service's inline forward: one
  process, the same core.
- ``debug: false``: no access line per request (MLServer's default writes one; the service
  writes none at ``DIGITS_LOG_LEVEL=warning``, as the bench starts it).
- ``host`` 127.0.0.1 and the bench's ports for HTTP, gRPC and metrics (MLServer starts all
  three servers in the same process and event loop; gRPC and metrics stay idle here).
- Everything else as shipped: Prometheus metrics on (the service keeps its own too), gzip
  middleware on (it compresses nothing: wrk sends no ``Accept-Encoding``), no adaptive
  batching (``max_batch_size`` 0, the default: the service's micro-batcher has no MLServer
  equivalent turned on by default).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venvs" / "mlserver"
RUNTIME = HERE / "mlserver_digits.py"
#: The model repository of the last run, and MLServer's output (``mlserver.log``).
RUN = HERE / ".venvs" / "mlserver-run"
MLSERVER = "mlserver==1.7.*"
#: The model name, as the service names the CNN: the same path, /v2/models/cnn/infer.
MODEL = "cnn"


def requirements() -> list[str]:
    """What the virtual environment holds: MLServer 1.7, the project's ONNX Runtime."""
    return [MLSERVER, f"onnxruntime=={metadata.version('onnxruntime')}", "numpy", "httptools"]


def ensure_venv(log: Path) -> Path | str:
    """MLServer's virtual environment (made, or remade, when its stamp differs); its ``bin``
    folder, or why it cannot be had (pip's output is in ``log``)."""
    stamp = VENV / ".installed"
    wanted = "\n".join(requirements())
    if stamp.is_file() and stamp.read_text() == wanted and (VENV / "bin" / "mlserver").exists():
        return VENV / "bin"
    print(
        f"mlserver: installing {', '.join(requirements())} into {VENV} (a minute or two; "
        f"pip's output in {log})",
        flush=True,
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        steps = [[sys.executable, "-m", "venv", "--clear", str(VENV)]]
        steps.append([str(VENV / "bin" / "python"), "-m", "pip", "install", *requirements()])
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                return f"`{' '.join(step)}` failed: {why(log)}"
    stamp.write_text(wanted)
    return VENV / "bin"


def why(log: Path, limit: int = 300) -> str:
    """The line of ``log`` that says what went wrong: its last error line, else its last line
    (cut to ``limit`` characters)."""
    lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
    errors = [line for line in lines if re.search(r"error|exception", line, re.I)]
    line = (errors or lines)[-1].strip()
    return line if len(line) <= limit else line[:limit] + "..."


def write_repository(folder: Path, models_dir: Path, ports: tuple[int, int, int]) -> Path:
    """A model repository in ``folder``: ``settings.json`` (see the module docstring) and
    ``cnn/model-settings.json`` with the runtime beside it; the folder to start."""
    http, grpc, metrics = ports
    settings = {
        "debug": False,
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    model = folder / MODEL
    model.mkdir(parents=True, exist_ok=True)
    (model / RUNTIME.name).write_text(RUNTIME.read_text())
    onnx = (models_dir / "cnn" / "1" / "model.onnx").resolve()
    model_settings = {
        "name": MODEL,
        "implementation": f"{RUNTIME.stem}.DigitsOnnx",
        "parameters": {"uri": str(onnx), "version": "1"},
    }
    (model / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return folder


def command(bin_dir: Path, repository: Path) -> list[str]:
    """The command that starts MLServer on ``repository``."""
    return [str(bin_dir / "mlserver"), "start", str(repository)]
