"""Voice, device and per-call speech knobs (speaker, speed, noise, sentence gap, volume)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..capabilities import device_label

BUNDLED = ("Joe · en_US medium (bundled)", "default")
CHATTERBOX = "chatterbox"

KNOBS = (
    # key, label, minimum, maximum, step, decimals, tooltip
    ("length_scale", "Speed (length scale)", 0.3, 3.0, 0.05, 2, "Duration multiplier: above 1 is slower speech."),
    ("noise_scale", "Noise scale", 0.0, 1.5, 0.05, 3, "Prior sampling noise: lower is flatter but more stable speech."),
    ("noise_w", "Noise width", 0.0, 1.5, 0.05, 3, "Duration noise: 0 makes the rhythm identical on every run."),
    ("sentence_silence", "Sentence gap (s)", 0.0, 3.0, 0.05, 2, "Silence inserted after each sentence."),
    ("volume", "Volume", 0.0, 3.0, 0.05, 2, "Output gain applied after normalisation."),
)


class VoicePanel(QWidget):
    voice_chosen = Signal(str)
    browse_requested = Signal()
    device_chosen = Signal(str)
    options_changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.voice_box = QComboBox()
        self.voice_box.setToolTip("Voice to speak with")
        self.voice_box.activated.connect(lambda i: self.voice_chosen.emit(self.voice_box.itemData(i)))
        self.open_button = QPushButton("Open voice…")
        self.open_button.setToolTip("Use any Piper .onnx voice (its .onnx.json must sit beside it)")
        self.open_button.clicked.connect(self.open_voice_dialog)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setToolTip("Download Piper voices from Hugging Face (rhasspy/piper-voices)")
        self.browse_button.clicked.connect(self.browse_requested)
        self.device_box = QComboBox()
        self.device_box.setToolTip("Where the model runs; the status bar shows where the last run actually ran")
        self.device_box.activated.connect(lambda i: self.device_chosen.emit(self.device_box.itemData(i)))
        self.speaker_box = QSpinBox()
        self.speaker_box.setToolTip("Speaker id of a multi-speaker voice")
        self.speaker_box.valueChanged.connect(self._emit_options)
        self.normalize_box = QCheckBox("Normalise volume per sentence")
        self.normalize_box.setToolTip("Peak-normalise every sentence, as piper does by default")
        self.normalize_box.toggled.connect(self._emit_options)
        self.spins: dict[str, QDoubleSpinBox] = {}
        for key, _label, low, high, step, decimals, tip in KNOBS:
            spin = QDoubleSpinBox()
            spin.setDecimals(decimals)
            spin.setRange(low, high)
            spin.setSingleStep(step)
            spin.setToolTip(tip)
            spin.valueChanged.connect(self._emit_options)
            self.spins[key] = spin
        self._chatterbox: dict[str, Any] = {"ready": False}
        self._layout()
        self.set_voices("default", [])
        self.set_devices(None, "auto")

    def _layout(self) -> None:
        voice_row = QHBoxLayout()
        voice_row.addWidget(self.voice_box, 1)
        voice_row.addWidget(self.open_button)
        voice_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Device", self.device_box)
        form.addRow("Speaker", self.speaker_box)
        for key, label, *_ in KNOBS:
            form.addRow(label, self.spins[key])
        form.addRow("", self.normalize_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(voice_row)
        layout.addLayout(form)

    def set_voices(self, current: str, recent: list[str], chatterbox: dict[str, Any] | None = None) -> None:
        if chatterbox is not None:
            self._chatterbox = chatterbox
        self.voice_box.blockSignals(True)
        self.voice_box.clear()
        self.voice_box.addItem(*BUNDLED)
        for path in recent:
            self.voice_box.addItem(Path(path).stem, path)
            self.voice_box.setItemData(self.voice_box.count() - 1, path, 3)  # tooltip: full path
        ready = bool(self._chatterbox.get("ready"))
        self.voice_box.addItem("Chatterbox" if ready else "Chatterbox (not downloaded)", CHATTERBOX)
        self.voice_box.model().item(self.voice_box.count() - 1).setEnabled(ready)
        index = self.voice_box.findData(current)
        if index < 0 and current:
            self.voice_box.addItem(Path(current).stem, current)
            index = self.voice_box.count() - 1
        self.voice_box.setCurrentIndex(max(index, 0))
        self.voice_box.blockSignals(False)

    def set_devices(self, device_info: dict[str, Any] | None, current: str) -> None:
        self.device_box.blockSignals(True)
        self.device_box.clear()
        self.device_box.addItem("Auto (GPU when available)", "auto")
        for gpu in (device_info or {}).get("devices", []):
            self.device_box.addItem(device_label(device_info, f"cuda:{gpu['index']}"), f"cuda:{gpu['index']}")
        self.device_box.addItem("CPU", "cpu")
        index = self.device_box.findData(current)
        self.device_box.setCurrentIndex(max(index, 0))
        self.device_box.blockSignals(False)

    def set_options(self, options: dict[str, Any]) -> None:
        widgets = [self.speaker_box, self.normalize_box, *self.spins.values()]
        for widget in widgets:
            widget.blockSignals(True)
        self.speaker_box.setValue(int(options.get("speaker_id", 0)))
        self.normalize_box.setChecked(bool(options.get("normalize", True)))
        for key, spin in self.spins.items():
            if options.get(key) is not None:
                spin.setValue(float(options[key]))
        for widget in widgets:
            widget.blockSignals(False)

    def set_voice_info(self, info: dict[str, Any]) -> None:
        """Speaker range from the loaded voice; a single-speaker voice disables the spin box."""
        speakers = int(info.get("num_speakers", 1) or 1)
        self.speaker_box.setMaximum(max(speakers - 1, 0))
        self.speaker_box.setEnabled(speakers > 1)
        names = info.get("speaker_id_map") or {}
        if names:
            listing = ", ".join(f"{i}: {n}" for n, i in sorted(names.items(), key=lambda kv: kv[1])[:12])
            self.speaker_box.setToolTip(f"Speaker id ({listing})")

    def apply_voice_defaults(self, info: dict[str, Any]) -> None:
        """A newly chosen voice brings its own speed/noise defaults (the .onnx.json inference block)."""
        defaults = info.get("defaults") or {}
        self.set_options({k: v for k, v in defaults.items() if k in self.spins})
        self._emit_options()

    def options(self) -> dict[str, Any]:
        values: dict[str, Any] = {key: round(spin.value(), 4) for key, spin in self.spins.items()}
        values["speaker_id"] = self.speaker_box.value()
        values["normalize"] = self.normalize_box.isChecked()
        return values

    def _emit_options(self, *_args) -> None:
        self.options_changed.emit(self.options())

    def open_voice_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open Piper voice", "", "Piper voices (*.onnx)")
        if path:
            self.voice_chosen.emit(path)
