"""End to end on CPU through the real loader: text → chunks → T3 → S3Gen → HiFT, and voice cloning."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch

from engine.config import OptimizationConfig, SynthesisOptions
from engine.errors import InputError
from engine.models.base import StageTimes
from engine.models.chatterbox import FAMILY, matches
from engine.models.chatterbox.tokenizer import punc_norm, split_sentences


def _write_wav(path, seconds=2.0, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


def test_family_matches(tiny_ckpt):
    assert FAMILY.name == "chatterbox"
    assert matches("chatterbox") and matches("ChatterBox") and matches(str(tiny_ckpt))
    assert not matches(str(tiny_ckpt / "conds.pt"))


def test_text_front_end():
    assert punc_norm("hello   world") == "Hello world."
    assert punc_norm("wait… what: yes") == "Wait,  what, yes."  # the reference collapses spaces before mapping
    chunks = split_sentences("One. " * 200, max_chars=100)
    assert all(len(c) <= 100 for c in chunks) and "".join(chunks).count("One.") == 200


def test_end_to_end_audio_is_960_samples_per_token(tiny_tts):
    opts = SynthesisOptions(seed=0, extra={"max_new_tokens": 12})
    segs = tiny_tts.segment("Hello there. General test!", opts)
    assert segs[0].tokens[0] == 255 and segs[0].tokens[-1] == 0
    times = StageTimes()
    captured = []
    original = tiny_tts.decoder.generate

    def spy(*a, **k):
        captured.append([t for t in original(*a, **k) if t < 6561])
        return captured[-1] + [6562]

    tiny_tts.decoder.generate = spy
    try:
        wavs = list(tiny_tts.synthesize(segs, opts, times))
    finally:
        tiny_tts.decoder.generate = original
    assert len(wavs) == len(segs)
    for wav, toks in zip(wavs, captured):
        assert wav.dtype == torch.float32 and wav.dim() == 1
        assert wav.shape[0] == 960 * len(toks)
        assert torch.isfinite(wav).all() and wav.abs().max() <= 0.99
    assert set(times.values) >= {"t3", "s3gen_encoder", "cfm", "hift"}


def test_options_are_validated(tiny_tts):
    with pytest.raises(InputError):
        list(tiny_tts.synthesize(tiny_tts.segment("Hi.", SynthesisOptions()), SynthesisOptions(extra={"temperature": 0}), StageTimes()))
    with pytest.raises(InputError):
        list(tiny_tts.synthesize(tiny_tts.segment("Hi.", SynthesisOptions()), SynthesisOptions(extra={"cfg_weight": "x"}), StageTimes()))


def test_cfg_weight_zero_runs_one_row(tiny_tts):
    opts = SynthesisOptions(seed=1, extra={"max_new_tokens": 4, "cfg_weight": 0.0})
    wav = next(iter(tiny_tts.synthesize(tiny_tts.segment("Hi.", opts), opts, StageTimes())))
    assert wav.shape[0] % 960 == 0


def test_voice_cloning_through_optimizer_cache(tiny_tts, tmp_path, fake_optimizer):
    ref = _write_wav(tmp_path / "ref.wav")
    copy = tmp_path / "copy.wav"
    copy.write_bytes(ref.read_bytes())
    opt = fake_optimizer(OptimizationConfig())
    tiny_tts.optimize(opt)
    try:
        conds = tiny_tts.voice(str(ref))
        again = tiny_tts.voice(str(copy))
        assert opt.calls == 1  # keyed by content, not by path
        assert conds.speaker_emb.shape == (1, 256)
        torch.testing.assert_close(conds.speaker_emb.norm(), torch.tensor(1.0))
        assert conds.embedding.shape == (1, 192)
        assert conds.t3_prompt.shape[1] == 50  # 2 s of audio at 25 tokens/s
        assert conds.prompt_feat.shape[1] == 2 * conds.prompt_token.shape[1] == 100  # 2 s at 50 mel frames/s
        assert int(conds.prompt_token.max()) < 6561
        torch.testing.assert_close(again.embedding, conds.embedding)
        opts = SynthesisOptions(seed=0, extra={"max_new_tokens": 4, "voice_path": str(ref)})
        wav = next(iter(tiny_tts.synthesize(tiny_tts.segment("Hi.", opts), opts, StageTimes())))
        assert torch.isfinite(wav).all()
        assert ("cuda_graphs", "chatterbox: no CUDA device, decoding eagerly") not in opt.fallbacks
    finally:
        tiny_tts.optimize(fake_optimizer(OptimizationConfig.unoptimized()))


def test_describe(tiny_tts):
    d = tiny_tts.describe()
    assert d["family"] == "chatterbox" and d["sample_rate"] == 24000 and d["samples_per_token"] == 960


def test_bf16_keeps_tables_fp32_and_fp32_is_restored_exactly(tiny_tts, tiny_ckpt, fake_optimizer):
    from engine.models.chatterbox.model import load_chatterbox

    m = tiny_tts.model
    tiny_tts.optimize(fake_optimizer(OptimizationConfig(enable_bf16=True)))
    try:
        assert m.t3.speech_head.weight.dtype == torch.bfloat16
        assert m.s3gen.flow.decoder.estimator.final_proj.weight.dtype == torch.bfloat16
        assert m.s3gen.mel2wav.conv_pre.weight.dtype == torch.float32  # HiFT stays fp32
        for table in (m.t3.tfmr.rope_cos, m.s3gen.flow.decoder.t_span, m.s3gen.flow.decoder.estimator.time_freqs):
            assert table.dtype == torch.float32
    finally:
        tiny_tts.optimize(fake_optimizer(OptimizationConfig.unoptimized()))
    fresh = load_chatterbox(tiny_ckpt)
    torch.testing.assert_close(m.t3.speech_head.weight, fresh.t3.speech_head.weight, rtol=0, atol=0)


def test_cancel_is_honoured_between_and_within_chunks(tiny_tts):
    from engine.errors import SynthesisCancelled

    opts = SynthesisOptions(seed=0, extra={"max_new_tokens": 64})
    segs = tiny_tts.segment("One. Two.", opts)
    with pytest.raises(SynthesisCancelled):
        list(tiny_tts.synthesize(segs, opts, StageTimes(), lambda: True))
    polls = []

    def cancel_on_second_poll():
        polls.append(1)
        return len(polls) > 1

    with pytest.raises(SynthesisCancelled, match="T3"):
        list(tiny_tts.synthesize(segs[:1], opts, StageTimes(), cancel_on_second_poll))
