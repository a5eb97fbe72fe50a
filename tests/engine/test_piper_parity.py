"""Our PyTorch VITS against onnxruntime running the same voice .onnx on the same ids."""

import numpy as np
import pytest

from engine.config import SynthesisOptions
from engine.bench import parity_sentences, snr_db

SENTENCES = parity_sentences()


def _ort_session(path):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ort(session, ids, scales):
    out = session.run(None, {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64), "scales": np.array(scales, dtype=np.float32)})[0]
    return out.reshape(-1)


@pytest.fixture(scope="module")
def wrapper(joe_cpu):
    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper

    return OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), "cpu"))


def test_parity_with_onnxruntime_noise_off(joe_cpu, joe_paths, wrapper):
    session = _ort_session(joe_paths[0])
    options = SynthesisOptions(noise_scale=0.0, noise_w=0.0, normalize=False, sentence_silence=0.0)
    report = []
    for text in SENTENCES:
        for segment in joe_cpu.segment(text, options):
            ours = wrapper.generate(text, options, segments=[segment]).audio
            ref = _ort(session, segment.tokens, [0.0, 1.0, 0.0])
            snr = snr_db(ref, ours)
            report.append((len(segment.tokens), len(ref), len(ours), round(snr, 1)))
            assert len(ours) == len(ref), f"sample count differs for {segment.text!r}"
            assert snr >= 50, f"SNR {snr:.1f} dB for {segment.text!r}"
    print("\nparity (ids, ORT samples, ours, SNR dB):", *report, sep="\n  ")


def test_length_scale_matches_onnxruntime(joe_cpu, joe_paths, wrapper):
    session = _ort_session(joe_paths[0])
    text = SENTENCES[2]
    for length_scale in (0.7, 1.4):
        options = SynthesisOptions(noise_scale=0.0, noise_w=0.0, normalize=False, length_scale=length_scale, sentence_silence=0.0)
        segments = joe_cpu.segment(text, options)
        ours = wrapper.generate(text, options, segments=segments).audio
        ref = np.concatenate([_ort(session, s.tokens, [0.0, length_scale, 0.0]) for s in segments])
        assert len(ours) == len(ref)
        assert snr_db(ref, ours) >= 50


def _voiced_ratio(audio, sr):
    frame = int(0.02 * sr)
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    zcr = (np.abs(np.diff(np.sign(frames), axis=1)) > 0).mean(axis=1)
    loud = rms > 0.05 * rms.max()
    return loud.mean(), np.median(zcr[loud]), 20 * np.log10(np.percentile(rms, 95) / max(np.percentile(rms, 5), 1e-6))


def test_default_noise_is_speech_of_piper_length(joe_cpu, joe_paths, wrapper):
    session = _ort_session(joe_paths[0])
    cfg = joe_cpu.config
    ours_total = ref_total = 0
    for seed, text in enumerate(SENTENCES[1:]):
        options = SynthesisOptions(seed=seed, sentence_silence=0.0)
        segments = joe_cpu.segment(text, options)
        audio = wrapper.generate(text, options, segments=segments).audio
        ours_total += len(audio)
        ref_total += sum(len(_ort(session, s.tokens, [cfg.noise_scale, cfg.length_scale, cfg.noise_w])) for s in segments)
        voiced, zcr, dynamic_db = _voiced_ratio(audio, joe_cpu.sample_rate)
        assert 0.3 < voiced < 0.98, "speech has pauses and voiced frames"
        assert zcr < 0.3, "voiced frames are periodic, not white noise"
        assert dynamic_db > 20, "speech has a dynamic range; noise or silence does not"
    assert abs(ours_total / ref_total - 1) < 0.08, f"length {ours_total} vs piper {ref_total}"


def test_seed_makes_noise_reproducible(joe_cpu, wrapper):
    a = wrapper.generate("Same seed, same voice.", seed=7).audio
    b = wrapper.generate("Same seed, same voice.", seed=7).audio
    c = wrapper.generate("Same seed, same voice.", seed=8).audio
    assert np.array_equal(a, b)
    assert not (len(a) == len(c) and np.array_equal(a, c))
