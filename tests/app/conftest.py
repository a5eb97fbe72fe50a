"""Headless Qt for every app test: offscreen platform, isolated QSettings, no hub access, fake streams."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The repository root (for `app`, `engine`) and this folder (for `app_fakes`) on sys.path, whatever
# pytest's import mode and however it was started.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import pytest  # noqa: E402 - after the sys.path setup above
from app_fakes import FakeStream, fake_backend  # noqa: E402 - after the sys.path setup above
from PySide6.QtCore import QSettings  # noqa: E402 - after the sys.path setup above

from app.settings import AppSettings  # noqa: E402 - after the sys.path setup above


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Tests never download: the voice catalog sees the hub as offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def settings(tmp_path) -> AppSettings:
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))


@pytest.fixture
def streams() -> list[FakeStream]:
    return []


@pytest.fixture
def stream_factory(streams):
    def factory(sample_rate, device, fill, on_finished):
        stream = FakeStream(sample_rate, fill, on_finished, realtime=True, speed=4.0)
        streams.append(stream)
        return stream

    return factory


@pytest.fixture
def make_window(qtbot, settings, stream_factory):
    """Build a MainWindow around a controller; closes it (and checks the worker stopped) afterwards."""
    from app.controller import Controller
    from app.main_window import MainWindow

    windows = []

    def make(backend=None, **controller_kwargs):
        backend = backend or fake_backend()
        controller = Controller(
            settings=settings,
            backend_loader=lambda: backend,
            stream_factory=stream_factory,
            prepare_delay_ms=20,
            **controller_kwargs,
        )
        window = MainWindow(controller)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        qtbot.waitUntil(lambda: controller.engine_available, timeout=60000)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.controller.thread.isRunning()
