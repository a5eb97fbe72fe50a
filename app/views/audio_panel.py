"""Waveform of the current/last result with a playhead, play/stop, output device, auto-play, export."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .plots import empty_hint, styled_plot

FORMAT_FILTERS = {
    "WAV": "WAV audio (*.wav)",
    "FLAC": "FLAC audio (*.flac)",
    "OGG": "Ogg Vorbis (*.ogg)",
    "MP3": "MP3 audio (*.mp3)",
}


class AudioPanel(QWidget):
    play_requested = Signal()
    stop_requested = Signal()
    export_requested = Signal(str)
    output_device_chosen = Signal(object)
    autoplay_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = styled_plot("Waveform", "", "seconds")
        self.plot.getAxis("left").setStyle(showValues=False)
        self.plot.setYRange(-1.0, 1.0, padding=0.05)
        self.curve = self.plot.plot(pen=pg.mkPen("#7bed9f", width=1))
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        self.curve.setSkipFiniteCheck(True)
        self.hint = empty_hint(self.plot, "The waveform draws here as sentences arrive")
        self.hint.setPos(0.5, 0)
        self.playhead = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#ff6b81", width=1))
        self.playhead.setVisible(False)
        self.plot.addItem(self.playhead)
        self.play_button = QPushButton("▶ Play")
        self.play_button.clicked.connect(self.play_requested)
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.clicked.connect(self.stop_requested)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the last result as WAV, FLAC, OGG (or MP3 where supported)")
        self.export_button.clicked.connect(self.export_dialog)
        self.autoplay_box = QCheckBox("Play while synthesizing")
        self.autoplay_box.toggled.connect(self.autoplay_changed)
        self.device_box = QComboBox()
        self.device_box.setToolTip("Audio output device")
        self.device_box.activated.connect(lambda i: self.output_device_chosen.emit(self.device_box.itemData(i)))
        self.underruns = QLabel()
        self.underruns.setObjectName("notice")
        self.underruns.setToolTip("Audio blocks that ran dry because synthesis fell behind playback")
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setObjectName("notice")
        self.notice.hide()
        self.formats = ["WAV", "FLAC", "OGG"]
        self._duration = 0.0
        row = QHBoxLayout()
        for widget in (self.play_button, self.stop_button, self.autoplay_box):
            row.addWidget(widget)
        row.addWidget(self.underruns)
        row.addStretch(1)
        row.addWidget(QLabel("Output"))
        row.addWidget(self.device_box)
        row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addLayout(row)
        layout.addWidget(self.notice)
        self.set_has_audio(False)

    def set_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        self._duration = len(audio) / sample_rate if sample_rate else 0.0
        t = np.arange(len(audio), dtype=np.float32) / max(sample_rate, 1)
        self.curve.setData(t, audio)
        self.hint.setVisible(not len(audio))
        self.plot.setXRange(0, max(self._duration, 0.5), padding=0.01)
        self.set_has_audio(len(audio) > 0)

    def set_playhead(self, seconds: float | None) -> None:
        self.playhead.setVisible(seconds is not None)
        if seconds is not None:
            self.playhead.setValue(seconds)

    def set_underruns(self, count: int) -> None:
        text = f"⚠ {count} underrun{'s' if count != 1 else ''}" if count else ""
        if text != self.underruns.text():
            self.underruns.setText(text)

    def set_has_audio(self, has_audio: bool) -> None:
        self.export_button.setEnabled(has_audio)
        self.play_button.setEnabled(has_audio and self.device_box.isEnabled())

    def set_playback_unavailable(self, reason: str | None) -> None:
        self.notice.setText(reason or "")
        self.notice.setVisible(bool(reason))
        for widget in (self.device_box, self.autoplay_box, self.stop_button):
            widget.setEnabled(not reason)
        self.play_button.setEnabled(not reason and self.export_button.isEnabled())

    def set_devices(self, devices: list[tuple[int, str]], current: int | None) -> None:
        self.device_box.clear()
        self.device_box.addItem("System default", None)
        for index, label in devices:
            self.device_box.addItem(label, index)
        self.device_box.setCurrentIndex(max(self.device_box.findData(current), 0))

    def export_dialog(self) -> None:
        filters = ";;".join(FORMAT_FILTERS[f] for f in self.formats if f in FORMAT_FILTERS)
        path, chosen = QFileDialog.getSaveFileName(self, "Export audio", "speech.wav", filters)
        if path:
            if "." not in path.rsplit("/", 1)[-1]:
                path += "." + chosen.split("*.")[-1].rstrip(")")
            self.export_requested.emit(path)
