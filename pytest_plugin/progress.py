"""Live per-test progress on an interactive terminal.

Progress is written after the item's own text on the current line and erased
again with backspaces, so pytest's output (and its terminal writer's idea of
the line width) is left exactly as it was. It is shown only on a terminal,
never in CI logs or xdist workers, and only for tests that run longer than a
moment.
"""

from __future__ import annotations

import os
import time
from typing import Any

FIRST_AFTER = 0.5  # seconds before the first display: quick tests show nothing
EVERY = 0.2  # seconds between updates


class LiveProgress:
    def __init__(self, config: Any, tw: Any, capman: Any) -> None:
        self.config = config
        self.tw = tw
        self.capman = capman
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = ""

    @classmethod
    def maybe(cls, config: Any, state: Any, runs: int) -> LiveProgress | None:
        mode = state.setting("progress")
        if mode == "off" or state.is_worker or runs < 2:
            return None
        tr = config.pluginmanager.get_plugin("terminalreporter")
        capman = config.pluginmanager.get_plugin("capturemanager")
        tw = getattr(tr, "_tw", None)
        file = getattr(tw, "_file", None)
        if tr is None or tw is None or file is None or capman is None:
            return None
        if mode == "auto":
            if os.environ.get("CI") or config.option.verbose < 0:
                return None
            isatty = getattr(file, "isatty", None)
            # During the call phase pytest's fd capture points fd 1 at a file:
            # ask about the real terminal with capture suspended.
            with capman.global_and_fixture_disabled():
                interactive = bool(isatty and isatty())
            if not interactive:
                return None
        return cls(config, tw, capman)

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if now - self.started < FIRST_AFTER or now - self.last < EVERY:
            return
        self.last = now
        scored = p.passed + p.failed
        rate = f" rate {p.passed / scored:.0%}" if scored else ""
        text = f" [{p.finished}/{p.planned} passed {p.passed}{rate}]"
        try:
            room = self.tw.fullwidth - self.tw.width_of_current_line - 1
        except Exception:  # noqa: BLE001 - progress must never break a run
            return
        if len(text) > room:
            text = ""
        self._write(self._erase() + text)
        self.shown = text

    def _erase(self) -> str:
        n = len(self.shown)
        return "\b" * n + " " * n + "\b" * n if n else ""

    def clear(self) -> None:
        if self.shown:
            self._write(self._erase())
            self.shown = ""

    def _write(self, text: str) -> None:
        if not text:
            return
        with self.capman.global_and_fixture_disabled():
            self.tw._file.write(text)
            self.tw._file.flush()
