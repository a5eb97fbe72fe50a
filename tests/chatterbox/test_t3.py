"""T3: cached decode equals a full causal pass; prompt layout; llama3 RoPE scaling."""

from __future__ import annotations

import math

import torch

from engine.models.chatterbox.generate import SamplingParams, T3Decoder
from engine.models.chatterbox.graphs import GraphCache
from engine.models.chatterbox.random_checkpoint import random_model, tiny_config
from engine.models.chatterbox.t3 import T3Config, llama3_inv_freq


def _t3():
    return random_model(tiny_config(), seed=3).t3


def _full_logits(t3, embeds):
    L = embeds.shape[1]
    t3.setup_caches(2, L + 64, torch.float32, torch.device("cpu"))
    h = t3.tfmr(embeds, torch.arange(L), L, None)
    return t3.speech_head(h).float()


def test_prompt_layout_double_bos_and_zeroed_uncond_text():
    t3 = _t3()
    cond = torch.randn(1, t3.cfg.cond_len, t3.cfg.dim)
    ids = torch.tensor([255, 5, 6, 7, 0])
    e = t3.prompt_embeds(cond, ids, 2)
    C, Lt = t3.cfg.cond_len, len(ids)
    assert e.shape == (2, C + Lt + 2, t3.cfg.dim)
    bos = t3.speech_emb.weight[6561] + t3.speech_pos_emb.emb.weight[0]
    torch.testing.assert_close(e[:, -1], bos.expand(2, -1))
    torch.testing.assert_close(e[:, -2], bos.expand(2, -1))
    torch.testing.assert_close(e[1, C:C + Lt], t3.text_pos_emb.emb.weight[:Lt])  # text embeddings zeroed, positions kept
    torch.testing.assert_close(e[0, C:C + Lt], t3.text_emb(ids) + t3.text_pos_emb.emb.weight[:Lt])
    torch.testing.assert_close(e[0, :C], e[1, :C])


def test_cached_decode_matches_full_pass():
    torch.manual_seed(0)
    t3 = _t3()
    cond = t3.cond_embeds(torch.randn(1, 256), torch.randint(0, 6561, (1, 20)), torch.full((1, 1, 1), 0.5))
    prompt = t3.prompt_embeds(cond, torch.tensor([255, 10, 11, 12, 0]), 2)
    dec = T3Decoder(t3, torch.device("cpu"), torch.float32, 256, 16, GraphCache(False))
    dec.state.knobs.copy_(torch.tensor([0.5, 1.2, 1.25, 0.05, 1.0]))
    dec.prefill(prompt)
    for _ in range(4):
        dec.decode_one_token(2, 128)
    toks = dec.state.tokens[:5]
    L = prompt.shape[1]
    fed = torch.cat([t3.speech_step_embeds(toks[i:i + 1], torch.tensor([i])) for i in range(4)], dim=1)
    full = torch.cat([prompt, fed.expand(2, -1, -1)], dim=1)
    logits = _full_logits(t3, full)
    # the cached step for token i saw exactly the full sequence up to position L + i
    dec2 = T3Decoder(t3, torch.device("cpu"), torch.float32, 256, 16, GraphCache(False))
    h = t3.tfmr(prompt, torch.arange(L), L, None)
    step0 = t3.speech_head(h[:, -1]).float()
    torch.testing.assert_close(step0, logits[:, L - 1], rtol=1e-4, atol=1e-4)
    x = t3.speech_step_embeds(toks[:1], torch.tensor([0])).expand(2, 1, -1)
    mask = (torch.arange(128) <= L).view(1, 1, 1, 128)
    h1 = t3.tfmr(x, torch.tensor([L]), 128, mask)
    torch.testing.assert_close(t3.speech_head(h1[:, -1]).float(), logits[:, L], rtol=1e-4, atol=1e-4)
    assert dec2.max_seq >= 256


class _ScriptedHead(torch.nn.Module):
    """Logits that pick token 100 for `n` steps, then EOS."""

    def __init__(self, vocab, stop, n):
        super().__init__()
        self.vocab, self.stop, self.n, self.calls = vocab, stop, n, 0

    def forward(self, h):
        logits = torch.full((h.shape[0], self.vocab), -30.0)
        logits[:, 100 + self.calls if self.calls < self.n else self.stop] = 30.0
        self.calls += 1
        return logits


def test_generate_stops_at_eos_with_polling():
    torch.manual_seed(1)
    t3 = _t3()
    t3.speech_head = _ScriptedHead(t3.cfg.speech_vocab, t3.cfg.stop_speech, 6)
    cond = t3.cond_embeds(torch.randn(1, 256), torch.randint(0, 6561, (1, 10)), torch.full((1, 1, 1), 0.5))
    prompt = t3.prompt_embeds(cond, torch.tensor([255, 3, 0]), 2)
    dec = T3Decoder(t3, torch.device("cpu"), torch.float32, 256, 40, GraphCache(False), poll_every=4)
    toks = dec.generate(prompt, SamplingParams(max_new_tokens=40, repetition_penalty=1.0))
    assert toks == [100, 101, 102, 103, 104, 105]
    assert t3.speech_head.calls == 9  # prefill + 8 steps: EOS sampled on call 7, seen at the poll after step 8


def test_llama3_rope_scaling():
    cfg = T3Config()
    inv = llama3_inv_freq(cfg)
    base = 1.0 / cfg.rope_theta ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64)
    wavelen = 2 * math.pi / base
    hi = wavelen < cfg.rope_original_len / cfg.rope_high_freq
    lo = wavelen > cfg.rope_original_len / cfg.rope_low_freq
    torch.testing.assert_close(inv[hi].double(), base[hi], rtol=1e-6, atol=0)  # high frequencies untouched
    torch.testing.assert_close(inv[lo].double(), base[lo] / 8, rtol=1e-6, atol=0)  # low frequencies ÷ factor


def test_compile_failure_falls_back_to_eager_visibly():
    torch.manual_seed(0)
    t3 = _t3()
    cond = t3.cond_embeds(torch.ones(1, 256) / 16, torch.arange(20)[None], torch.full((1, 1, 1), 0.5))
    prompt = t3.prompt_embeds(cond, torch.tensor([255, 5, 6, 7, 0]), 2)
    params = SamplingParams(temperature=1e-4, max_new_tokens=8, repetition_penalty=1.0)
    eager = T3Decoder(t3, torch.device("cpu"), torch.float32, 256, 8, GraphCache(False)).generate(prompt, params, stop_on_eos=False)
    notes = []
    dec = T3Decoder(t3, torch.device("cpu"), torch.float32, 256, 8, GraphCache(False, on_fallback=lambda f, r: notes.append(f)))

    def broken(rows, S):
        raise RuntimeError("inductor failed")

    dec.step = broken
    assert dec.generate(prompt, params, stop_on_eos=False) == eager
    assert notes == ["compile"]
