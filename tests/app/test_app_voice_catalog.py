"""engine/voices.py: catalog parsing, offline behaviour, and downloads with a mocked hub (no network)."""

import json
import threading

import pytest

from engine import voices
from engine.errors import ModelNotAvailableError

CATALOG = {
    "en_US-lessac-medium": {
        "key": "en_US-lessac-medium",
        "name": "lessac",
        "language": {"code": "en_US", "name_english": "English", "country_english": "United States"},
        "quality": "medium",
        "num_speakers": 1,
        "files": {
            "en/en_US/lessac/medium/en_US-lessac-medium.onnx": {"size_bytes": 1000, "md5_digest": "x"},
            "en/en_US/lessac/medium/en_US-lessac-medium.onnx.json": {"size_bytes": 100, "md5_digest": "y"},
            "en/en_US/lessac/medium/MODEL_CARD": {"size_bytes": 10, "md5_digest": "z"},
        },
    },
    "de_DE-thorsten-low": {
        "name": "thorsten",
        "language": {"code": "de_DE", "name_english": "German", "country_english": "Germany"},
        "quality": "low",
        "num_speakers": 1,
        "files": {"de/de_DE/thorsten/low/de_DE-thorsten-low.onnx": {"size_bytes": 500}},
    },
    "broken": {"files": {}},
}


def test_parse_catalog_sorts_and_skips_entries_without_a_model():
    entries = voices.parse_catalog(CATALOG)
    assert [e.key for e in entries] == ["de_DE-thorsten-low", "en_US-lessac-medium"]
    lessac = voices.find_entry(entries, "en_US-lessac-medium")
    assert lessac.language_name == "English (United States)"
    assert lessac.download_bytes == 1100
    assert lessac.config_file.endswith(".onnx.json")


def test_offline_gives_a_clear_message_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="offline"):
        voices.fetch_catalog(tmp_path)
    entry = voices.parse_catalog(CATALOG)[1]
    with pytest.raises(ModelNotAvailableError, match="Open voice"):
        voices.download_voice(entry, tmp_path)


def test_offline_falls_back_to_the_cached_catalog(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "voices.json").write_text(json.dumps(CATALOG))
    assert len(voices.fetch_catalog(tmp_path)) == 2


def test_download_reports_progress_and_installs_beside_each_other(tmp_path, monkeypatch):
    source = tmp_path / "hub"
    source.mkdir()

    def fake_download(repo_path, local_dir, timeout, tqdm_class=None):
        size = voices.parse_catalog(CATALOG)[1].files[repo_path]
        bar = tqdm_class(total=size) if tqdm_class else None
        for _ in range(4):
            bar and bar.update(size // 4)
        path = source / repo_path.rsplit("/", 1)[-1]
        path.write_bytes(b"x" * size)
        return str(path)

    monkeypatch.setattr(voices, "hub_reachable", lambda timeout=4.0: True)
    monkeypatch.setattr(voices, "_hub_download", fake_download)
    seen = []
    entry = voices.parse_catalog(CATALOG)[1]
    model = voices.download_voice(entry, tmp_path / "voices", progress=lambda d, t: seen.append((d, t)))
    assert model.name == "en_US-lessac-medium.onnx" and model.is_file()
    assert model.with_suffix(".onnx.json").is_file()
    assert seen[-1] == (1100, 1100)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert voices.installed_voices(tmp_path / "voices") == [model]
    assert voices.download_voice(entry, tmp_path / "voices") == model  # already there: no network


def test_cancel_stops_a_download(tmp_path, monkeypatch):
    monkeypatch.setattr(voices, "hub_reachable", lambda timeout=4.0: True)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ModelNotAvailableError, match="cancelled"):
        voices.download_voice(voices.parse_catalog(CATALOG)[1], tmp_path, cancel=cancel)
