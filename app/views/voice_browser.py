"""Browse and download Piper voices from Hugging Face; offline shows a clear message instead."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..metrics import format_bytes
from .history import row_table

COLUMNS = ("Language", "Voice", "Quality", "Speakers", "Size", "")


class VoiceBrowser(QDialog):
    refresh_requested = Signal()
    download_requested = Signal(str, dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Piper voices — rhasspy/piper-voices")
        self.resize(760, 520)
        self.entries: list[dict[str, Any]] = []
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by language, name or quality…")
        self.filter.textChanged.connect(self._apply_filter)
        self.table = row_table(COLUMNS, stretch_column=1)
        self.status = QLabel("Loading the voice list…")
        self.status.setWordWrap(True)
        self.status.setObjectName("muted")
        self.progress = QProgressBar()
        self.progress.hide()
        self.refresh_button = QPushButton("Retry")
        self.refresh_button.clicked.connect(self.refresh)
        self.download_button = QPushButton("Download and use")
        self.download_button.setObjectName("primary")
        self.download_button.clicked.connect(self._download)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.download_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addLayout(row)

    def refresh(self) -> None:
        self.status.setObjectName("muted")
        self.status.setText("Loading the voice list from Hugging Face…")
        self._restyle(self.status)
        self.refresh_requested.emit()

    def set_catalog(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.table.setRowCount(0)
        for entry in entries:
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = (
                entry["language_name"],
                entry["name"],
                entry["quality"],
                str(entry["num_speakers"]),
                format_bytes(entry["size"]),
                "installed" if entry.get("installed") else "",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, entry["key"])
                self.table.setItem(row, column, item)
        self.status.setText(f"{len(entries)} voices. Pick one and press Download.")
        self._apply_filter(self.filter.text())

    def show_error(self, message: str) -> None:
        self.status.setObjectName("error")
        self.status.setText(message)
        self._restyle(self.status)
        self.progress.hide()
        self.download_button.setEnabled(bool(self.entries))

    def set_progress(self, key: str, done: int, total: int) -> None:
        self.progress.show()
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"Downloading {key}: {format_bytes(done)} of {format_bytes(total)}")

    def download_done(self, key: str, path: str) -> None:
        self.progress.hide()
        self.download_button.setEnabled(True)
        if path:
            self.status.setText(f"{key} is ready and selected.")

    def _download(self) -> None:
        row = self.table.currentRow()
        key = self.table.item(row, 0).data(Qt.UserRole) if row >= 0 else None
        entry = next((e for e in self.entries if e["key"] == key), None)
        if entry is not None:
            self.download_button.setEnabled(False)
            self.set_progress(key, 0, entry["size"])
            self.download_requested.emit(key, entry)

    def _apply_filter(self, text: str) -> None:
        needle = text.lower().strip()
        for row in range(self.table.rowCount()):
            haystack = " ".join(self.table.item(row, c).text().lower() for c in range(3))
            self.table.setRowHidden(row, bool(needle) and needle not in haystack)

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)
