"""The table of runs: replay, export and clear."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..metrics import RunRecord, format_bytes

COLUMNS = ("Time", "Text", "Config", "Device", "Audio s", "× real time", "RTF", "VRAM peak")


def row_table(columns: tuple[str, ...], stretch_column: int) -> QTableWidget:
    """A read-only table that selects whole rows, sized to its contents with one stretching column."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    table.setSelectionMode(QAbstractItemView.SingleSelection)
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.verticalHeader().hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeToContents)
    header.setSectionResizeMode(stretch_column, QHeaderView.Stretch)
    return table


class HistoryView(QWidget):
    replay_requested = Signal(int)
    export_requested = Signal(int, str)
    clear_requested = Signal()

    def __init__(self, max_rows: int = 100, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self.table = row_table(COLUMNS, stretch_column=1)
        self.table.doubleClicked.connect(lambda index: self._emit_replay(index.row()))
        self.replay_button = QPushButton("▶ Replay")
        self.replay_button.clicked.connect(lambda: self._emit_replay(self.table.currentRow()))
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._export)
        self.clear_button = QPushButton("Clear history")
        self.clear_button.clicked.connect(self.clear_requested)
        row = QHBoxLayout()
        row.addWidget(self.replay_button)
        row.addWidget(self.export_button)
        row.addStretch(1)
        row.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)

    def add_run(self, record: RunRecord) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        label = f"[{record.label}] " if record.label else ""
        cells = (
            time.strftime("%H:%M:%S", time.localtime(record.started)),
            label + record.text_start(),
            record.config_summary,
            record.device,
            f"{record.audio_s:.2f}",
            f"{record.x_realtime:.1f}×",
            f"{record.rtf:.4f}",
            format_bytes(record.peak_vram_bytes) if record.peak_vram_bytes else "—",
        )
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(Qt.UserRole, record.run_id)
            if column >= 4:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.table.setItem(row, column, item)
        self.table.item(row, 1).setToolTip(record.text[:500])
        while self.table.rowCount() > self.max_rows:
            self.table.removeRow(0)
        self.table.scrollToBottom()

    def clear(self) -> None:
        self.table.setRowCount(0)

    def run_id_at(self, row: int) -> int | None:
        item = self.table.item(row, 0) if row >= 0 else None
        return item.data(Qt.UserRole) if item else None

    def _emit_replay(self, row: int) -> None:
        run_id = self.run_id_at(row)
        if run_id is not None:
            self.replay_requested.emit(run_id)

    def _export(self) -> None:
        run_id = self.run_id_at(self.table.currentRow())
        if run_id is None:
            return
        filters = "Audio (*.wav *.flac *.ogg *.mp3)"
        path, _ = QFileDialog.getSaveFileName(self, "Export run", f"run-{run_id}.wav", filters)
        if path:
            self.export_requested.emit(run_id, path)
