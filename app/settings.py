"""Persisted preferences (QSettings): window layout, voice, device, toggles, knobs, output device.

Values cross the QSettings boundary as JSON strings so dicts round-trip identically on every
platform backend (registry, plist, ini).
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "TTS Turbo"
APPLICATION = "TTS Turbo"


class AppSettings:
    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or QSettings(ORGANIZATION, APPLICATION)

    def json_value(self, key: str, default: Any) -> Any:
        raw = self.store.value(key)
        if raw in (None, ""):
            return default
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            return default

    def set_json(self, key: str, value: Any) -> None:
        self.store.setValue(key, json.dumps(value))

    def bytes_value(self, key: str) -> QByteArray | None:
        value = self.store.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self.store.setValue(key, value)

    def sync(self) -> None:
        self.store.sync()
