"""Voice, device and per-call speech knobs (speaker, speed, noise, sentence gap, volume; Chatterbox's own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..capabilities import CHATTERBOX_LABELS, PIPER_ONLY, chatterbox_variant, device_label
from .chatterbox_panel import ChatterboxPanel, ModelDownloadBar

BUNDLED = ("Joe · en_US medium (bundled)", "default")

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
    """A voice spec: 'default', a Piper .onnx path, a Chatterbox name or checkpoint folder."""
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
        self.piper_note = QLabel("Speaker, speed and noise apply to Piper voices only.")
        self.piper_note.setObjectName("muted")
        self.piper_note.hide()
        self.chatterbox = ChatterboxPanel()
        self.chatterbox.hide()
        self.download_bar = ModelDownloadBar()
        self.download_bar.folder_requested.connect(self.open_chatterbox_dialog)
        self._chatterbox: dict[str, dict[str, Any]] = {}
        self._tips = {"speaker_id": self.speaker_box.toolTip(), **{k: spin.toolTip() for k, spin in self.spins.items()}}
        self._speakers = 1
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
        layout.addWidget(self.download_bar)
        layout.addLayout(form)
        layout.addWidget(self.piper_note)
        layout.addWidget(self.chatterbox)

    def set_voices(self, current: str, recent: list[str], chatterbox: dict[str, dict[str, Any]] | None = None) -> None:
        """Bundled voice, recent Piper voices and Chatterbox folders, then the Chatterbox models with their state."""
        if chatterbox is not None:
            self._chatterbox = chatterbox
        self.voice_box.blockSignals(True)
        self.voice_box.clear()
        self.voice_box.addItem(*BUNDLED)
        for path in recent:
            folder = chatterbox_variant(path) is not None
            self._add_voice(f"{Path(path).name} (Chatterbox folder)" if folder else Path(path).stem, path, path)
        for spec, label in CHATTERBOX_LABELS.items():
            self._add_voice(*_chatterbox_item(label, self._chatterbox.get(spec)), data=spec)
        index = self.voice_box.findData(current)
        if index < 0 and current:
            self._add_voice(Path(current).stem, current, current)
            index = self.voice_box.count() - 1
        self.voice_box.setCurrentIndex(max(index, 0))
        self.voice_box.blockSignals(False)

    def _add_voice(self, text: str, tooltip: str, data: str) -> None:
        self.voice_box.addItem(text, data)
        self.voice_box.setItemData(self.voice_box.count() - 1, tooltip, Qt.ToolTipRole)

    def set_chatterbox_variant(self, variant: str | None) -> None:
        """A Chatterbox voice shows its group and greys out Piper's knobs, saying why; None restores them."""
        active = variant is not None
        self.chatterbox.set_variant(variant)
        self.piper_note.setVisible(active)
        widgets = {"speaker_id": self.speaker_box, **{k: self.spins[k] for k in PIPER_ONLY if k in self.spins}}
        for key, widget in widgets.items():
            widget.setEnabled(not active)
            widget.setToolTip(PIPER_ONLY[key] if active else self._tips[key])
        self.speaker_box.setEnabled(not active and self._speakers > 1)

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
        if info.get("family") == "chatterbox":
            return
        speakers = int(info.get("num_speakers", 1) or 1)
        self._speakers = speakers
        self.speaker_box.setMaximum(max(speakers - 1, 0))
        self.speaker_box.setEnabled(speakers > 1)
        names = info.get("speaker_id_map") or {}
        if names:
            listing = ", ".join(f"{i}: {n}" for n, i in sorted(names.items(), key=lambda kv: kv[1])[:12])
            self._tips["speaker_id"] = f"Speaker id ({listing})"
            self.speaker_box.setToolTip(self._tips["speaker_id"])

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

    def open_chatterbox_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open Chatterbox checkpoint folder (with t3_cfg.safetensors)")
        if path:
            self.voice_chosen.emit(path)


def _chatterbox_item(label: str, status: dict[str, Any] | None) -> tuple[str, str]:
    """(item text, tooltip) for a Chatterbox model: ready, not downloaded (what is missing), or unknown yet."""
    if status is None:
        return f"{label} · checking…", "Checking whether the checkpoint is downloaded…"
    if status.get("ready"):
        return f"{label} · ready", f"Ready: {status.get('path')}"
    missing = ", ".join(status.get("missing") or [])
    return f"{label} · not downloaded", f"Not downloaded. Missing: {missing}. Choose it to download."
