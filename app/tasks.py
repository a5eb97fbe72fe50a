"""Short background jobs (voice catalog, downloads, export) off the GUI thread, results as signals.

These jobs may import `engine` (and so torch) on a pool thread; the GUI thread never does. Signals
emitted from a pool thread are queued to their GUI-thread receivers by Qt.
"""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal


class BackgroundTasks(QObject):
    finished = Signal(str, object)
    """(token, result)"""
    failed = Signal(str, str, str)
    """(token, user message, details)"""
    progress = Signal(str, int, int)
    """(token, done, total)"""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tts-turbo-task")

    def submit(self, token: str, job: Callable[..., Any], *args: Any, with_progress: bool = False) -> None:
        def run() -> None:
            try:
                report = lambda done, total: self.progress.emit(token, done, total)  # noqa: E731
                extra = {"progress": report} if with_progress else {}
                result = job(*args, **extra)
            except Exception as exc:  # reported to the user through the banner/dialog
                self.failed.emit(token, str(exc) or type(exc).__name__, traceback.format_exc())
            else:
                self.finished.emit(token, result)

        self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
