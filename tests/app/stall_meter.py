"""Measures how long the GUI event loop is blocked: a 5 ms timer records its worst lateness."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer


class StallMeter:
    def __init__(self, interval_ms: int = 5) -> None:
        self.interval_s = interval_ms / 1000
        self.max_stall_s = 0.0
        self.stalls_s: list[float] = []
        self.ticks = 0
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def __enter__(self) -> "StallMeter":
        self._last = time.perf_counter()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        stall = now - self._last - self.interval_s
        self.stalls_s.append(stall)
        self.max_stall_s = max(self.max_stall_s, stall)
        self._last = now
        self.ticks += 1

    def count_over(self, seconds: float) -> int:
        return sum(stall > seconds for stall in self.stalls_s)
