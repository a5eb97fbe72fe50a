"""The text editor: sample placeholder, live character/word count, .txt drop/open, speak clipboard."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..resources import sample_texts

MAX_FILE_BYTES = 5_000_000


class DropTextEdit(QPlainTextEdit):
    """Plain-text editor that opens a dropped .txt file instead of pasting its path."""

    file_dropped = Signal(str)

    def dragEnterEvent(self, event) -> None:
        if _text_file(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if _text_file(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        path = _text_file(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.file_dropped.emit(path)
        else:
            super().dropEvent(event)


def _text_file(mime) -> str | None:
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith((".txt", ".md")):
                return url.toLocalFile()
    return None


class EditorView(QWidget):
    speak_requested = Signal(str)
    stop_requested = Signal()
    problem = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.samples = sample_texts()
        self.editor = DropTextEdit()
        self.editor.setObjectName("textEditor")
        self.editor.setPlaceholderText(next(iter(self.samples.values()), "Type something to speak…"))
        self.editor.textChanged.connect(self._update_count)
        self.editor.file_dropped.connect(self.load_file)
        self.sample_box = QComboBox()
        self.sample_box.addItem("Insert sample…")
        self.sample_box.addItems(list(self.samples))
        self.sample_box.activated.connect(self._insert_sample)
        self.open_button = QPushButton("Open .txt…")
        self.open_button.clicked.connect(self.open_dialog)
        self.clipboard_button = QPushButton("Speak clipboard")
        self.clipboard_button.setToolTip("Speak whatever text is on the clipboard now")
        self.clipboard_button.clicked.connect(self.speak_clipboard)
        self.count_label = QLabel()
        self.count_label.setObjectName("muted")
        self.speak_button = QPushButton("Speak")
        self.speak_button.setObjectName("primary")
        self.speak_button.setToolTip("Synthesize and play the text (Ctrl+Enter)")
        self.speak_button.clicked.connect(lambda: self.speak_requested.emit(self.text()))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Cancel synthesis and playback (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self._layout()
        self._update_count()

    def _layout(self) -> None:
        tools = QHBoxLayout()
        tools.addWidget(self.sample_box)
        tools.addWidget(self.open_button)
        tools.addWidget(self.clipboard_button)
        tools.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.count_label)
        actions.addStretch(1)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.speak_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addWidget(self.editor, 1)
        layout.addLayout(actions)

    def text(self) -> str:
        """The typed text, or the sample shown as placeholder when the editor is empty."""
        return self.editor.toPlainText().strip() or self.editor.placeholderText()

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)

    def speak_clipboard(self) -> None:
        text = QGuiApplication.clipboard().text().strip()
        if text:
            self.speak_requested.emit(text)
        else:
            self.problem.emit("The clipboard holds no text to speak.", "")

    def load_file(self, path: str) -> None:
        file = Path(path)
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"{file.name} is larger than {MAX_FILE_BYTES // 1_000_000} MB")
            self.editor.setPlainText(file.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError) as exc:
            self.problem.emit(f"Could not open {file.name}: {exc}", "")

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open text", "", "Text files (*.txt *.md);;All files (*)")
        if path:
            self.load_file(path)

    def _insert_sample(self, index: int) -> None:
        if index > 0:
            self.editor.setPlainText(self.samples[self.sample_box.itemText(index)])
        self.sample_box.setCurrentIndex(0)

    def _update_count(self) -> None:
        text = self.editor.toPlainText()
        shown = "sample" if not text.strip() else f"{len(text):,} characters · {len(text.split()):,} words"
        self.count_label.setText(shown)
