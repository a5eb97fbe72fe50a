"""A non-blocking banner over the window: errors with expandable details, or short notices."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class Banner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("bannerText")
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(lambda on: self.details.setVisible(on))
        self.close_button = QPushButton("✕")
        self.close_button.setObjectName("flat")
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(160)
        self.details.hide()
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self.dismiss)
        row = QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(self.details_button)
        row.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addLayout(row)
        layout.addWidget(self.details)
        self.hide()

    @property
    def kind(self) -> str:
        return self.property("kind") or ""

    def show_error(self, message: str, details: str = "") -> None:
        self._show("error", message, details)

    def show_notice(self, message: str, timeout_ms: int = 6000) -> None:
        if self.isVisible() and self.kind == "error":
            return  # an unread error outranks a passing notice
        self._show("notice", message, "")
        self._hide_timer.start(timeout_ms)

    def dismiss(self) -> None:
        self._hide_timer.stop()
        self.details_button.setChecked(False)
        self.hide()

    def _show(self, kind: str, message: str, details: str) -> None:
        self._hide_timer.stop()
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.message.setText(message)
        self.details.setPlainText(details)
        self.details_button.setVisible(bool(details))
        self.details_button.setChecked(False)
        self.show()
