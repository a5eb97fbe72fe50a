"""CUDA graphs replay what eager computes (T3 decode step, S3Gen flow); the optimized path runs clean."""

from __future__ import annotations

import pytest
import torch

from engine.config import OptimizationConfig, SynthesisOptions
from engine.models.base import StageTimes
from engine.models.chatterbox.generate import S3GenRunner, SamplingParams, T3Decoder
from engine.models.chatterbox.graphs import GraphCache
from engine.models.chatterbox.random_checkpoint import (
    random_conds,
    random_model,
    tiny_config,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def model():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return random_model(tiny_config(), seed=7, device=CUDA)


def _tokens(t3, graphs: bool, n=40):
    cond = t3.cond_embeds(torch.ones(1, 256, device=CUDA) / 16, torch.arange(20, device=CUDA)[None], torch.full((1, 1, 1), 0.5, device=CUDA))
    prompt = t3.prompt_embeds(cond, torch.tensor([255, 5, 6, 7, 0], device=CUDA), 2)
    fallbacks = []
    dec = T3Decoder(t3, CUDA, torch.float32, 512, n, GraphCache(graphs, 2, lambda f, r: fallbacks.append(r)))
    toks = dec.generate(prompt, SamplingParams(temperature=1e-4, max_new_tokens=n, repetition_penalty=1.0), stop_on_eos=False)
    assert not fallbacks, fallbacks
    return toks, dec


def test_t3_graph_replay_equals_eager(model):
    with torch.inference_mode():
        eager, _ = _tokens(model.t3, graphs=False)
        graphed, dec = _tokens(model.t3, graphs=True)
    assert len(dec.graphs.graphs) >= 1
    assert graphed == eager  # near-greedy sampling: identical token streams


def test_flow_graph_replay_equals_eager(model):
    conds = random_conds(tiny_config(), prompt_tokens=30)
    z = torch.randn(1, 80, 2 * (30 + 50), device=CUDA)
    toks = list(range(1000, 1050))
    with torch.inference_mode():
        eager = S3GenRunner(model.s3gen, CUDA, True, False, 2, None).mel(conds, toks, z=z)
        runner = S3GenRunner(model.s3gen, CUDA, True, True, 2, None)
        graphed = runner.mel(conds, toks, z=z)
        again = runner.mel(conds, toks, z=z)
    torch.testing.assert_close(graphed, eager, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(again, graphed)
    wav = runner.wav(graphed)
    assert wav.shape == (100 * 480,) and torch.isfinite(wav).all()
    assert len(runner.hift_graphs.graphs) == 1


def test_optimized_pipeline_bf16_graphs(tmp_path, fake_optimizer):
    from engine.models.chatterbox import load
    from engine.models.chatterbox.random_checkpoint import write_checkpoint

    tts = load(str(write_checkpoint(tmp_path / "ckpt", tiny_config(), seed=2)), CUDA)
    opt = fake_optimizer(OptimizationConfig(enable_bf16=True, enable_cuda_graphs=True), "cuda")
    tts.optimize(opt)
    opts = SynthesisOptions(seed=0, extra={"max_new_tokens": 30})
    wavs = list(tts.synthesize(tts.segment("Graphs on the GPU. Second sentence.", opts), opts, StageTimes()))
    assert all(torch.isfinite(w).all() and w.shape[0] % 960 == 0 for w in wavs)
    assert not [f for f in opt.fallbacks if f[0].startswith("cuda_graphs")], opt.fallbacks
    assert tts.t3_dtype == torch.bfloat16
