"""Chatterbox through the real worker on CPU: a tiny random checkpoint in the official file format."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest


@pytest.fixture
def tiny_checkpoint(tmp_path, monkeypatch):
    """Standard Chatterbox found through its env var; Turbo absent (an empty hub cache, no network)."""
    import huggingface_hub.constants

    from engine.models.chatterbox.random_checkpoint import tiny_config, write_checkpoint

    folder = write_checkpoint(tmp_path / "chatterbox", tiny_config(), seed=0)
    monkeypatch.setenv("TTS_TURBO_CHATTERBOX_DIR", str(folder))
    monkeypatch.delenv("TTS_TURBO_CHATTERBOX_TURBO_DIR", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return folder


@pytest.fixture
def offline_download(monkeypatch):
    """The engine's download as it fails without network, without trying the network."""
    from engine.errors import ModelNotAvailableError
    from engine.models import chatterbox

    def download(progress=None, cache_dir=None, variant="standard"):
        raise ModelNotAvailableError(f"cannot get {chatterbox.REPOS[variant]}: ConnectionError: no network")

    monkeypatch.setattr(chatterbox, "download", download)


def _write_reference(path, seconds=2.0, rate=16000):
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    voice = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    soundfile.write(path, voice.astype(np.float32), rate)
    return path


def test_chatterbox_speaks_clones_and_reports_a_missing_turbo(
    make_window, qtbot, tiny_checkpoint, offline_download, tmp_path
):
    from app.engine_worker import load_engine_backend

    received: list[dict] = []
    backend = load_engine_backend()
    options_class = backend.options_class

    def recording_options(**kwargs):
        received.append(kwargs)
        return options_class(**kwargs)

    window = make_window(dataclasses.replace(backend, options_class=recording_options))
    c, box = window.controller, window.voice_panel.voice_box
    assert box.itemText(box.findData("chatterbox")) == "Chatterbox · ready"
    assert box.itemText(box.findData("chatterbox-turbo")) == "Chatterbox Turbo · not downloaded"
    assert "t3_turbo_v1.safetensors" in box.itemData(box.findData("chatterbox-turbo"), 3)

    box.activated.emit(box.findData("chatterbox"))
    panel = window.voice_panel.chatterbox
    panel.spins["exaggeration"].setValue(0.7)
    panel.spins["cfg_weight"].setValue(0.3)
    panel.spins["temperature"].setValue(0.9)
    window.editor.set_text("Hello.")
    window.speak()
    qtbot.waitUntil(lambda: len(c.history) == 1, timeout=60000)
    record = c.history[0]
    assert record.sample_rate == 24000 and record.audio_s > 0 and np.isfinite(record.audio).all()
    assert record.voice == "chatterbox" and record.device == "cpu"
    assert window.history_view.table.rowCount() == 1
    assert received[-1]["extra"] == {"exaggeration": 0.7, "cfg_weight": 0.3, "temperature": 0.9}

    reference = _write_reference(tmp_path / "reference.wav")
    panel.set_reference(str(reference))
    window.speak()
    qtbot.waitUntil(lambda: len(c.history) == 2, timeout=60000)
    assert received[-1]["extra"]["voice_path"] == str(reference)
    assert c.history[1].audio_s > 0 and np.isfinite(c.history[1].audio).all()

    box.activated.emit(box.findData("chatterbox-turbo"))
    bar = window.voice_panel.download_bar
    assert bar.isVisible() and c.voice == "chatterbox"
    with qtbot.waitSignal(c.chatterbox_download_finished, timeout=10000) as done:
        bar.download_button.click()
    assert "no network" in done.args[1]
    assert "could not be downloaded" in bar.message.text() and bar.message.objectName() == "error"
    assert c.voice == "chatterbox" and box.currentData() == "chatterbox"
    assert c.voice_variant == "standard"
