"""TTS Turbo desktop app: PySide6 views, a controller, and a QThread worker that owns the engine."""
