"""The headline paths with the real engine and the bundled joe voice on CPU (no fakes in the worker)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from app_fakes import FakeStream
from PySide6.QtCore import QSettings, Qt
from stall_meter import StallMeter

from app import capabilities as caps
from app.settings import AppSettings

LONG_TEXT = " ".join(f"This is sentence number {n}." for n in range(1, 25))
"""Short sentences: cancellation lands at a sentence boundary, so this bounds how long Stop can take."""


@pytest.fixture(scope="module")
def real_window(qapp, tmp_path_factory):
    from app.controller import Controller
    from app.main_window import MainWindow

    streams: list[FakeStream] = []

    def factory(sample_rate, device, fill, on_finished):
        streams.append(FakeStream(sample_rate, fill, on_finished, realtime=True, speed=4.0))
        return streams[-1]

    path = tmp_path_factory.mktemp("settings") / "settings.ini"
    controller = Controller(
        settings=AppSettings(QSettings(str(path), QSettings.IniFormat)), stream_factory=factory, prepare_delay_ms=20
    )
    stats: list[dict] = []
    controller.optimizer_stats.connect(stats.append)
    window = MainWindow(controller)
    window.streams = streams
    window.stats = stats
    window.show()
    deadline = time.monotonic() + 120
    while not stats and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    assert stats, "the real engine did not load and optimize the joe voice in time"
    yield window
    window.close()
    assert not controller.thread.isRunning()


def test_speak_with_the_real_joe_voice_streams_audio_and_records_the_run(real_window, qtbot):
    window = real_window
    window.editor.set_text("Hello from TTS Turbo.")
    qtbot.mouseClick(window.editor.speak_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(window.controller.history) == 1, timeout=60000)
    record = window.controller.history[0]
    assert record.device == "cpu"
    assert record.sample_rate == 22050
    assert 0.5 < record.audio_s < 5.0
    assert np.abs(record.audio).max() > 0.1
    assert record.x_realtime > 0
    assert {"encoder", "flow", "decoder"} <= set(record.stages)
    qtbot.waitUntil(lambda: len(window.plots.speed_points.data) == 1, timeout=2000)
    assert window.history_view.table.rowCount() == 1
    assert window.ran_on_label.text().startswith("Ran on: CPU")
    stream = window.streams[-1]
    assert stream.finished.wait(10)
    np.testing.assert_array_equal(stream.played()[: len(record.audio)], record.audio)


def test_a_toggle_reaches_the_workers_optimizer(real_window, qtbot):
    window = real_window
    batching = window.optimization_panel.controls["batch_preprocessing"]
    wanted = not batching.isChecked()
    count = len(window.stats)
    batching.click()
    qtbot.waitUntil(lambda: len(window.stats) > count, timeout=60000)
    assert window.stats[-1]["config"]["batch_preprocessing"] is wanted
    count = len(window.stats)
    batching.click()
    qtbot.waitUntil(lambda: len(window.stats) > count, timeout=60000)
    assert window.stats[-1]["config"]["batch_preprocessing"] is not wanted


def test_stop_cancels_a_long_real_synthesis_promptly_without_stalling_the_ui(real_window, qtbot):
    window = real_window
    panel = window.optimization_panel
    if window.stats[-1]["config"]["batch_preprocessing"]:
        # sentence by sentence: a batched forward can only be cancelled between batches
        count = len(window.stats)
        panel.preset_box.activated.emit(panel.preset_box.findText(caps.PRESET_UNOPTIMIZED))
        qtbot.waitUntil(lambda: len(window.stats) > count, timeout=60000)
    assert not window.stats[-1]["config"]["batch_preprocessing"]
    runs_before = len(window.controller.history)
    window.editor.set_text(LONG_TEXT)
    window.controller.live_chunks = []
    with StallMeter() as meter:
        window.speak()
        qtbot.waitUntil(lambda: len(window.controller.live_chunks) >= 1, timeout=60000)
        qtbot.wait(300)
        started = time.perf_counter()
        with qtbot.waitSignal(window.controller.notice, timeout=20000) as stopped:
            qtbot.keyClick(window, Qt.Key_Escape)
        cancel_s = time.perf_counter() - started
    assert stopped.args == ["Stopped."]
    assert cancel_s < 2.5, f"Stop took {cancel_s:.2f} s"
    assert len(window.controller.history) == runs_before
    assert meter.ticks > 20
    assert meter.count_over(0.04) <= 2, f"event loop stalled >40 ms {meter.count_over(0.04)} times"
    assert meter.max_stall_s < 0.5, f"event loop stalled {meter.max_stall_s * 1000:.0f} ms"


def test_a_real_engine_error_lands_in_the_banner(real_window, qtbot, tmp_path):
    window = real_window
    bogus = tmp_path / "not-a-voice.onnx"
    bogus.write_bytes(b"garbage")
    window.controller.set_voice(str(bogus))
    window.speak()
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.kind == "error", timeout=60000)
    assert window.banner.message.text()
    assert window.controller.thread.isRunning()
    window.controller.set_voice("default")
