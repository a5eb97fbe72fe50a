"""The main window: lays out the views, wires them to the controller, paces redraws with one timer."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QGroupBox,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import capabilities as caps
from .controller import Controller
from .metrics import RunRecord
from .resources import resource_path
from .views.audio_panel import AudioPanel
from .views.banner import Banner
from .views.compare import CURRENT, CompareView
from .views.editor import EditorView
from .views.history import HistoryView
from .views.log_view import LogView, QtLogHandler
from .views.optimization_panel import OptimizationPanel
from .views.plots import LivePlots, configure_pyqtgraph
from .views.voice_browser import VoiceBrowser
from .views.voice_panel import VoicePanel

DISPLAY_INTERVAL_MS = 100
"""One display timer for every plot: 10 redraws a second at most, however fast data arrives."""
LOGGERS = ("tts_turbo", "engine")
"""Loggers shown in the Log tab: the app's and the engine's."""
REDRAW_ORDER = ("waveform", "runs", "stages", "memory")
"""Which dirty plot the display timer redraws first."""


class MainWindow(QMainWindow):
    def __init__(self, controller: Controller) -> None:
        super().__init__()
        configure_pyqtgraph()
        self.controller = controller
        self.setWindowTitle("TTS Turbo")
        self.setWindowIcon(QIcon(str(resource_path("icons", "app.svg"))))
        self._build_views()
        self._build_layout()
        self._build_actions()
        self._build_status_bar()
        self._wire()
        self._restore()
        self._drawn_chunks = 0
        self._dirty: set[str] = set()
        self.display_timer = QTimer(self)
        self.display_timer.setInterval(DISPLAY_INTERVAL_MS)
        self.display_timer.timeout.connect(self.refresh_display)
        self.display_timer.start()

    # ----- construction ------------------------------------------------------------------------

    def _build_views(self) -> None:
        c = self.controller
        self.banner = Banner()
        self.editor = EditorView()
        self.voice_panel = VoicePanel()
        self.optimization_panel = OptimizationPanel(c.schema)
        self.plots = LivePlots(c.metrics)
        self.audio_panel = AudioPanel()
        self.history_view = HistoryView(max_rows=100)
        self.compare_view = CompareView()
        self.log_view = LogView()
        self.voice_browser: VoiceBrowser | None = None
        self.log_handler = QtLogHandler()
        self.log_handler.emitter.line.connect(self.log_view.appendPlainText)
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self.log_handler)
            logging.getLogger(name).setLevel(logging.INFO)

    def _build_layout(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(_group("Text", self.editor), 3)
        left_layout.addWidget(_group("Voice and speech", self.voice_panel), 0)
        live = QWidget()
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(0, 0, 0, 0)
        live_layout.addWidget(self.plots, 3)
        live_layout.addWidget(self.audio_panel, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(self.compare_view, "Compare")
        self.tabs.addTab(self.history_view, "History")
        self.tabs.addTab(self.log_view, "Log")
        optimization = QScrollArea()
        optimization.setWidgetResizable(True)
        optimization.setWidget(self.optimization_panel)
        optimization.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        optimization.setMinimumWidth(330)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(_group("Optimizations", optimization))
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 4)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([410, 720, 350])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

    def _build_actions(self) -> None:
        self.speak_action = QAction("Speak", self)
        self.speak_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.speak_action.setShortcutContext(Qt.WindowShortcut)
        self.speak_action.triggered.connect(self.speak)
        self.stop_action = QAction("Stop", self)
        self.stop_action.setShortcut(QKeySequence(Qt.Key_Escape))
        self.stop_action.triggered.connect(self.controller.stop)
        self.clipboard_action = QAction("Speak clipboard", self)
        self.clipboard_action.setShortcut(QKeySequence("Ctrl+Shift+V"))
        self.clipboard_action.triggered.connect(self.editor.speak_clipboard)
        browse = QAction("Browse Piper voices…", self)
        browse.triggered.connect(self.open_voice_browser)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.Quit)
        quit_action.triggered.connect(self.close)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open text…", self.editor.open_dialog)
        file_menu.addAction("Open voice…", self.voice_panel.open_voice_dialog)
        file_menu.addAction("Open Chatterbox folder…", self.voice_panel.open_chatterbox_dialog)
        file_menu.addAction(browse)
        file_menu.addAction("Export last result…", self.audio_panel.export_dialog)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        speech_menu = self.menuBar().addMenu("&Speech")
        for action in (self.speak_action, self.stop_action, self.clipboard_action):
            speech_menu.addAction(action)
            self.addAction(action)

    def _build_status_bar(self) -> None:
        self.phase_label = QLabel("Starting…")
        self.ran_on_label = QLabel("Ran on: —")
        self.ran_on_label.setObjectName("ranOn")
        self.ran_on_label.setToolTip("The device the last synthesis actually ran on")
        self.gpu_label = QLabel("GPU: checking…")
        self.versions_label = QLabel("")
        self.versions_label.setObjectName("muted")
        bar = self.statusBar()
        bar.addWidget(self.phase_label, 1)
        for widget in (self.ran_on_label, self.gpu_label, self.versions_label):
            bar.addPermanentWidget(widget)

    def _wire(self) -> None:
        c = self.controller
        self.editor.speak_requested.connect(self._speak_text)
        self.editor.stop_requested.connect(c.stop)
        self.editor.problem.connect(self.banner.show_error)
        self.voice_panel.voice_chosen.connect(self._voice_chosen)
        self.voice_panel.browse_requested.connect(self.open_voice_browser)
        self.voice_panel.device_chosen.connect(c.set_device)
        self.voice_panel.options_changed.connect(c.set_options)
        self.voice_panel.chatterbox.options_changed.connect(c.set_chatterbox_options)
        self.voice_panel.download_bar.download_requested.connect(c.download_chatterbox)
        self.voice_panel.download_bar.cancel_requested.connect(c.cancel_chatterbox_download)
        self.optimization_panel.config_changed.connect(c.set_config)
        self.audio_panel.play_requested.connect(self._play_last)
        self.audio_panel.stop_requested.connect(c.stop_playback)
        self.audio_panel.export_requested.connect(self._export_last)
        self.audio_panel.output_device_chosen.connect(c.set_output_device)
        self.audio_panel.autoplay_changed.connect(c.set_autoplay)
        self.history_view.replay_requested.connect(self._replay)
        self.history_view.export_requested.connect(c.export)
        self.history_view.clear_requested.connect(c.clear_history)
        self.compare_view.compare_requested.connect(self._compare)
        self.compare_view.play_requested.connect(self._replay)
        c.engine_ready.connect(self._engine_ready)
        c.phase_changed.connect(self._phase_changed)
        c.voice_loaded.connect(self._voice_loaded)
        c.optimizer_stats.connect(self.optimization_panel.show_stats)
        c.reasons_changed.connect(self._reasons_changed)
        c.run_added.connect(self._run_added)
        c.compare_finished.connect(self.compare_view.show_results)
        c.history_cleared.connect(self.history_view.clear)
        c.live_audio_started.connect(self._live_audio_started)
        c.error.connect(self._show_error)
        c.notice.connect(self.banner.show_notice)
        c.playback_lost.connect(self.audio_panel.set_playback_unavailable)
        c.playback_lost.connect(self.banner.show_notice)
        c.voices_changed.connect(lambda recent: self.voice_panel.set_voices(c.voice, recent))
        c.voice_changed.connect(self._voice_changed)
        c.chatterbox_changed.connect(lambda status: self.voice_panel.set_voices(c.voice, c.recent_voices, status))
        c.chatterbox_missing.connect(self.voice_panel.download_bar.offer)
        c.chatterbox_download_progress.connect(self.voice_panel.download_bar.set_progress)
        c.chatterbox_download_finished.connect(self.voice_panel.download_bar.finished)
        c.catalog_loaded.connect(lambda entries: self.voice_browser and self.voice_browser.set_catalog(entries))
        c.catalog_failed.connect(lambda message: self.voice_browser and self.voice_browser.show_error(message))
        c.download_progress.connect(lambda k, d, t: self.voice_browser and self.voice_browser.set_progress(k, d, t))
        c.download_finished.connect(lambda k, p: self.voice_browser and self.voice_browser.download_done(k, p))

    def _restore(self) -> None:
        c = self.controller
        s = c.settings
        geometry = s.bytes_value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(QSize(1480, 900))
        state = s.bytes_value("splitter")
        if state is not None:
            self.splitter.restoreState(state)
        self.voice_panel.set_voices(c.voice, c.recent_voices)
        self.voice_panel.set_devices(None, c.device_choice)
        self.voice_panel.set_options(c.options)
        self.voice_panel.chatterbox.set_options(c.chatterbox_options)
        self.voice_panel.set_chatterbox_variant(c.voice_variant)
        self.optimization_panel.set_reasons(c.reasons)
        self.optimization_panel.set_config(c.config)
        self.audio_panel.set_devices(c.output_devices(), c.player.device)
        self.audio_panel.autoplay_box.setChecked(c.autoplay)
        self.audio_panel.set_playback_unavailable(c.playback_unavailable)
        self.compare_view.set_choices(list(caps.PRESET_NAMES[:2]), caps.PRESET_NAMES[0], caps.PRESET_NAMES[1])
        self.editor.set_text(s.json_value("text", ""))
        c.list_installed_voices()

    # ----- reactions ---------------------------------------------------------------------------

    def speak(self) -> None:
        self._speak_text(self.editor.text())

    def _speak_text(self, text: str) -> None:
        self.controller.speak(text)

    def _voice_chosen(self, spec: str) -> None:
        before = self.controller.voice
        self.controller.set_voice(spec)
        self._apply_voice_defaults = self.controller.voice != before  # a refused choice loads nothing

    def _voice_changed(self, spec: str) -> None:
        self.voice_panel.set_voices(spec, self.controller.recent_voices)
        self.voice_panel.set_chatterbox_variant(self.controller.voice_variant)

    def _engine_ready(self, payload: dict) -> None:
        c = self.controller
        info = payload["device_info"]
        self.voice_panel.set_devices(info, c.device_choice)
        self.optimization_panel.set_presets(c.preset_configs())
        self.optimization_panel.set_config(c.config)
        self.audio_panel.formats = list(c.formats)
        gpus = info.get("devices") or []
        self.gpu_label.setText("GPU: " + (", ".join(d["name"] for d in gpus) if gpus else "none detected"))
        cuda = info.get("cuda_version") or "none (CPU-only torch)"
        self.versions_label.setText(f"torch {info.get('torch_version', '?')} · CUDA {cuda}")

    def _reasons_changed(self, reasons: dict) -> None:
        self.optimization_panel.set_reasons(reasons)
        self.optimization_panel.set_presets(self.controller.preset_configs())

    def _phase_changed(self, phase: str, message: str) -> None:
        self.phase_label.setText(message)
        busy = phase in ("loading", "optimizing")
        self.optimization_panel.set_busy(message if busy else "")

    def _voice_loaded(self, info: dict) -> None:
        self.voice_panel.set_voice_info(info)
        if getattr(self, "_apply_voice_defaults", False):
            self._apply_voice_defaults = False
            self.voice_panel.apply_voice_defaults(info)

    def _run_added(self, record: RunRecord) -> None:
        self.history_view.add_run(record)
        device = caps.device_label(self.controller.device_info, record.device)
        self.plots.set_gpu_run(record.device.startswith("cuda"))
        self.ran_on_label.setText(f"Ran on: {device} · {record.x_realtime:.1f}× real time")
        if not record.label:
            self.audio_panel.set_has_audio(True)
        if record.fallbacks:
            self.banner.show_notice("Optimizer fell back: " + "; ".join(record.fallbacks), timeout_ms=10000)

    def _live_audio_started(self, _sample_rate: int) -> None:
        self._drawn_chunks = 0

    def _show_error(self, message: str, details: str) -> None:
        self.banner.show_error(message, details)
        self.compare_view.set_running(False)

    def _compare(self, name_a: str, name_b: str) -> None:
        presets = self.controller.preset_configs()
        current = self.controller.config
        self.compare_view.set_running(True)
        self.tabs.setCurrentWidget(self.compare_view)
        ids = self.controller.compare(
            self.editor.text(),
            presets.get(name_a, current) if name_a != CURRENT else current,
            presets.get(name_b, current) if name_b != CURRENT else current,
        )
        if not any(ids):
            self.compare_view.set_running(False)

    def _replay(self, run_id: int) -> None:
        """Play a past run and show its waveform under the playhead."""
        record = self.controller.history.get(run_id)
        if record is not None:
            self.audio_panel.set_audio(record.audio, record.sample_rate)
            self.controller.replay(run_id)

    def _play_last(self) -> None:
        record = self._last_plain_run()
        if record is not None:
            self.controller.replay(record.run_id)

    def _export_last(self, path: str) -> None:
        record = self._last_plain_run()
        if record is not None:
            self.controller.export(record.run_id, path)

    def _last_plain_run(self) -> RunRecord | None:
        return next((r for r in reversed(list(self.controller.history)) if not r.label), None)

    def open_voice_browser(self) -> None:
        if self.voice_browser is None:
            self.voice_browser = VoiceBrowser(self)
            self.voice_browser.refresh_requested.connect(self.controller.fetch_catalog)
            self.voice_browser.download_requested.connect(self.controller.download_voice)
        self.voice_browser.show()
        self.voice_browser.raise_()
        self.voice_browser.refresh()

    def refresh_display(self) -> None:
        """The display timer: redraw at most one dirty plot per tick, so paints never pile up.

        Offscreen or software rendering costs ~10-30 ms per plot; drawing every dirty plot in the
        same tick would block the event loop for their sum.
        """
        c = self.controller
        self._dirty |= c.metrics.take_dirty()
        if c.live_chunks and len(c.live_chunks) != self._drawn_chunks:
            self._dirty.add("waveform")
        for name in REDRAW_ORDER:
            if name in self._dirty:
                self._dirty.discard(name)
                self._redraw(name)
                break
        player = c.player
        playing = player.is_playing and player.sample_rate
        self.audio_panel.set_playhead(player.played_samples / player.sample_rate if playing else None)
        self.audio_panel.set_underruns(player.underflows)

    def _redraw(self, name: str) -> None:
        c = self.controller
        if name == "waveform":
            self._drawn_chunks = len(c.live_chunks)
            self.audio_panel.set_audio(np.concatenate(c.live_chunks), c.live_sample_rate)
        else:
            self.plots.refresh({name})

    def closeEvent(self, event: QCloseEvent) -> None:
        self.display_timer.stop()
        s = self.controller.settings
        s.set_bytes("geometry", self.saveGeometry())
        s.set_bytes("splitter", self.splitter.saveState())
        s.set_json("text", self.editor.editor.toPlainText())
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self.log_handler)
        self.controller.shutdown()
        super().closeEvent(event)


def _group(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(8, 10, 8, 8)
    layout.addWidget(widget)
    return box


def load_stylesheet(app: QApplication) -> None:
    """Fusion + the dark stylesheet; a missing resources/ folder leaves the default look, not a crash."""
    app.setStyle("Fusion")
    sheet = resource_path("style.qss")
    if sheet.is_file():
        app.setStyleSheet(sheet.read_text(encoding="utf-8"))
    else:
        logging.getLogger("tts_turbo.app").warning("stylesheet not found at %s", sheet)
