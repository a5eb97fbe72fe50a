"""Counter-based noise: exact integer hashing, Gaussian statistics, and independence from padding,
batching and row order — what lets stages draw their own noise inside captured graphs."""

import math

import numpy as np
import pytest
import torch

from engine.models.piper.synth import FIELDS, LENGTH, NORMALIZE, PRIOR_KEY, SPEAKER, SynthParams, pack_inputs
from engine.noise import MASK32, POSITION_BITS, _mix, gaussian, segment_key


def lowbias32(x: int) -> int:
    """The hash as published (C. Wellons, 2018), in Python's unbounded integers."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def test_hash_is_bit_exact_without_overflow():
    values = [0, 1, 2, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, MASK32]
    got = _mix(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [lowbias32(v) for v in values]
    assert all(0 <= v <= MASK32 for v in got)


def test_keys_differ_per_segment_and_stream_and_repeat():
    keys = {segment_key(seed, segment, stream) for seed in (0, 1, 1234) for segment in range(50) for stream in (0, 1)}
    assert len(keys) == 300 and all(0 <= k <= MASK32 for k in keys)
    assert segment_key(7, 3, 1) == segment_key(7, 3, 1)


def test_noise_is_standard_normal_and_uncorrelated():
    keys = torch.tensor([segment_key(5, i, 1) for i in range(4)])
    x = gaussian(keys, 192, 1000, torch.full((4,), 1000), torch.ones(4))
    flat = x.reshape(4, -1).double()
    assert abs(flat.mean().item()) < 0.01 and abs(flat.std().item() - 1) < 0.01
    assert abs((flat**4).mean().item() - 3) < 0.05  # Gaussian tails, not uniform (1.8) or heavier
    corr = torch.corrcoef(flat)
    assert corr.fill_diagonal_(0).abs().max() < 0.01  # rows (segments) independent
    lag1 = (x[..., 1:] * x[..., :-1]).mean().item()
    assert abs(lag1) < 0.01  # neighbouring samples independent
    assert math.isfinite(x.abs().max().item())


def test_noise_depends_only_on_key_channel_and_position():
    keys = torch.tensor([segment_key(1, 0, 0), segment_key(1, 1, 0)])
    short = gaussian(keys, 2, 300, torch.tensor([250, 300]), torch.tensor([0.8, 0.8]))
    padded = gaussian(keys.flip(0), 2, 416, torch.tensor([300, 250]), torch.tensor([0.8, 0.8]))
    assert torch.equal(short[0, :, :250], padded[1, :, :250])  # row order and padding change nothing
    assert torch.equal(short[1], padded[0, :, :300])
    assert not padded[1, :, 250:].any()  # zero past each row's length
    half = gaussian(keys[1:], 2, 300, torch.tensor([300]), torch.tensor([0.4]))
    torch.testing.assert_close(half * 2, short[1:])  # scale multiplies the same draw


def test_noise_refuses_positions_past_its_counter_range():
    with pytest.raises(ValueError, match="frames"):
        gaussian(torch.tensor([1]), 2, (1 << POSITION_BITS) + 1, torch.tensor([1]), torch.ones(1))


def test_pack_inputs_carries_ids_lengths_keys_and_settings():
    params = SynthParams(length_scale=1.1, noise_scale=0.667, noise_w=0.8, speaker_id=3, seed=42, volume=0.5, normalize=True)
    ids, fields = np.full((4, 32), 99, dtype=np.int64), np.full((4, len(FIELDS)), 7.0)  # stale contents are overwritten
    pack_inputs([[1, 5, 9], [1, 7]], [4, 9], params, ids, fields)
    assert ids[0, :4].tolist() == [1, 5, 9, 0] and ids[1, :3].tolist() == [1, 7, 0] and not ids[2:].any()
    assert fields[:, LENGTH].tolist() == [3, 2, 1, 1]  # padding rows: one PAD token
    assert fields[1, PRIOR_KEY] == segment_key(42, 9, 1)  # keyed by segment index, not by row
    assert (fields[:, SPEAKER] == 3).all() and (fields[:, NORMALIZE] == 1).all()
    assert float(np.float32(fields[0, FIELDS.index("noise_scale")])) == np.float32(0.667)


KERNEL_CHECK = r"""
import torch
from engine.kernels.noise import gaussian as kernel
from engine.noise import gaussian, segment_key
fields = torch.zeros(3, 12, dtype=torch.float64)  # keys, lengths and scales as strided float64 columns, as packed
fields[:, 2] = torch.tensor([float(segment_key(9, i, 1)) for i in range(3)])
fields[:, 0] = torch.tensor([700.0, 333.0, 1.0])
fields[:, 6] = torch.tensor([0.667, 0.3, 1.0])
frames = torch.tensor([700, 333, 1])
got = kernel(fields[:, 2], 192, 700, frames, fields[:, 6])
want = gaussian(fields[:, 2], 192, 700, frames, fields[:, 6])
assert got.shape == want.shape == (3, 192, 700)
assert torch.equal(got == 0, want == 0), "zeros exactly past each row's length"
err = (got - want).abs().max().item()
assert err < 1e-5, err
print("max abs difference", err)
"""


def test_triton_kernel_draws_the_same_noise():
    """The one-launch GPU form, run in Triton's interpreter, equals the PyTorch form: the integer
    hash bit for bit (the zeros and signs line up), the transcendental functions to ~1 ulp."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", KERNEL_CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "max abs difference" in done.stdout
