"""Headless Qt for every app test: offscreen platform, isolated QSettings, no network, fake streams."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
# The repository root (for `app`, `engine`) and this folder (for `app_fakes`) on sys.path, whatever
# pytest's import mode and however it was started.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import pytest
from PySide6.QtCore import QSettings

from app.settings import AppSettings

from app_fakes import FakeStream, fake_backend


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
