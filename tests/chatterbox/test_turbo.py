"""Chatterbox-Turbo: GPT-2 T3 (Conv1D transposes), mean-flow S3Gen, Turbo sampling, end to end on CPU."""

from __future__ import annotations

import pytest
import torch

from engine.config import SynthesisOptions
from engine.errors import ModelNotAvailableError
from engine.models.base import StageTimes
from engine.models.chatterbox import download, load, matches
from engine.models.chatterbox.generate import (
    SamplingParams,
    T3Decoder,
    process_logits_turbo,
)
from engine.models.chatterbox.graphs import GraphCache
from engine.models.chatterbox.model import ChatterboxConfig, load_chatterbox
from engine.models.chatterbox.random_checkpoint import (
    random_model,
    tiny_turbo_config,
    write_checkpoint,
)


@pytest.fixture(scope="module")
def turbo_ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("turbo"), tiny_turbo_config(), seed=4)


def test_turbo_folder_loads_exactly(turbo_ckpt):
    assert matches(str(turbo_ckpt)) and matches("chatterbox-turbo")
    assert ChatterboxConfig.from_folder(turbo_ckpt) == tiny_turbo_config()
    loaded, ref = load_chatterbox(turbo_ckpt), random_model(tiny_turbo_config(), seed=4)
    a, b = loaded.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_gpt2_conv1d_weights_are_stored_in_out(turbo_ckpt):
    from engine.models.chatterbox.checkpoint import read_header

    header = read_header(turbo_ckpt / "t3_turbo_v1.safetensors")
    assert header["tfmr.h.0.attn.c_attn.weight"].shape == (128, 384)  # [in, 3·out] as GPT-2's Conv1D
    assert header["tfmr.h.0.mlp.c_fc.weight"].shape == (128, 256)
    assert header["speech_head.bias"].shape == (6563,)


def test_turbo_sampling_order():
    knobs = torch.tensor([0.0, 2.0, 0.5, 0.0, 1.0])  # penalty 2, temperature 2, top-p off
    logits = torch.tensor([[4.0, -2.0, 1.0, 0.0]])
    seen = torch.tensor([False, True, True, False])
    out = process_logits_turbo(logits, seen, knobs, top_k=3)
    # temperature first (÷2), top-k keeps 3 of 4, then the penalty on what is left
    torch.testing.assert_close(out, torch.tensor([2.0, float("-inf"), 0.25, 0.0]))


def test_turbo_counts_bos_only_for_the_first_draw():
    t3 = random_model(tiny_turbo_config(), seed=1).t3
    cond = t3.cond_embeds(torch.ones(1, 256) / 16, torch.arange(375)[None] % 6561, torch.zeros(1, 1, 1))
    prompt = t3.prompt_embeds(cond, torch.tensor([40, 41, 42]), 1)
    assert prompt.shape == (1, 376 + 3 + 1, 128)
    dec = T3Decoder(t3, torch.device("cpu"), torch.float32, 512, 8, GraphCache(False), top_k=1000)
    dec.state.knobs.copy_(torch.tensor([0.0, 1.2, 1.25, 0.0, 0.95]))
    dec.prefill(prompt)
    first = int(dec.state.tok)
    assert dec.state.seen.nonzero().flatten().tolist() == [first]
    toks = dec.generate(prompt, SamplingParams(max_new_tokens=8, top_p=0.95, min_p=0.0, cfg_weight=0.0), stop_on_eos=False)
    assert len(toks) == 8


def test_mean_flow_is_two_linear_steps_without_cfg():
    flow = random_model(tiny_turbo_config(), seed=2).s3gen.flow.decoder
    assert flow.t_span.tolist() == [0.0, 0.5, 1.0]
    z, mu, cond = torch.randn(1, 80, 12), torch.randn(1, 80, 12), torch.zeros(1, 80, 12)
    mask, spks = torch.ones(1, 1, 12), torch.randn(1, 80)
    with torch.inference_mode():
        out = flow(z, mu, mask, spks, cond)
        x = z
        for t, r in ((0.0, 0.5), (0.5, 1.0)):
            v = flow.estimator(x, mask, mu, torch.tensor([t]), spks, cond, torch.tensor([r]))
            x = x + (r - t) * v
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)


def test_turbo_end_to_end_appends_three_silence_tokens(turbo_ckpt):
    tts = load(str(turbo_ckpt), "cpu")
    opts = SynthesisOptions(seed=0, extra={"max_new_tokens": 10})
    segs = tts.segment("hello there... turbo; [laugh]", opts)
    assert segs[0].text == "Hello there... turbo; [laugh]."  # Turbo keeps "..." and ";"
    captured = []
    original = tts.decoder.generate

    def spy(*a, **k):
        captured.append([t for t in original(*a, **k) if t < 6561])
        return captured[-1]

    tts.decoder.generate = spy
    wav = next(iter(tts.synthesize(segs, opts, StageTimes())))
    assert wav.shape[0] == 960 * (len(captured[0]) + 3)
    assert torch.isfinite(wav).all() and tts.describe()["variant"] == "turbo"


def test_turbo_offline_download_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TTS_TURBO_CHATTERBOX_TURBO_DIR", raising=False)
    with pytest.raises(ModelNotAvailableError, match=r"chatterbox-turbo.*t3_turbo_v1\.safetensors.*models download chatterbox-turbo"):
        download(cache_dir=tmp_path, variant="turbo")
