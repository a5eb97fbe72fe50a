"""On-device sampling: the reference's order and rules (CFG, repetition penalty, temperature, min-p, top-p)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.models.chatterbox.generate import SamplingParams, process_logits, sample


def knobs(cfg=0.0, penalty=1.0, temperature=1.0, min_p=0.0, top_p=1.0):
    return torch.tensor([cfg, penalty, 1.0 / temperature, min_p, top_p])


def test_cfg_combine():
    cond, uncond = torch.randn(10), torch.randn(10)
    out = process_logits(torch.stack([cond, uncond]), torch.zeros(10, dtype=torch.bool), knobs(cfg=0.5))
    torch.testing.assert_close(out, cond + 0.5 * (cond - uncond))


def test_repetition_penalty_rule():
    logits = torch.tensor([[2.0, -2.0, 2.0, -2.0]])
    seen = torch.tensor([True, True, False, False])
    out = process_logits(logits, seen, knobs(penalty=2.0))
    torch.testing.assert_close(out, torch.tensor([1.0, -4.0, 2.0, -2.0]))  # seen: >0 divided, <0 multiplied


def test_temperature_divides():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    out = process_logits(logits, torch.zeros(3, dtype=torch.bool), knobs(temperature=0.5))
    torch.testing.assert_close(out, logits[0] * 2)


def test_min_p_masks_below_fraction_of_max():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01])
    out = process_logits(probs.log()[None], torch.zeros(5, dtype=torch.bool), knobs(min_p=0.1))
    assert torch.isfinite(out[:3]).all() and torch.isinf(out[3:]).all()  # 0.04 < 0.1 * 0.5


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    out = process_logits(probs.log()[None], torch.zeros(4, dtype=torch.bool), knobs(top_p=0.75))
    assert torch.isfinite(out[:2]).all() and torch.isinf(out[2:]).all()
    keep_all = process_logits(probs.log()[None], torch.zeros(4, dtype=torch.bool), knobs(top_p=1.0))
    assert torch.isfinite(keep_all).all()


def test_top_p_always_keeps_the_best_token():
    out = process_logits(torch.tensor([[5.0, 0.0, 0.0]]), torch.zeros(3, dtype=torch.bool), knobs(top_p=0.01))
    assert torch.isfinite(out[0]) and torch.isinf(out[1:]).all()


def test_sample_never_picks_masked_and_follows_probabilities():
    torch.manual_seed(0)
    l = torch.tensor([math.log(0.7), math.log(0.3), float("-inf")])
    draws = torch.cat([sample(l) for _ in range(2000)])
    assert (draws != 2).all()
    assert abs((draws == 0).float().mean().item() - 0.7) < 0.04


def test_sampling_params_validation():
    with pytest.raises(ValueError):
        SamplingParams(temperature=0)
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)
