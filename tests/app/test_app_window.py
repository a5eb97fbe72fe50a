"""The window against a fake engine: every path of the UI without torch's start-up cost."""

from __future__ import annotations

import time

import numpy as np
import pytest
from app_fakes import FakeEngine
from PySide6.QtCore import QSettings, Qt
from stall_meter import StallMeter

from app import capabilities as caps
from app.settings import AppSettings


def _history_rows(window) -> int:
    return window.history_view.table.rowCount()


def test_speak_streams_audio_and_fills_history_and_plots(make_window, qtbot, streams):
    window = make_window()
    window.editor.set_text("Hello there. This is a test. A third sentence.")
    qtbot.mouseClick(window.editor.speak_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: _history_rows(window) == 1, timeout=10000)
    record = window.controller.history[0]
    assert record.audio.dtype == np.float32 and record.audio_s > 0
    assert len(window.controller.metrics.runs) == 1
    qtbot.waitUntil(lambda: len(window.plots.speed_points.data) == 1, timeout=2000)
    assert window.ran_on_label.text().startswith("Ran on: CPU")
    assert streams and streams[0].finished.wait(5)
    played = streams[0].played()
    np.testing.assert_array_equal(played[: len(record.audio)], record.audio)
    assert window.controller.player.underflows == 0


def test_ctrl_enter_speaks_and_an_empty_editor_speaks_the_sample(make_window, qtbot):
    window = make_window()
    window.editor.set_text("")
    qtbot.keyClick(window.editor.editor, Qt.Key_Return, Qt.ControlModifier)
    qtbot.waitUntil(lambda: _history_rows(window) == 1, timeout=10000)
    assert window.controller.history[0].text == window.editor.editor.placeholderText()


def test_toggling_an_optimization_reaches_the_worker_with_a_busy_state(make_window, qtbot):
    engine = FakeEngine(optimize_delay_s=0.4)
    window = make_window(engine.backend())
    qtbot.waitUntil(lambda: len(engine.configs) >= 1, timeout=5000)
    qtbot.waitUntil(lambda: not window.optimization_panel.busy_bar.isVisible(), timeout=5000)
    sdpa = window.optimization_panel.controls["enable_flash_attention"]
    assert sdpa.isEnabled()
    wanted = not sdpa.isChecked()
    sdpa.click()
    qtbot.waitUntil(lambda: "Optimizing" in window.optimization_panel.busy_label.text(), timeout=5000)
    assert window.optimization_panel.busy_bar.isVisible()
    qtbot.waitUntil(lambda: engine.configs[-1]["enable_flash_attention"] is wanted, timeout=5000)
    qtbot.waitUntil(lambda: not window.optimization_panel.busy_bar.isVisible(), timeout=5000)
    assert window.controller.config["enable_flash_attention"] is wanted


def test_gpu_toggles_are_disabled_with_a_reason_and_presets_apply(make_window, qtbot):
    engine = FakeEngine()
    window = make_window(engine.backend())
    panel = window.optimization_panel
    graphs = panel.controls["enable_cuda_graphs"]
    assert not graphs.isEnabled()
    assert "Needs a CUDA GPU" in graphs.toolTip()
    assert "CUDA graphs" in panel.reason_label.text()
    index = panel.preset_box.findText(caps.PRESET_MAX_SPEED)
    panel.preset_box.activated.emit(index)
    qtbot.waitUntil(lambda: engine.configs and engine.configs[-1]["batch_preprocessing"] is True, timeout=5000)
    assert panel.preset_box.currentText() == caps.PRESET_MAX_SPEED
    panel.controls["use_inference_mode"].click()
    assert panel.preset_box.currentText() == caps.PRESET_CUSTOM


def test_stop_cancels_a_long_synthesis_promptly(make_window, qtbot):
    engine = FakeEngine(sentence_delay_s=0.15)
    window = make_window(engine.backend())
    window.editor.set_text(" ".join(f"Sentence number {i}." for i in range(60)))
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.live_chunks) >= 1, timeout=10000)
    started = time.perf_counter()
    with qtbot.waitSignal(window.controller.notice, timeout=5000):
        qtbot.keyClick(window, Qt.Key_Escape)
    assert time.perf_counter() - started < 0.5
    assert len(window.controller.history) == 0
    assert not window.controller.player.is_playing
    assert "Stopped" in window.banner.message.text()


def test_engine_error_surfaces_in_the_banner_and_the_app_keeps_working(make_window, qtbot):
    window = make_window()
    window.editor.set_text("Please FAIL now.")
    window.speak()
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.kind == "error", timeout=5000)
    assert "told to fail" in window.banner.message.text()
    assert window.banner.details_button.isVisible()
    window.banner.details_button.click()
    assert "Traceback" in window.banner.details.toPlainText()
    window.editor.set_text("Now it works.")
    window.speak()
    qtbot.waitUntil(lambda: _history_rows(window) == 1, timeout=10000)


def test_a_missing_voice_is_reported_not_fatal(make_window, qtbot):
    window = make_window()
    window.controller.set_voice("/nowhere/missing.onnx")
    window.speak()
    qtbot.waitUntil(lambda: window.banner.kind == "error" and window.banner.isVisible(), timeout=5000)
    assert "missing.onnx" in window.banner.message.text()


def test_engine_that_cannot_load_shows_why(qtbot, settings, stream_factory):
    from app.controller import Controller
    from app.main_window import MainWindow

    def broken():
        raise ImportError("No module named 'torch'")

    window = MainWindow(Controller(settings=settings, backend_loader=broken, stream_factory=stream_factory))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert "could not be loaded" in window.banner.message.text()
    window.close()
    assert not window.controller.thread.isRunning()


def test_compare_runs_a_then_b_and_both_are_playable(make_window, qtbot, streams):
    engine = FakeEngine()
    window = make_window(engine.backend())
    window.editor.set_text("Compare me. Twice.")
    view = window.compare_view
    view.choice["A"].setCurrentText(caps.PRESET_UNOPTIMIZED)
    view.choice["B"].setCurrentText(caps.PRESET_MAX_SPEED)
    with qtbot.waitSignal(window.controller.compare_finished, timeout=10000) as blocker:
        view.run_button.click()
    a, b = blocker.args
    assert (a.label, b.label) == ("A", "B")
    assert a.config_summary != b.config_summary
    assert list(view.speed_bars.opts["height"]) == [a.x_realtime, b.x_realtime]
    assert view.play["B"].isEnabled()
    view.play["B"].click()
    qtbot.waitUntil(lambda: len(streams) >= 1 and streams[-1].finished.is_set(), timeout=5000)
    played = streams[-1].played()
    np.testing.assert_array_equal(played[: len(b.audio)], b.audio)
    assert _history_rows(window) == 2


def test_history_replay_export_and_clear(make_window, qtbot, streams, tmp_path):
    window = make_window()
    window.editor.set_text("Keep this one.")
    window.speak()
    qtbot.waitUntil(lambda: _history_rows(window) == 1, timeout=10000)
    run_id = window.history_view.run_id_at(0)
    window.controller.replay(run_id)
    qtbot.waitUntil(lambda: streams[-1].finished.is_set(), timeout=5000)
    target = tmp_path / "out.flac"
    with qtbot.waitSignal(window.controller.notice, timeout=30000):
        window.history_view.export_requested.emit(run_id, str(target))
    import soundfile

    audio, rate = soundfile.read(target, dtype="float32")
    assert rate == window.controller.history[0].sample_rate and len(audio) == len(window.controller.history[0].audio)
    window.history_view.clear_button.click()
    assert _history_rows(window) == 0 and len(window.controller.history) == 0


def test_no_audio_device_disables_playback_but_not_export(qtbot, settings, monkeypatch):
    from app import controller as controller_module
    from app.controller import Controller
    from app.main_window import MainWindow

    monkeypatch.setattr(controller_module, "probe_output", lambda: "No audio output device found.")
    engine = FakeEngine()
    window = MainWindow(Controller(settings=settings, backend_loader=engine.backend))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.controller.engine_available, timeout=5000)
    assert window.audio_panel.notice.isVisibleTo(window)
    assert "No audio output device" in window.audio_panel.notice.text()
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.history) == 1, timeout=10000)
    assert window.audio_panel.export_button.isEnabled()
    assert not window.audio_panel.play_button.isEnabled()
    window.close()


def test_settings_persist_across_sessions(make_window, qtbot, settings):
    window = make_window()
    window.voice_panel.spins["length_scale"].setValue(1.4)
    window.voice_panel.device_box.activated.emit(window.voice_panel.device_box.findData("cpu"))
    batching = window.optimization_panel.controls["batch_preprocessing"]
    wanted = not batching.isChecked()
    batching.click()
    window.editor.set_text("remember me")
    window.close()
    reopened = AppSettings(QSettings(settings.store.fileName(), QSettings.IniFormat))
    assert reopened.json_value("options", {})["length_scale"] == 1.4
    assert reopened.json_value("device", "") == "cpu"
    assert reopened.json_value("config", {})["batch_preprocessing"] is wanted
    assert reopened.json_value("text", "") == "remember me"
    assert reopened.bytes_value("geometry") is not None


def test_voice_browser_offline_shows_a_clear_message(make_window, qtbot):
    window = make_window()
    window.open_voice_browser()
    browser = window.voice_browser
    qtbot.waitUntil(lambda: "offline" in browser.status.text(), timeout=15000)
    assert browser.status.objectName() == "error"
    browser.close()


def test_dropped_text_file_loads_and_counts(make_window, tmp_path):
    window = make_window()
    path = tmp_path / "note.txt"
    path.write_text("one two three")
    window.editor.editor.file_dropped.emit(str(path))
    assert window.editor.editor.toPlainText() == "one two three"
    assert "3 words" in window.editor.count_label.text()


def test_event_loop_keeps_running_during_synthesis(make_window, qtbot):
    engine = FakeEngine(sentence_delay_s=0.05)
    window = make_window(engine.backend())
    window.editor.set_text(" ".join(f"Sentence {i}." for i in range(20)))
    with StallMeter() as meter:
        window.speak()
        qtbot.waitUntil(lambda: _history_rows(window) == 1, timeout=15000)
    assert meter.ticks > 50
    # work on the GUI thread per sentence (50 ms each here) would stall it 20 times; one late tick
    # is the OS scheduler on a loaded 2-core machine, not the app
    assert meter.count_over(0.04) <= 2, f"event loop stalled >40 ms {meter.count_over(0.04)} times"
    assert meter.max_stall_s < 0.5, f"event loop stalled {meter.max_stall_s * 1000:.0f} ms"


@pytest.mark.parametrize("module", ["app.views.editor", "app.views.plots", "app.main_window"])
def test_views_never_import_torch(module):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = f"import sys, {module}; print('torch' in sys.modules, 'engine.registry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_closing_mid_synthesis_stops_the_worker_promptly(qtbot, settings, stream_factory):
    from app.controller import Controller
    from app.main_window import MainWindow

    engine = FakeEngine(sentence_delay_s=0.1)
    window = MainWindow(Controller(settings=settings, backend_loader=engine.backend, stream_factory=stream_factory))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.controller.engine_available, timeout=5000)
    window.editor.set_text(" ".join(f"Sentence {i}." for i in range(100)))
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.live_chunks) >= 1, timeout=5000)
    started = time.perf_counter()
    window.close()
    assert not window.controller.thread.isRunning()
    assert time.perf_counter() - started < 2.0


def test_only_the_worker_imports_torch_or_engine_at_module_level():
    import ast
    from pathlib import Path

    app_dir = Path(__file__).resolve().parents[2] / "app"
    for path in app_dir.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            roots = {name.split(".")[0] for name in names}
            assert not roots & {"torch", "engine"}, f"{path.name} imports {roots} at module level"
        if path.parent.name == "views":
            assert "engine" not in {n.split(".")[0] for n in _all_imports(tree)}, path.name


def _all_imports(tree):
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_a_device_that_refuses_the_stream_turns_playback_off_with_a_notice(make_window, qtbot, monkeypatch):
    from app.playback import PlaybackUnavailable

    window = make_window()

    def refuse(*_args):
        raise PlaybackUnavailable("The audio device refused the stream: Invalid sample rate.")

    monkeypatch.setattr(window.controller.player, "_factory", refuse)
    window.editor.set_text("One sentence here.")
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.history) == 1, timeout=10000)
    assert "Invalid sample rate" in window.audio_panel.notice.text()
    assert not window.audio_panel.play_button.isEnabled()
    assert window.audio_panel.export_button.isEnabled()


def test_optimizer_report_names_the_fused_kernels_and_every_fallback(make_window):
    window = make_window(FakeEngine().backend())
    panel = window.optimization_panel
    panel.show_stats({
        "precision": {"dec": "fp16"},
        "model": {"fused_kernels": "Triton vocoder (23 launches), 97 convolutions as matrix products", "sdpa_backend": "flash"},
        "fallbacks": ["fused_kernels: the Triton vocoder failed to build or run (RuntimeError: x); running it eagerly"],
    })
    text = panel.stats_label.text()
    assert "Fused kernels: Triton vocoder (23 launches)" in text and "SDPA backend: flash" in text
    assert "⚠ fused_kernels: the Triton vocoder failed" in text
    panel.show_stats({"model": {"fused_kernels": "off"}, "fallbacks": []})
    assert "Fused kernels" not in panel.stats_label.text()
    assert "torch.compile" not in panel.stats_label.text()


def test_optimizer_report_says_how_compiled_kernels_launch(make_window):
    panel = make_window(FakeEngine().backend()).optimization_panel
    panel.show_stats({"model": {"compile_launch": "plain launches"}, "fallbacks": []})
    assert "torch.compile: plain launches" in panel.stats_label.text()
    launch = "programmatic dependent launch (each kernel starts as the one before it ends)"
    panel.show_stats({"model": {"compile_launch": launch, "compile_s": {"('A', 0, 1, 480)": 31.5, "('B', 0, 1, 480, 960)": 12.25}}, "fallbacks": []})
    assert f"torch.compile: 2 shape(s) compiled in 43.8 s, {launch}" in panel.stats_label.text()
