"""Shared tiny Chatterbox checkpoint (official file format, random weights) and a loaded model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.models.chatterbox.random_checkpoint import tiny_config, write_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("chatterbox_tiny"), tiny_config(), seed=0)


@pytest.fixture(scope="session")
def tiny_tts(tiny_ckpt):
    from engine.models.chatterbox import load

    torch.manual_seed(0)
    return load(str(tiny_ckpt), torch.device("cpu"))


class FakeOptimizer:
    """The optimizer surface a model uses (config, device, fallbacks, stats, voice cache)."""

    def __init__(self, config, device="cpu"):
        self.config, self.device = config, torch.device(device)
        self.fallbacks, self.stats, self.cache, self.calls = [], {}, {}, 0

    def record_fallback(self, feature, reason):
        self.fallbacks.append((feature, reason))

    def set_stat(self, key, value):
        self.stats[key] = value

    def get_voice_embedding(self, audio_path, embedding_fn, model_name):
        key = (model_name, Path(audio_path).read_bytes())
        if key not in self.cache:
            self.calls += 1
            self.cache[key] = embedding_fn(Path(audio_path))
        return self.cache[key]


@pytest.fixture
def fake_optimizer():
    return FakeOptimizer
