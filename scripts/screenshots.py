"""Render the app's main states to PNG with the real joe voice on CPU.

    python scripts/screenshots.py [--out docs/screenshots]

Runs offscreen (no display needed; under Xvfb set QT_QPA_PLATFORM=xcb). Writes idle.png,
synthesis.png (plots filled by runs under two presets), compare.png and history.png. Settings go to
a temporary file and audio to a silent stream, so it touches neither the user's settings nor a
sound card.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app import capabilities as caps  # noqa: E402
from app.controller import Controller  # noqa: E402
from app.main_window import MainWindow, load_stylesheet  # noqa: E402
from app.settings import AppSettings  # noqa: E402

SIZE = (1480, 900)
TEXT = (
    "The lighthouse keeper climbed the spiral stairs one last time. "
    "Below him the harbour lights flickered on, one by one."
)


class SilentStream:
    """Consumes audio at real-time pace without a sound card, so the playhead moves as in the app."""

    def __init__(self, sample_rate, device, fill, on_finished) -> None:
        import numpy as np

        self._buffer = np.zeros((1024, 1), np.float32)
        self._period = 1024 / sample_rate
        self._fill, self._on_finished = fill, on_finished
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def abort(self) -> None:
        self._stop.set()

    def close(self) -> None:
        return None

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            if self._fill(self._buffer, False):
                break
        self._on_finished()


def wait_until(app: QApplication, predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float = 0.6) -> None:
    """Let the display timer draw every dirty plot and pyqtgraph lay out its axes."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def speak_under(app: QApplication, window: MainWindow, preset: str, text: str) -> None:
    controller = window.controller
    panel = window.optimization_panel
    panel.preset_box.activated.emit(panel.preset_box.findText(preset))
    runs = len(controller.history)
    window.editor.set_text(text)
    window.speak()
    wait_until(app, lambda: len(controller.history) > runs, 180, f"a synthesis under {preset}")


def grab(app: QApplication, window: MainWindow, path: Path) -> None:
    settle(app)
    window.grab().save(str(path))
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    load_stylesheet(app)
    with tempfile.TemporaryDirectory() as tmp:
        settings = AppSettings(QSettings(str(Path(tmp) / "settings.ini"), QSettings.IniFormat))
        controller = Controller(settings=settings, stream_factory=SilentStream, prepare_delay_ms=20)
        stats: list[dict] = []
        controller.optimizer_stats.connect(stats.append)
        window = MainWindow(controller)
        window.resize(*SIZE)
        window.show()
        wait_until(app, lambda: bool(stats), 180, "the joe voice to load and optimize")
        grab(app, window, args.out / "idle.png")

        for preset in (caps.PRESET_UNOPTIMIZED, caps.PRESET_MAX_SPEED) * 3:
            speak_under(app, window, preset, TEXT)
        window.editor.set_text(TEXT)
        grab(app, window, args.out / "synthesis.png")

        window.compare_view.choice["A"].setCurrentText(caps.PRESET_UNOPTIMIZED)
        window.compare_view.choice["B"].setCurrentText(caps.PRESET_MAX_SPEED)
        done: list = []
        controller.compare_finished.connect(lambda a, b: done.append((a, b)))
        window.compare_view.run_button.click()
        wait_until(app, lambda: bool(done), 300, "the comparison")
        grab(app, window, args.out / "compare.png")

        window.tabs.setCurrentWidget(window.history_view)
        grab(app, window, args.out / "history.png")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
