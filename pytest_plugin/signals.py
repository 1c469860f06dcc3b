"""SIGTERM, what CI runners send to cancel a job, handled as Ctrl-C.

Python's default for SIGTERM is to die at once: the run exited 143 and left
``llmcheck.json`` as the last mid-run snapshot (``interrupted: false``), with no
markdown or HTML, and calls in flight went on at the provider. While a session runs,
SIGTERM is turned into what Ctrl-C does: whichever SIGINT handler is in place runs (the
runner's, which notes the interrupt and stops model calls from another thread, or
Python's default), so pytest unwinds as from a KeyboardInterrupt, writes every report
marked interrupted and exits 2. Under pytest-xdist each worker does the same.

A SIGTERM handler someone else installed (the user's, a CI wrapper's) is left alone.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

_cause = ["Ctrl-C"]


def interrupted_by() -> str:
    """What interrupted the session: ``Ctrl-C`` or ``SIGTERM`` (for the reasons shown)."""
    return _cause[0]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _cause[0] = "SIGTERM"
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # raises KeyboardInterrupt (the default's, the runner's)
    raise KeyboardInterrupt  # SIGINT ignored, or a handler that did not raise


def install() -> Any:
    """Treat SIGTERM as Ctrl-C; returns what :func:`restore` needs, or None when SIGTERM
    already had a handler of someone else's, or this is not the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None
    _cause[0] = "Ctrl-C"
    signal.signal(signal.SIGTERM, _on_sigterm)
    return previous


def restore(previous: Any) -> None:
    """Put back the SIGTERM handler :func:`install` replaced (the process is left as the
    session found it, which matters for in-process pytester runs)."""
    if previous is not None and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, previous)
