"""Test doubles: a fake engine backend with the contract's shape, and a fake audio output stream."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from app.engine_worker import EngineBackend


class FakeEngineError(Exception):
    pass


class FakeCancelled(FakeEngineError):
    pass


@dataclass
class FakeConfig:
    values: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FakeConfig":
        return cls(dict(data))

    def summary(self) -> str:
        on = [k.removeprefix("enable_") for k, v in self.values.items() if v is True and k.startswith("enable_")]
        return "+".join(on) or "fp32 eager"


@dataclass
class FakeEngine:
    """Synthesizes tones: one chunk per sentence, `sentence_delay_s` each, cancel checked between."""

    sample_rate: int = 16000
    sentence_delay_s: float = 0.01
    optimize_delay_s: float = 0.0
    configs: list[dict[str, Any]] = field(default_factory=list)
    loads: list[tuple[str, str]] = field(default_factory=list)
    options: list[Any] = field(default_factory=list)
    """The SynthesisOptions each generate() received."""
    chatterbox: dict[str, dict[str, Any]] | None = None
    """variant → checkpoint status; None: no Chatterbox engine in this backend."""
    download_error: Exception | None = None
    """Raised by the fake Chatterbox download after its first progress report."""
    download_step_s: float = 0.0

    def backend(self) -> EngineBackend:
        from app.config_schema import load_schema

        defaults = load_schema().defaults()
        config_class = SimpleNamespace(
            from_dict=FakeConfig.from_dict,
            unoptimized=lambda: FakeConfig({**defaults, "enable_tf32": False, "shape_buckets": False}),
            max_speed=lambda cuda, bf16_supported=False, triton=False: FakeConfig(
                {**defaults, "enable_flash_attention": True, "batch_preprocessing": True, "enable_fp16": cuda}
            ),
        )
        for name in ("unoptimized", "max_speed"):
            original = getattr(config_class, name)
            setattr(config_class, name, _with_to_dict(original))
        return EngineBackend(
            load_model=self.load_model,
            optimizer_class=lambda config, device: FakeOptimizer(self, config),
            wrapper_class=lambda model, optimizer: FakeWrapper(self, optimizer),
            config_class=config_class,
            options_class=lambda **kw: SimpleNamespace(**kw),
            device_info=lambda: {
                "torch_version": "0.0-fake",
                "cuda_version": None,
                "cuda_available": False,
                "devices": [],
                "triton_available": False,
                "physical_cores": 2,
            },
            memory_snapshot=lambda device: {"allocated": 0, "reserved": 0, "peak": 0},
            available_formats=lambda: ["WAV", "FLAC", "OGG"],
            cancelled_error=FakeCancelled,
            engine_error=FakeEngineError,
            chatterbox_status=self.chatterbox_status if self.chatterbox is not None else None,
            chatterbox_download=self.chatterbox_download if self.chatterbox is not None else None,
        )

    def chatterbox_status(self, path=None, cache_dir=None, variant="standard") -> dict[str, Any]:
        return dict(self.chatterbox[variant])

    def chatterbox_download(self, progress=None, cache_dir=None, variant="standard") -> Path:
        """Ten progress steps of 1 MB (a progress callback may raise to cancel), then the files are there."""
        for step in range(1, 11):
            time.sleep(self.download_step_s)
            progress(step * 1_000_000, 10_000_000)
            if self.download_error is not None:
                raise self.download_error
        self.chatterbox[variant] = {"ready": True, "path": f"/fake/{variant}", "missing": []}
        return Path(f"/fake/{variant}")

    def load_model(self, spec, device):
        if spec and str(spec).endswith("missing.onnx"):
            raise FakeEngineError(f"voice file not found: {spec}")
        self.loads.append((spec, device))
        family = "chatterbox" if str(spec).startswith("chatterbox") else "fake"
        return SimpleNamespace(
            device="cpu",
            sample_rate=self.sample_rate,
            describe=lambda: {"family": family, "name": "tone", "num_speakers": 1, "defaults": {}},
        )


def _with_to_dict(factory):
    def make(*args, **kwargs):
        config = factory(*args, **kwargs)
        config.to_dict = lambda: dict(config.values)
        return config

    return make


class FakeOptimizer:
    def __init__(self, engine: FakeEngine, config: FakeConfig) -> None:
        self.engine = engine
        self.config = config

    def optimize_model(self, model) -> None:
        self.engine.configs.append(dict(self.config.values))
        time.sleep(self.engine.optimize_delay_s)

    def get_stats(self) -> dict[str, Any]:
        return {"config": self.config.values, "precision": {"decoder": "float32"}, "fallbacks": []}

    def clear_caches(self) -> None:
        return None


class FakeWrapper:
    def __init__(self, engine: FakeEngine, optimizer: FakeOptimizer) -> None:
        self.engine = engine
        self.optimizer = optimizer

    def generate(self, text, options=None, cancel=None, on_chunk=None):
        self.engine.options.append(options)
        if "FAIL" in text:
            raise FakeEngineError("the fake engine was told to fail")
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
        rate = self.engine.sample_rate
        started = time.perf_counter()
        pieces = []
        for index, sentence in enumerate(sentences):
            if cancel is not None and cancel.is_set():
                raise FakeCancelled("cancelled")
            time.sleep(self.engine.sentence_delay_s)
            n = int(rate * 0.05 * max(len(sentence.split()), 1))
            audio = (0.3 * np.sin(np.arange(n) * (2 * np.pi * (200 + 40 * index) / rate))).astype(np.float32)
            pieces.append(audio)
            if on_chunk is not None:
                chunk = SimpleNamespace(audio=audio, sample_rate=rate, index=index, count=len(sentences), text=sentence)
                on_chunk(chunk)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        total = time.perf_counter() - started
        audio_s = len(audio) / rate
        return SimpleNamespace(
            audio=audio,
            sample_rate=rate,
            device="cpu",
            config_summary=self.optimizer.config.summary(),
            peak_vram_bytes=0,
            timings={
                "total_s": total,
                "audio_s": audio_s,
                "rtf": total / audio_s if audio_s else 0.0,
                "x_realtime": audio_s / total if total else 0.0,
                "first_audio_s": total / max(len(sentences), 1),
                "stages": {"phonemize": total * 0.1, "encoder": total * 0.2, "decoder": total * 0.7},
            },
        )


def fake_backend(**kwargs) -> EngineBackend:
    return FakeEngine(**kwargs).backend()


class FakeStream:
    """Drives the player's callback like PortAudio would: fixed blocks, optionally paced in real time."""

    def __init__(self, sample_rate, fill, on_finished, blocksize=512, realtime=True, speed=1.0) -> None:
        self.sample_rate = sample_rate
        self.fill = fill
        self.on_finished = on_finished
        self.blocksize = blocksize
        self.realtime = realtime
        self.speed = speed
        self.blocks: list[np.ndarray] = []
        self.aborted = False
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def abort(self) -> None:
        self.aborted = True
        self._stop.set()

    def close(self) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def played(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)

    def _run(self) -> None:
        period = self.blocksize / self.sample_rate / self.speed
        next_time = time.perf_counter()
        while not self._stop.is_set():
            out = np.empty((self.blocksize, 1), np.float32)
            done = self.fill(out, False)
            self.blocks.append(out[:, 0].copy())
            if done:
                break
            if self.realtime:
                next_time += period
                time.sleep(max(0.0, next_time - time.perf_counter()))
            else:
                time.sleep(0)
        self.finished.set()
        self.on_finished()
