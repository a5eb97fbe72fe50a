"""Checkpoint discovery and download: offline and missing files give actionable messages, no network."""

from __future__ import annotations

import pytest

from engine.errors import ModelNotAvailableError
from engine.models.chatterbox import checkpoint_status, download
from engine.models.chatterbox.download import ENV_DIR


def test_status_of_a_complete_folder(tiny_ckpt):
    st = checkpoint_status(tiny_ckpt)
    assert st == {"ready": True, "path": str(tiny_ckpt), "missing": []}


def test_status_lists_missing_files(tmp_path):
    (tmp_path / "t3_cfg.safetensors").write_bytes(b"")
    st = checkpoint_status(tmp_path)
    assert not st["ready"] and "s3gen.safetensors" in st["missing"] and "t3_cfg.safetensors" not in st["missing"]


def test_status_with_empty_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    st = checkpoint_status(cache_dir=tmp_path)
    assert st["ready"] is False and st["path"] is None and "conds.pt" in st["missing"]


def test_offline_download_names_missing_files_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        download(cache_dir=tmp_path)
    msg = str(info.value)
    assert "offline" in msg and "t3_cfg.safetensors" in msg and "tts-turbo models download chatterbox" in msg
    assert ENV_DIR in msg


def test_load_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    from engine.models.chatterbox import load

    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="missing t3_cfg.safetensors"):
        load("chatterbox", "cpu")
