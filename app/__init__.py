"""TTS Turbo desktop app: PySide6 views, a controller, and a QThread worker that owns the engine."""

from .qt_compat import shield_singletons

shield_singletons()
