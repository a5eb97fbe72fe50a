"""Entry point: `tts-turbo` with no subcommand (or `tts-turbo gui`) calls `main()`."""

from __future__ import annotations

import logging
import sys

from PySide6.QtWidgets import QApplication

from .controller import Controller
from .main_window import MainWindow, load_stylesheet
from .settings import APPLICATION, ORGANIZATION


def main(argv: list[str] | None = None) -> int:
    """Open the window; the engine (and torch) load on the worker thread after it appears."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    load_stylesheet(app)
    window = MainWindow(Controller())
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
