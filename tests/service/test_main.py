"""``python -m service``: stopping it with Ctrl-C or SIGTERM is a clean exit."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.service.live import running_service

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_shuts_down_cleanly_with_exit_code_0(
    models_dir: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C (SIGINT) or SIGTERM on the service runs the lifespan's shutdown, prints no
    traceback and exits 0 (uvicorn alone re-raises the signal: a KeyboardInterrupt
    traceback, or exit code 143)."""
    with running_service(models_dir, tmp_path) as service:
        code = service.stop(sig)
        output = service.output()
    assert code == 0, output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
