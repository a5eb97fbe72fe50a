"""Shared fixtures: the real bundled joe voice on the CPU, loaded once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TTS_TURBO_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "tts-turbo"))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run scripts/gpu_check.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def joe_cpu():
    from engine import load_model

    return load_model("default", "cpu")


@pytest.fixture(scope="session")
def joe_paths():
    from engine.models.piper.voice import bundled_voice

    return bundled_voice()
