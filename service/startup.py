"""Start-up without the cyclic garbage collector: ``pause_gc()`` (``python -m service``, before
the app and torch are imported) and ``resume_gc()`` (the app's lifespan, once the models are
loaded and, with ``freeze_heap``, frozen).

Start-up allocates millions of objects that live as long as the process (torch alone is
~10^6), and the collections their allocation triggers each walk most of what is alive so far:
a good share of the import time, freeing next to nothing. ``resume_gc`` only undoes a pause of
``pause_gc``: a process that never paused (a test building the app) is left as it was.
"""

from __future__ import annotations

import gc

_paused = False


def pause_gc() -> None:
    """Stop automatic collections until ``resume_gc()``."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    """Collect automatically again, if ``pause_gc()`` stopped it."""
    global _paused
    if _paused:
        gc.enable()
        _paused = False
