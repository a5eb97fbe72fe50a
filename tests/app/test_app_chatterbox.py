"""Chatterbox in the window against a fake engine: listing, download (progress, cancel, offline), knobs."""

from __future__ import annotations

from app_fakes import FakeEngine, FakeEngineError
from PySide6.QtCore import QSettings, Qt

from app import capabilities as caps
from app.settings import AppSettings

READY = {"ready": True, "path": "/models/chatterbox", "missing": []}
MISSING = {"ready": False, "path": None, "missing": ["t3_turbo_v1.safetensors", "conds.pt"]}


def _engine(**kwargs) -> FakeEngine:
    return FakeEngine(chatterbox={"standard": dict(READY), "turbo": dict(MISSING)}, **kwargs)


def _choose(window, spec: str) -> None:
    box = window.voice_panel.voice_box
    box.activated.emit(box.findData(spec))


def _item(window, spec: str) -> tuple[str, str]:
    box = window.voice_panel.voice_box
    index = box.findData(spec)
    return box.itemText(index), box.itemData(index, Qt.ToolTipRole)


def test_both_models_are_listed_with_their_state(make_window, qtbot):
    window = make_window(_engine().backend())
    qtbot.waitUntil(lambda: "ready" in _item(window, "chatterbox")[0], timeout=5000)
    assert _item(window, "chatterbox") == ("Chatterbox · ready", "Ready: /models/chatterbox")
    text, tooltip = _item(window, "chatterbox-turbo")
    assert text == "Chatterbox Turbo · not downloaded"
    assert "t3_turbo_v1.safetensors" in tooltip and "conds.pt" in tooltip


def test_a_missing_model_offers_a_download_that_then_selects_it(make_window, qtbot):
    engine = _engine()
    window = make_window(engine.backend())
    bar = window.voice_panel.download_bar
    _choose(window, "chatterbox-turbo")
    assert window.controller.voice == "default"
    assert window.voice_panel.voice_box.currentData() == "default"
    assert bar.isVisible() and "2 files missing" in bar.message.text()
    assert "t3_turbo_v1.safetensors" in bar.message.toolTip()
    progress: list[tuple[str, int, int]] = []
    window.controller.chatterbox_download_progress.connect(lambda *args: progress.append(args))
    with qtbot.waitSignal(window.controller.chatterbox_download_finished, timeout=5000) as done:
        bar.download_button.click()
    assert done.args == ["chatterbox-turbo", ""]
    assert progress[-1] == ("chatterbox-turbo", 10_000_000, 10_000_000)
    assert window.controller.voice == "chatterbox-turbo" and not bar.isVisible()
    assert _item(window, "chatterbox-turbo")[0] == "Chatterbox Turbo · ready"
    panel = window.voice_panel.chatterbox
    assert panel.isVisible()
    assert not panel.spins["exaggeration"].isEnabled()
    assert panel.spins["exaggeration"].toolTip() == caps.TURBO_UNUSED["exaggeration"]
    window.editor.set_text("Turbo speaks.")
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.history) == 1, timeout=5000)
    assert engine.options[-1].extra == {"temperature": 0.8}  # Turbo runs at its own exaggeration / CFG


def test_an_offline_download_says_why_and_keeps_the_voice(make_window, qtbot):
    error = FakeEngineError("cannot get ResembleAI/chatterbox-turbo: offline mode (HF_HUB_OFFLINE=1)")
    window = make_window(_engine(download_error=error).backend())
    bar = window.voice_panel.download_bar
    _choose(window, "chatterbox-turbo")
    with qtbot.waitSignal(window.controller.chatterbox_download_finished, timeout=5000):
        bar.download_button.click()
    assert "offline mode" in bar.message.text() and bar.message.objectName() == "error"
    assert bar.download_button.isVisible() and not bar.cancel_button.isVisible()
    assert window.controller.voice == "default"
    assert _item(window, "chatterbox-turbo")[0] == "Chatterbox Turbo · not downloaded"
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.history) == 1, timeout=5000)


def test_cancel_stops_a_download(make_window, qtbot):
    window = make_window(_engine(download_step_s=0.1).backend())
    bar = window.voice_panel.download_bar
    _choose(window, "chatterbox-turbo")
    bar.download_button.click()
    assert bar.cancel_button.isVisible() and bar.progress.isVisible()
    qtbot.waitUntil(lambda: bar.progress.value() > 0, timeout=5000)
    with qtbot.waitSignal(window.controller.chatterbox_download_finished, timeout=5000) as done:
        bar.cancel_button.click()
    assert done.args == ["chatterbox-turbo", "cancelled"]
    assert "cancelled" in bar.message.text()
    assert window.controller.voice == "default"


def test_chatterbox_knobs_reach_the_worker_and_piper_knobs_are_disabled(make_window, qtbot, tmp_path):
    engine = _engine()
    window = make_window(engine.backend())
    panel, voice_panel = window.voice_panel.chatterbox, window.voice_panel
    assert not panel.isVisible()
    _choose(window, "chatterbox")
    assert panel.isVisible() and voice_panel.piper_note.isVisible()
    for key in ("length_scale", "noise_scale", "noise_w"):
        assert not voice_panel.spins[key].isEnabled()
        assert voice_panel.spins[key].toolTip() == caps.PIPER_ONLY[key]
    assert not voice_panel.speaker_box.isEnabled()
    panel.spins["exaggeration"].setValue(1.25)
    panel.spins["cfg_weight"].setValue(0.3)
    panel.spins["temperature"].setValue(0.6)
    reference = tmp_path / "me.wav"
    panel.set_reference(str(reference))
    assert panel.reference.text() == "me.wav" and panel.clear_button.isEnabled()
    window.editor.set_text("Cloned.")
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.history) == 1, timeout=5000)
    wanted = {"exaggeration": 1.25, "cfg_weight": 0.3, "temperature": 0.6, "voice_path": str(reference)}
    assert engine.options[-1].extra == wanted
    panel.clear_button.click()
    assert window.controller.chatterbox_options["voice_path"] == ""
    _choose(window, "default")
    assert not panel.isVisible() and voice_panel.spins["noise_w"].isEnabled()
    assert voice_panel.spins["noise_w"].toolTip() != caps.PIPER_ONLY["noise_w"]
    window.speak()
    qtbot.waitUntil(lambda: len(window.controller.history) == 2, timeout=5000)
    assert not hasattr(engine.options[-1], "extra")


def test_chatterbox_knobs_and_voice_persist(make_window, qtbot, settings):
    window = make_window(_engine().backend())
    _choose(window, "chatterbox")
    window.voice_panel.chatterbox.spins["temperature"].setValue(1.1)
    window.voice_panel.chatterbox.set_reference("/voices/ref.flac")
    window.close()
    reopened = AppSettings(QSettings(settings.store.fileName(), QSettings.IniFormat))
    saved = reopened.json_value("chatterbox_options", {})
    assert saved["temperature"] == 1.1 and saved["voice_path"] == "/voices/ref.flac"
    assert reopened.json_value("voice", "") == "chatterbox"
    again = make_window(_engine().backend())
    assert again.voice_panel.chatterbox.spins["temperature"].value() == 1.1
    assert again.voice_panel.chatterbox.reference.text() == "ref.flac"
    assert again.voice_panel.chatterbox.isVisible()


def test_a_saved_model_that_is_gone_falls_back_to_the_bundled_voice(make_window, qtbot, settings):
    settings.set_json("voice", "chatterbox-turbo")
    window = make_window(_engine().backend())
    assert window.controller.voice == "default"
    assert window.voice_panel.voice_box.currentData() == "default"
    assert window.voice_panel.download_bar.isVisible()
    assert not window.voice_panel.chatterbox.isVisible()


def test_a_checkpoint_folder_is_used_and_a_folder_without_one_refused(make_window, qtbot, tmp_path):
    engine = _engine()
    window = make_window(engine.backend())
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(window.controller.notice, timeout=2000) as refused:
        window.voice_panel.voice_chosen.emit(str(empty))
    assert "t3_cfg.safetensors" in refused.args[0]
    assert window.controller.voice == "default"
    folder = tmp_path / "my-chatterbox"
    folder.mkdir()
    (folder / "t3_cfg.safetensors").write_bytes(b"")
    window.voice_panel.voice_chosen.emit(str(folder))
    assert window.controller.voice == str(folder)
    assert window.voice_panel.chatterbox.isVisible()
    assert window.voice_panel.voice_box.currentText() == "my-chatterbox (Chatterbox folder)"
    qtbot.waitUntil(lambda: engine.loads and engine.loads[-1][0] == str(folder), timeout=5000)
