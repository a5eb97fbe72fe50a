"""The `tts-turbo` command line: files it writes, and bad input → specific message, exit 2, no file."""

import json
import shutil
import subprocess
import sys

import pytest
sf = pytest.importorskip("soundfile")

from engine.cli import main


def say(tmp_path, *args):
    return main(["say", *args])


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_say_writes_a_readable_file_at_the_voice_rate(tmp_path, ext):
    out = tmp_path / f"hello.{ext}"
    assert say(tmp_path, "Hello from TTS Turbo.", "-o", str(out), "--device", "cpu", "--seed", "1") == 0
    data, rate = sf.read(out)
    assert rate == 22050
    assert 0.8 < len(data) / rate < 4
    assert not list(tmp_path.glob(".*partial"))


def test_say_reads_stdin_and_honours_length_scale(tmp_path):
    exe = [sys.executable, "-m", "engine.cli", "say", "-", "--device", "cpu", "--noise-w", "0", "--noise-scale", "0"]
    slow, fast = tmp_path / "slow.wav", tmp_path / "fast.wav"
    for path, scale in ((slow, "1.5"), (fast, "0.75")):
        done = subprocess.run(exe + ["-o", str(path), "--length-scale", scale], input="Reading from standard input works.", capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "RTF" in done.stderr
    assert sf.info(slow).frames > 1.7 * sf.info(fast).frames


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "text is empty"),
        ("   \n\t  ", "text is empty"),
        ("\x00\x01\x07", "text is empty"),
        ("🙂 🎉 ★ ♥", "nothing speakable"),
        ("... !!! ???", "nothing speakable"),
    ],
)
def test_bad_text_exits_2_with_a_specific_message_and_no_file(tmp_path, capsys, text, message):
    out = tmp_path / "out.wav"
    assert say(tmp_path, text, "-o", str(out), "--device", "cpu") == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_control_characters_inside_text_are_cleaned(tmp_path):
    out = tmp_path / "ok.wav"
    assert say(tmp_path, "Hello\x00 there\x07, friend.", "-o", str(out), "--device", "cpu") == 0
    assert sf.info(out).frames > 0


def test_output_in_missing_directory(tmp_path, capsys):
    assert say(tmp_path, "Hello.", "-o", str(tmp_path / "nope" / "x.wav"), "--device", "cpu") == 2
    assert "output directory does not exist" in capsys.readouterr().err


def test_unsupported_output_format(tmp_path, capsys):
    assert say(tmp_path, "Hello.", "-o", str(tmp_path / "x.aiff"), "--device", "cpu") == 2
    assert "unsupported output format '.aiff'" in capsys.readouterr().err


def _voice_copy(tmp_path, joe_paths, onnx_bytes=None, with_json=True):
    onnx = tmp_path / "voice.onnx"
    if onnx_bytes is None:
        shutil.copy(joe_paths[0], onnx)
    else:
        onnx.write_bytes(onnx_bytes)
    if with_json:
        shutil.copy(joe_paths[1], tmp_path / "voice.onnx.json")
    return onnx


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, p: t / "missing.onnx", "voice file not found"),
        (lambda t, p: _voice_copy(t, p, b""), "voice file is empty (0 bytes)"),
        (lambda t, p: _voice_copy(t, p, p[0].read_bytes()[: 3_000_000]), "not a readable ONNX model"),
        (lambda t, p: _voice_copy(t, p, b"this is not a model at all" * 100), "not a readable ONNX model"),
        (lambda t, p: _voice_copy(t, p, with_json=False), "voice config not found"),
        (lambda t, p: t / "voice.txt", "not a Piper voice"),
    ],
)
def test_bad_voice_files_exit_2(tmp_path, capsys, joe_paths, make, message):
    voice_dir = tmp_path / "v"
    voice_dir.mkdir()
    voice = make(voice_dir, joe_paths)
    out = tmp_path / "out.wav"
    assert say(tmp_path, "Hello.", "--voice", str(voice), "-o", str(out), "--device", "cpu") == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_json_config(tmp_path, capsys, joe_paths):
    onnx = _voice_copy(tmp_path, joe_paths, with_json=False)
    (tmp_path / "voice.onnx.json").write_text("{not json")
    assert say(tmp_path, "Hello.", "--voice", str(onnx), "-o", str(tmp_path / "o.wav"), "--device", "cpu") == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_bad_options_exit_2(tmp_path, capsys):
    assert say(tmp_path, "Hello.", "-o", str(tmp_path / "o.wav"), "--length-scale", "0") == 2
    assert "length_scale must be > 0" in capsys.readouterr().err
    assert say(tmp_path, "Hello.", "-o", str(tmp_path / "o.wav"), "--speaker", "3", "--device", "cpu") == 2
    assert "speaker 3 does not exist" in capsys.readouterr().err
    assert say(tmp_path, "Hello.") == 2
    assert "give -o FILE and/or --play" in capsys.readouterr().err


def test_cuda_requested_without_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert say(tmp_path, "Hello.", "-o", str(tmp_path / "o.wav"), "--device", "cuda") == 2
    assert "CUDA was requested but this torch build cannot use a GPU" in capsys.readouterr().err


def test_huge_text_is_chunked_into_bounded_segments(joe_cpu):
    from engine.config import SynthesisOptions
    from engine.text.sentences import MAX_PHONEMES

    text = ("The rain in Spain stays mainly in the plain. " * 2500) + ("word " * 3000)
    assert len(text) > 100_000
    segments = joe_cpu.segment(text, SynthesisOptions())
    assert len(segments) > 2500
    assert max(len(s.tokens) for s in segments) <= 2 * MAX_PHONEMES + 3


def test_huge_text_streams_without_synthesizing_everything_first(joe_cpu):
    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper

    wrapper = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig(), "cpu"))
    stream = wrapper.stream("Short sentence here. " * 6000)
    first = next(stream)
    stream.close()
    assert first.index == 0 and first.count in (0, 6000)  # 0: the front end was still running


def test_doctor_json_reports_the_essentials(capsys):
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("torch_version", "cuda_version", "cuda_available", "gpu_name", "compute_capability", "arch_supported", "bf16_supported", "sdpa_backends", "triton_available", "physical_cores", "espeak_workers", "env"):
        assert key in report
    assert report["physical_cores"] >= 1


def test_doctor_explains_missing_rtx50_kernels():
    from engine.doctor import problems

    report = {
        "cuda_version": "12.4", "cuda_available": True, "triton_available": True, "packages": {"piper-tts": "1.8.0"},
        "arch_list": ["sm_80", "sm_86", "sm_90"],
        "devices": [{"index": 0, "name": "NVIDIA GeForce RTX 5090", "compute_capability": "12.0", "arch_supported": False}],
    }
    found = " ".join(problems(report))
    assert "no kernels in this torch build" in found and "CUDA 12.8 or newer" in found


def test_arch_support_reads_the_build_arch_list():
    from engine.runtime import _arch_supported

    assert _arch_supported(["sm_80", "sm_90", "sm_120"], 12, 0)
    assert not _arch_supported(["sm_75", "sm_80", "sm_86", "sm_90"], 12, 0)
    assert _arch_supported(["sm_80", "compute_90"], 12, 0), "PTX of an older arch JIT-compiles"


def test_models_list_and_offline_download(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("TTS_TURBO_CHATTERBOX_DIR", raising=False)
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "piper" in listing and "chatterbox-turbo" in listing and "not downloaded (missing: t3_cfg.safetensors" in listing
    assert main(["models", "download", "chatterbox"]) == 2
    assert "tts-turbo models download chatterbox" in capsys.readouterr().err


def test_play_without_audio_device_still_writes_the_file(tmp_path, capsys, monkeypatch):
    import engine.cli as cli

    def no_device(rate):
        raise RuntimeError("Error querying device -1")

    monkeypatch.setattr(cli, "_BlockingPlayer", no_device)
    out = tmp_path / "kept.wav"
    assert main(["say", "Hello.", "-o", str(out), "--play", "--device", "cpu"]) == 0
    assert out.exists() and "no usable audio output device" in capsys.readouterr().err
    assert main(["say", "Hello.", "--play", "--device", "cpu"]) == 2
