"""S3Gen: bucket padding leaves valid frames unchanged; HiFT produces 480 samples per mel frame."""

from __future__ import annotations

import pytest
import torch

from engine.models.chatterbox.generate import S3GenRunner
from engine.models.chatterbox.random_checkpoint import (
    random_conds,
    random_model,
    tiny_config,
)


@pytest.fixture(scope="module")
def model():
    return random_model(tiny_config(), seed=5)


def test_flow_right_padding_is_exact(model):
    flow = model.s3gen.flow
    N, Nb = 30, 64
    tokens = torch.randint(0, 6561, (1, Nb))
    cond = torch.zeros(1, 80, 2 * Nb)
    cond[:, :, :20] = torch.randn(1, 80, 20)
    z = torch.randn(1, 80, 2 * Nb)
    xvec = torch.randn(1, 192)
    with torch.inference_mode():
        exact = flow(tokens[:, :N], torch.ones(1, N, dtype=torch.bool), cond[:, :, :2 * N], xvec, z[:, :, :2 * N])
        padded = flow(tokens, torch.arange(Nb)[None] < N, cond, xvec, z)
    torch.testing.assert_close(padded[:, :, :2 * N], exact, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(padded[:, :, 2 * N:], z[:, :, 2 * N:])  # masked velocity: padding keeps its noise


def test_runner_mel_and_wav_lengths(model):
    conds = random_conds(tiny_config(), prompt_tokens=12)
    runner = S3GenRunner(model.s3gen, torch.device("cpu"), buckets=True, graphs_enabled=False, warmup=1, on_fallback=None)
    with torch.inference_mode():
        mel = runner.mel(conds, list(range(100, 117)))
        wav = runner.wav(mel)
    assert mel.shape == (1, 80, 34)
    assert wav.shape == (34 * 480,)
    assert wav[:480].abs().max() == 0  # first 20 ms silenced as in the reference
    assert wav.abs().max() <= 0.99 and torch.isfinite(wav).all()


def test_hift_injected_noise_is_deterministic(model):
    hift = model.s3gen.mel2wav
    mel = torch.randn(1, 80, 10) - 5
    phase = torch.rand(1, 9, 1)
    noise = torch.randn(1, 9, 4800)
    with torch.inference_mode():
        a, b = hift(mel, phase, noise), hift(mel, phase, noise)
    torch.testing.assert_close(a, b)
    assert a.shape == (1, 4800)


def test_encoder_relative_shift_matches_definition(model):
    from engine.models.chatterbox.s3gen_encoder import _shift_index

    T = 5
    idx = _shift_index(T, "cpu")[0, 0]
    for i in range(T):
        for j in range(T):
            assert idx[i, j] == (T - 1) - (i - j)  # table column of relative offset i - j
