"""Finishing: peak normalisation, volume, clipping and pauses, on a padded batch (as Piper does it on
the device) and per waveform on the host (other families), and through the wrapper end to end."""

import numpy as np
import pytest
import torch

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
from engine.config import SynthesisOptions
from engine.feed import SegmentFeed
from engine.finishing import finish_rows_, finish_wave, pause_samples
from engine.models.base import Segment


def _batch():
    torch.manual_seed(0)
    audio = torch.randn(3, 1000) * torch.tensor([[0.3], [2.0], [0.0]])
    valid = torch.tensor([600, 1000, 400])
    audio[0, 600:] = 50.0  # padding garbage must not decide the peak
    return audio, valid


@pytest.mark.parametrize("volume, normalize", [(1.0, True), (0.5, True), (3.0, True), (0.5, False)])
def test_batch_and_per_wave_finishing_agree(volume, normalize):
    audio, valid = _batch()
    options = SynthesisOptions(volume=volume, normalize=normalize)
    rows = finish_rows_(audio.clone(), valid, torch.full((3,), volume), torch.full((3,), normalize))
    for row, n in enumerate(valid.tolist()):
        alone = finish_wave(audio[row, :n], options, pause=7)
        assert alone.shape == (n + 7,) and not alone[n:].any()
        np.testing.assert_allclose(rows[row, :n].numpy(), alone[:n], rtol=1e-6, atol=1e-7)
    head = rows[0, :600]
    if normalize:
        assert head.abs().max().item() == pytest.approx(min(volume, 1.0), rel=1e-6)
    else:
        torch.testing.assert_close(head, (audio[0, :600] * volume).clamp(-1, 1))
    assert rows[:2].abs().max() <= 1.0  # clipped, even at volume 3
    assert not rows[2].any()  # silence is not amplified


def test_pauses_follow_every_segment_but_the_last():
    segments = [Segment("a", [1], 0.2), Segment("b", [1], 0.4), Segment("c", [1], 0.2)]
    for threaded in (False, True):
        fed = list(SegmentFeed(lambda: iter(segments), threaded=threaded))
        assert [pause_samples(s, 1000) for s in fed] == [200, 400, 0]
    assert segments[-1].pause_after == 0.2, "the caller's segments are left as they were"


def test_piper_finishes_batches_with_pauses(joe_cpu):
    """Batched synthesis on the CPU goes through the batch form: every sentence peaks at the volume
    and carries its pause, and the whole equals sentence-by-sentence synthesis."""
    text = "The first sentence is here. A second one follows it. Third."
    options = SynthesisOptions(seed=4, volume=0.5, sentence_silence=0.1)
    batched = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig(batch_preprocessing=True), joe_cpu.device))
    chunks = list(batched.stream(text, options))
    pause = int(round(0.1 * joe_cpu.sample_rate))
    assert len(chunks) == 3
    for i, chunk in enumerate(chunks):
        tail = pause if i < 2 else 0
        speech = chunk.audio[: len(chunk.audio) - tail]
        assert not chunk.audio[len(speech) :].any()
        assert np.abs(speech).max() == pytest.approx(0.5, rel=1e-6)
    single = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), joe_cpu.device))
    alone = single.generate(text, options).audio
    whole = np.concatenate([c.audio for c in chunks])
    assert whole.shape == alone.shape
    np.testing.assert_allclose(whole, alone, atol=2e-4)


@pytest.mark.parametrize("sizes", [[], [5], [300_000] * 7 + [12, 0, 1_000_001]])
def test_joined_audio_is_the_concatenation(sizes):
    from engine.wrapper import join_audio

    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    joined = join_audio(chunks)
    assert joined.dtype == np.float32
    np.testing.assert_array_equal(joined, np.concatenate(chunks) if chunks else np.zeros(0, np.float32))


def test_audio_already_laid_out_end_to_end_is_joined_without_a_copy():
    """The runner lays a call's audio out in one array (`synth.Joined`): views in order, and
    before them the sentences handed out earlier, whose copies sit at the array's head."""
    from engine.wrapper import join_audio

    whole = np.arange(10, dtype=np.float32)
    early = whole[:3].copy()
    assert join_audio([early, whole[3:7], whole[7:]]) is whole
    assert join_audio([whole[:4], whole[4:]]) is whole


@pytest.mark.parametrize("case", ["head differs", "gap", "out of order", "short of the end", "reversed view", "other dtype", "sign of zero"])
def test_chunks_not_laid_out_end_to_end_are_copied(case):
    from engine.wrapper import join_audio

    whole = np.arange(10, dtype=np.float32)
    chunks = {
        "head differs": [np.zeros(3, np.float32), whole[3:]],
        "gap": [whole[:3], whole[4:]],
        "out of order": [whole[5:], whole[:5]],
        "short of the end": [whole[:4], whole[4:9]],
        "reversed view": [whole[:5], whole[9:4:-1]],
        "other dtype": [whole[:5], whole[5:].view(np.int32)],
        "sign of zero": [-np.zeros(1, np.float32), whole[1:]],
    }[case]
    joined = join_audio(chunks)
    assert joined is not whole and not np.shares_memory(joined, whole)
    np.testing.assert_array_equal(joined, np.concatenate(chunks).astype(np.float32))
    assert np.signbit(joined).tolist() == np.signbit(np.concatenate(chunks)).tolist()


def test_generate_times_the_whole_call_with_the_join(joe_cpu, monkeypatch):
    """The benchmark reads `timings.total_s`: it must include joining the sentences, which ran
    after the stream's own clock had stopped (a chapter's join was 5 ms on the GPU host)."""
    import time

    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
    from engine import wrapper as wrapper_module

    join = wrapper_module.join_audio
    monkeypatch.setattr(wrapper_module, "join_audio", lambda chunks: (time.sleep(0.2), join(chunks))[1])
    wrapper = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), joe_cpu.device))
    timings = wrapper.generate("One. Two.").timings
    assert timings.total_s >= 0.2 and timings.model_s >= 0.2
    assert timings.total_s >= timings.model_s
