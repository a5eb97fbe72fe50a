"""The engine worker: a QObject living on its own QThread that owns the model, optimizer and graphs.

It is the only app module that touches torch or `engine` (imported lazily, on the worker thread, so
the window appears before torch has loaded). Requests arrive as queued signals carrying plain dicts;
results leave as signals. It never touches a widget. Each synthesis request carries the full
snapshot it needs (voice, device, config, options), so a compare run or a toggle change simply
re-optimizes when the snapshot differs from what is loaded.

`cancel_through()` and `cancel_download()` are the methods called directly from the GUI thread:
they only set a `threading.Event`, which the engine checks at every sentence boundary and the
Chatterbox download at every progress update.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import shutil
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from .capabilities import CHATTERBOX_VOICES

log = logging.getLogger("tts_turbo.worker")


@dataclass
class EngineBackend:
    """The engine entry points the worker uses; tests substitute a fake with the same shape."""

    load_model: Callable[..., Any]
    optimizer_class: Callable[..., Any]
    wrapper_class: Callable[..., Any]
    config_class: Any
    options_class: Any
    device_info: Callable[[], dict]
    memory_snapshot: Callable[[str], dict]
    available_formats: Callable[[], Any]
    cancelled_error: type[BaseException]
    engine_error: type[BaseException]
    chatterbox_status: Callable[..., dict] | None = None
    """`checkpoint_status(variant=...)`: {ready, path, missing}, no network."""
    chatterbox_download: Callable[..., Any] | None = None
    """`download(progress=callback(done, total), variant=...)`: the checkpoint folder, or raises."""


def load_engine_backend() -> EngineBackend:
    """Import the real engine (and torch). Runs on the worker thread."""
    runtime = importlib.import_module("engine.runtime")
    runtime.configure_environment()
    engine = importlib.import_module("engine")
    errors = importlib.import_module("engine.errors")
    audio_io = importlib.import_module("engine.audio_io")
    try:
        chatterbox = importlib.import_module("engine.models.chatterbox")
    except ImportError:
        chatterbox = None
    return EngineBackend(
        load_model=engine.load_model,
        optimizer_class=engine.AdvancedTTSOptimizer,
        wrapper_class=engine.OptimizedTTSWrapper,
        config_class=engine.OptimizationConfig,
        options_class=engine.SynthesisOptions,
        device_info=runtime.device_info,
        memory_snapshot=runtime.memory_snapshot,
        available_formats=audio_io.available_formats,
        cancelled_error=errors.SynthesisCancelled,
        engine_error=errors.TTSError,
        chatterbox_status=getattr(chatterbox, "checkpoint_status", None),
        chatterbox_download=getattr(chatterbox, "download", None),
    )


class DownloadCancelled(Exception):
    """Raised from the progress callback: the only way to stop a hub download part-way."""


class EngineWorker(QObject):
    engine_ready = Signal(dict)
    """{'device_info', 'presets': {'cpu': cfg, 'cuda': cfg}, 'formats', 'chatterbox': {spec: status}}"""
    engine_unavailable = Signal(str, str)
    phase_changed = Signal(str, str)
    """(phase, message): phase is 'loading', 'optimizing', 'synthesizing' or 'idle'."""
    voice_loaded = Signal(dict)
    optimized = Signal(dict)
    chunk_ready = Signal(int, object, int, int, int)
    """(request id, float32 audio, sample rate, chunk index, chunk count or 0 while a long text is still being phonemized)"""
    synthesis_finished = Signal(int, dict)
    synthesis_cancelled = Signal(int)
    request_failed = Signal(int, str, str)
    """(request id or 0, user message, details)"""
    memory_sampled = Signal(float, dict)
    download_progress = Signal(str, int, int)
    """(Chatterbox spec, done, total) while its checkpoint downloads."""
    download_finished = Signal(str, dict, str)
    """(spec, its checkpoint status afterwards, '' on success / 'cancelled' / the error message)"""

    def __init__(
        self,
        backend_loader: Callable[[], EngineBackend] = load_engine_backend,
        memory_interval_s: float = 0.1,
    ) -> None:
        super().__init__()
        self._backend_loader = backend_loader
        self._memory_interval_s = memory_interval_s
        self._backend: EngineBackend | None = None
        self._cancel = threading.Event()
        self._cancel_lock = threading.Lock()
        self._cancelled_through = 0
        self._stop_sampling = threading.Event()
        self._download_cancel = threading.Event()
        self._download: threading.Thread | None = None
        self._sampler: threading.Thread | None = None
        self._model = None
        self._model_key: tuple[str, str] | None = None
        self._optimizer = None
        self._wrapper = None
        self._config: dict[str, Any] | None = None
        self._device = "cpu"

    def cancel_through(self, request_id: int) -> None:
        """Thread-safe: cancel the running request and every queued one with an id <= request_id."""
        with self._cancel_lock:
            self._cancelled_through = max(self._cancelled_through, request_id)
            self._cancel.set()

    def cancel_download(self) -> None:
        """Thread-safe: stop the Chatterbox download at its next progress update."""
        self._download_cancel.set()

    @Slot()
    def start(self) -> None:
        self.phase_changed.emit("loading", "Loading the engine (torch)…")
        try:
            self._backend = self._backend_loader()
            info = self._backend.device_info()
        except Exception as exc:  # a broken install must show up in the banner, not kill the app
            self.engine_unavailable.emit(f"The TTS engine could not be loaded: {exc}", traceback.format_exc())
            self.phase_changed.emit("idle", "Engine unavailable")
            return
        info["compiler_available"] = any(shutil.which(c) for c in ("cc", "gcc", "clang", "cl"))
        self.engine_ready.emit(
            {
                "device_info": info,
                "presets": self._presets(info),
                "formats": list(self._backend.available_formats()),
                "chatterbox": self._chatterbox_status(),
            }
        )
        self._start_sampler()
        self.phase_changed.emit("idle", "Ready")

    @Slot(dict)
    def prepare(self, job: dict) -> None:
        """Load the voice and (re)optimize ahead of the next Speak, so a toggle shows its cost now."""
        if self._backend is None:
            return
        try:
            self._ensure(job["voice"], job["device"], job["config"])
        except Exception as exc:
            self._fail(0, exc)
        finally:
            self.phase_changed.emit("idle", "Ready")

    @Slot(dict)
    def synthesize(self, job: dict) -> None:
        request_id = job["id"]
        if self._backend is None:
            self.request_failed.emit(request_id, "The TTS engine is not available.", "")
            return
        if not self._begin(request_id):
            self.synthesis_cancelled.emit(request_id)
            return
        try:
            self._ensure(job["voice"], job["device"], job["config"])
            result = self._generate(job)
        except self._backend.cancelled_error:
            self.synthesis_cancelled.emit(request_id)
        except Exception as exc:
            self._fail(request_id, exc)
        else:
            self.synthesis_finished.emit(request_id, result)
        finally:
            self.phase_changed.emit("idle", "Ready")

    @Slot(str)
    def download_chatterbox(self, spec: str) -> None:
        """Fetch a Chatterbox checkpoint on its own thread: gigabytes must not hold up synthesis."""
        if self._download is not None and self._download.is_alive():
            return
        self._download_cancel.clear()
        self._download = threading.Thread(
            target=self._run_download, args=(spec,), name="chatterbox-download", daemon=True
        )
        self._download.start()

    @Slot()
    def shutdown(self) -> None:
        """Stop sampling and downloading and free the model; runs on the worker thread before it quits."""
        self._stop_sampling.set()
        self._download_cancel.set()
        for thread in (self._sampler, self._download):
            if thread is not None:
                thread.join(timeout=2)
        self._release()

    def _begin(self, request_id: int) -> bool:
        with self._cancel_lock:
            if request_id <= self._cancelled_through:
                return False
            self._cancel.clear()
            return True

    def _ensure(self, voice: str, device: str, config: dict[str, Any]) -> None:
        """Load the voice if voice/device changed; re-optimize if the config snapshot changed.

        `optimize_model` re-applies a config from the model's fp32 reference state, so a toggle
        change re-optimizes the loaded model instead of reloading it.
        """
        backend = self._backend
        key = (voice, device)
        if key != self._model_key:
            name = "the bundled voice" if voice in ("", "default") else Path(voice).stem
            self.phase_changed.emit("loading", f"Loading {name} ({device})…")
            self._release()
            self._model = backend.load_model(None if voice in ("", "default") else voice, device)
            self._model_key = key
            self._device = str(self._model.device)
            self.voice_loaded.emit({**_plain(self._model.describe()), "device": self._device, "spec": voice})
        if config != self._config:
            self.phase_changed.emit("optimizing", "Optimizing… (warm-up and capture)")
            started = time.perf_counter()
            if self._optimizer is not None:
                self._optimizer.clear_caches()
            self._config = None
            self._optimizer = backend.optimizer_class(backend.config_class.from_dict(config), device=self._model.device)
            self._optimizer.optimize_model(self._model)
            self._wrapper = backend.wrapper_class(self._model, self._optimizer)
            self._config = dict(config)
            stats = _plain(self._optimizer.get_stats())
            stats["optimize_s"] = time.perf_counter() - started
            self.optimized.emit(stats)

    def _release(self) -> None:
        if self._optimizer is not None:
            self._optimizer.clear_caches()
        self._model = self._optimizer = self._wrapper = None
        self._model_key = self._config = None

    def _generate(self, job: dict) -> dict[str, Any]:
        request_id = job["id"]
        self.phase_changed.emit("synthesizing", "Synthesizing…")

        def on_chunk(chunk) -> None:
            self.chunk_ready.emit(request_id, chunk.audio, chunk.sample_rate, chunk.index, chunk.count)
            of = f" of {chunk.count}" if chunk.count else ""  # 0: a long text's front end is still running
            self.phase_changed.emit("synthesizing", f"Synthesizing sentence {chunk.index + 1}{of}…")

        options = self._backend.options_class(**job.get("options", {}))
        result = self._wrapper.generate(job["text"], options=options, cancel=self._cancel, on_chunk=on_chunk)
        stats = _plain(self._optimizer.get_stats())
        return {
            "audio": _owned(result.audio),
            "sample_rate": result.sample_rate,
            "timings": _timings(result.timings),
            "device": str(result.device),
            "config_summary": result.config_summary,
            "peak_vram_bytes": int(result.peak_vram_bytes or 0),
            "fallbacks": list(stats.get("fallbacks", [])),
            "label": job.get("label", ""),
        }

    def _fail(self, request_id: int, exc: Exception) -> None:
        expected = isinstance(exc, (self._backend.engine_error, ValueError)) if self._backend else False
        message = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        log.warning("request %s failed: %s", request_id, message)
        self.request_failed.emit(request_id, message, traceback.format_exc())

    def _presets(self, info: dict[str, Any]) -> dict[str, dict[str, Any]]:
        cfg = self._backend.config_class
        gpu = (info.get("devices") or [{}])[0]
        return {
            "unoptimized": cfg.unoptimized().to_dict(),
            "cpu": cfg.max_speed(cuda=False, bf16_supported=bool(info.get("cpu_bf16"))).to_dict(),
            "cuda": cfg.max_speed(cuda=True, bf16_supported=bool(gpu.get("bf16"))).to_dict(),
        }

    def _chatterbox_status(self) -> dict[str, dict[str, Any]]:
        return {spec: self._variant_status(variant) for spec, variant in CHATTERBOX_VOICES.items()}

    def _variant_status(self, variant: str) -> dict[str, Any]:
        if self._backend is None or self._backend.chatterbox_status is None:
            return {"ready": False, "path": None, "missing": ["the Chatterbox engine is not installed"]}
        try:
            return _plain(self._backend.chatterbox_status(variant=variant))
        except Exception as exc:  # status probing must never stop the engine from starting
            return {"ready": False, "path": None, "missing": [str(exc)]}

    def _run_download(self, spec: str) -> None:
        variant = CHATTERBOX_VOICES[spec]
        cancel = self._download_cancel

        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise DownloadCancelled("cancelled")
            self.download_progress.emit(spec, int(done), int(total))

        outcome = ""
        try:
            if self._backend is None or self._backend.chatterbox_download is None:
                raise RuntimeError("The Chatterbox engine is not installed.")
            self._backend.chatterbox_download(progress=progress, variant=variant)
        except Exception as exc:  # offline, HTTP, disk, cancel: reported in the panel, never fatal
            outcome = "cancelled" if cancel.is_set() else str(exc) or type(exc).__name__
            log.warning("%s download did not finish: %s", spec, outcome)
        try:
            self.download_finished.emit(spec, self._variant_status(variant), outcome)
        except RuntimeError:  # the worker object is gone: the app is closing
            return

    def _start_sampler(self) -> None:
        """VRAM/RSS at ~10 Hz on a plain thread, so samples keep coming while a synthesis blocks this one."""
        import psutil

        process = psutil.Process()

        def sample() -> None:
            while not self._stop_sampling.wait(self._memory_interval_s):
                try:
                    snapshot = dict(self._backend.memory_snapshot(self._device))
                except Exception:  # a device being torn down mid-sample: skip this tick
                    continue
                snapshot["rss"] = process.memory_info().rss
                try:
                    self.memory_sampled.emit(time.monotonic(), snapshot)
                except RuntimeError:  # the worker object is gone: the app is closing
                    return

        self._sampler = threading.Thread(target=sample, name="memory-sampler", daemon=True)
        self._sampler.start()


def _owned(audio: Any) -> Any:
    """`audio` in memory of its own: the engine may hand out an array over a tensor's memory (a
    lone sentence's audio lies in the page-locked block it was copied to), which the run history
    would otherwise keep locked, up to its 100 runs. Arrays numpy owns pass as they are."""
    root = audio
    while isinstance(root.base, np.ndarray):
        root = root.base
    return audio if root.base is None else audio.copy()


def _timings(timings: Any) -> dict[str, Any]:
    """Timings as a dict including the derived rtf / x_realtime (properties, not dataclass fields)."""
    values = timings.as_dict() if hasattr(timings, "as_dict") else _plain(timings)
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else 0.0) for k, v in values.items()}


def _plain(value: Any) -> Any:
    """Dataclasses and objects → dicts, so results cross the thread boundary as plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "shape"):
        return value
    return str(value)
