"""Chatterbox speech knobs (exaggeration, CFG weight, temperature, reference voice) and its download bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..capabilities import CHATTERBOX_DEFAULTS, CHATTERBOX_KNOBS, CHATTERBOX_LABELS, TURBO_UNUSED
from ..metrics import format_bytes

REFERENCE_FILTER = "Reference recordings (*.wav *.flac)"


class ChatterboxPanel(QGroupBox):
    """Shown only while a Chatterbox voice is active; emits the knobs as `SynthesisOptions.extra` keys."""

    options_changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Chatterbox", parent)
        self.spins: dict[str, QDoubleSpinBox] = {}
        self._tips: dict[str, str] = {}
        form = QFormLayout(self)
        for key, label, low, high, step, default, tip in CHATTERBOX_KNOBS:
            spin = QDoubleSpinBox()
            spin.setDecimals(2)
            spin.setRange(low, high)
            spin.setSingleStep(step)
            spin.setValue(default)
            spin.setToolTip(tip)
            spin.valueChanged.connect(self._emit_options)
            self.spins[key] = spin
            self._tips[key] = tip
            form.addRow(label, spin)
        self.reference = QLineEdit()
        self.reference.setReadOnly(True)
        self.reference.setPlaceholderText("Built-in voice")
        self.reference_button = QPushButton("Reference voice…")
        self.reference_button.setToolTip("Clone the voice of a .wav or .flac recording (5-10 s of one speaker)")
        self.reference_button.clicked.connect(self.pick_reference)
        self.clear_button = QPushButton("✕")
        self.clear_button.setObjectName("flat")
        self.clear_button.setToolTip("Back to the built-in voice")
        self.clear_button.clicked.connect(lambda: self.set_reference(""))
        row = QHBoxLayout()
        row.addWidget(self.reference, 1)
        row.addWidget(self.reference_button)
        row.addWidget(self.clear_button)
        form.addRow("Voice", row)
        self._voice_path = ""

    def set_options(self, options: dict[str, Any]) -> None:
        for key, spin in self.spins.items():
            spin.blockSignals(True)
            spin.setValue(float(options.get(key, CHATTERBOX_DEFAULTS[key])))
            spin.blockSignals(False)
        self._show_reference(str(options.get("voice_path") or ""))

    def set_variant(self, variant: str | None) -> None:
        """Turbo ignores exaggeration and CFG: disabled, with the reason in the tooltip."""
        for key, spin in self.spins.items():
            unused = variant == "turbo" and key in TURBO_UNUSED
            spin.setEnabled(not unused)
            spin.setToolTip(TURBO_UNUSED[key] if unused else self._tips[key])
        self.setVisible(variant is not None)

    def options(self) -> dict[str, Any]:
        values: dict[str, Any] = {key: round(spin.value(), 4) for key, spin in self.spins.items()}
        values["voice_path"] = self._voice_path
        return values

    def pick_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference voice", "", REFERENCE_FILTER)
        if path:
            self.set_reference(path)

    def set_reference(self, path: str) -> None:
        self._show_reference(path)
        self._emit_options()

    def _show_reference(self, path: str) -> None:
        self._voice_path = path
        self.reference.setText(Path(path).name if path else "")
        self.reference.setToolTip(path or "Empty: the built-in voice")
        self.clear_button.setEnabled(bool(path))

    def _emit_options(self, *_args) -> None:
        self.options_changed.emit(self.options())


class ModelDownloadBar(QWidget):
    """Offers a not-downloaded Chatterbox: Download (progress, Cancel) or a checkpoint folder instead."""

    download_requested = Signal(str)
    cancel_requested = Signal()
    folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = ""
        self.downloading = False
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.progress = QProgressBar()
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        self.download_button.clicked.connect(self._download)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.folder_button = QPushButton("Use a folder…")
        self.folder_button.setToolTip("Use a Chatterbox checkpoint folder you already have (with t3_cfg.safetensors)")
        self.folder_button.clicked.connect(self.folder_requested)
        self.close_button = QPushButton("✕")
        self.close_button.setObjectName("flat")
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        for button in (self.download_button, self.cancel_button, self.folder_button, self.close_button):
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addLayout(row)
        self.hide()

    def offer(self, spec: str, status: dict[str, Any]) -> None:
        if self.downloading:
            return
        self.spec = spec
        missing = status.get("missing") or []
        self._set_message(f"{CHATTERBOX_LABELS[spec]} is not downloaded ({len(missing)} files missing).", "muted")
        self.message.setToolTip("Missing: " + ", ".join(missing))
        self._set_busy(False)
        self.show()

    def _download(self) -> None:
        self._start()
        self.download_requested.emit(self.spec)

    def _start(self) -> None:
        self._set_message(f"Downloading {CHATTERBOX_LABELS[self.spec]} from Hugging Face…", "muted")
        self.progress.setRange(0, 0)
        self._set_busy(True)

    def set_progress(self, spec: str, done: int, total: int) -> None:
        if spec != self.spec or total <= 0:
            return
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * min(done / total, 1.0)))
        self.message.setText(f"Downloading {CHATTERBOX_LABELS[spec]}: {format_bytes(done)} of {format_bytes(total)}")

    def finished(self, spec: str, outcome: str) -> None:
        """'' hides the bar (the voice is selected); 'cancelled' or an error stays readable, non-blocking."""
        self.spec = spec
        self._set_busy(False)
        if not outcome:
            self.hide()
        elif outcome == "cancelled":
            self._set_message(f"{CHATTERBOX_LABELS[spec]} download cancelled.", "muted")
        else:
            self._set_message(f"{CHATTERBOX_LABELS[spec]} could not be downloaded: {outcome}", "error")

    def _set_busy(self, busy: bool) -> None:
        self.downloading = busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        for button in (self.download_button, self.folder_button, self.close_button):
            button.setVisible(not busy)
        if not busy:
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)

    def _set_message(self, text: str, kind: str) -> None:
        self.message.setText(text)
        self.message.setToolTip("")
        self.message.setObjectName(kind)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
