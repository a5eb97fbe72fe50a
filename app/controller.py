"""The controller between the views and the engine worker.

It holds the user's choices (voice, device, config, synthesis options), turns them into
self-contained request snapshots for the worker, routes streamed chunks into playback and the
waveform, and turns finished results into history records and plot points. It imports neither
torch nor `engine`: the worker is the only place that does.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal

from . import capabilities as caps
from .config_schema import load_schema
from .engine_worker import EngineWorker, load_engine_backend
from .metrics import LiveMetrics, RunHistory, RunRecord
from .playback import PlaybackUnavailable, StreamFactory, StreamPlayer, output_devices, probe_output
from .settings import AppSettings
from .tasks import BackgroundTasks

log = logging.getLogger("tts_turbo.app")

DEFAULT_OPTIONS = {
    "speaker_id": 0,
    "length_scale": 1.0,
    "noise_scale": 0.667,
    "noise_w": 0.8,
    "sentence_silence": 0.2,
    "normalize": True,
    "volume": 1.0,
}


class Controller(QObject):
    engine_ready = Signal(dict)
    phase_changed = Signal(str, str)
    voice_loaded = Signal(dict)
    optimizer_stats = Signal(dict)
    reasons_changed = Signal(dict)
    run_added = Signal(object)
    compare_finished = Signal(object, object)
    history_cleared = Signal()
    live_audio_started = Signal(int)
    """A new utterance began streaming (its sample rate); the waveform resets."""
    error = Signal(str, str)
    notice = Signal(str)
    playback_lost = Signal(str)
    """The output device refused a stream: playback is off from now on (export still works)."""
    catalog_loaded = Signal(list)
    catalog_failed = Signal(str)
    download_progress = Signal(str, int, int)
    download_finished = Signal(str, str)
    voices_changed = Signal(list)
    voice_changed = Signal(str)
    """The voice in use (after a choice, accepted or refused): the picker and knob groups resync."""
    chatterbox_changed = Signal(dict)
    """{spec: checkpoint status} for the listed Chatterbox voices."""
    chatterbox_missing = Signal(str, dict)
    """(spec, status): a not-downloaded Chatterbox was chosen; the panel offers Download."""
    chatterbox_download_progress = Signal(str, int, int)
    chatterbox_download_finished = Signal(str, str)
    """(spec, '' on success / 'cancelled' / the error message)"""
    _request_prepare = Signal(dict)
    _request_synthesis = Signal(dict)
    _request_download = Signal(str)
    _request_shutdown = Signal()
    """Queued to the worker thread: the only way the GUI asks the engine for work."""

    def __init__(
        self,
        settings: AppSettings | None = None,
        backend_loader=load_engine_backend,
        stream_factory: StreamFactory | None = None,
        prepare_delay_ms: int = 250,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.schema = load_schema()
        self.history = RunHistory()
        self.metrics = LiveMetrics()
        self.player = StreamPlayer(stream_factory)
        self.playback_unavailable = None if stream_factory else probe_output()
        self.tasks = BackgroundTasks(self)
        self._downloads_cancel = threading.Event()
        self.device_info: dict[str, Any] | None = None
        self.presets: dict[str, dict[str, Any]] = {}
        self.formats: list[str] = ["WAV", "FLAC", "OGG"]
        self.chatterbox: dict[str, dict[str, Any]] = {}
        """{spec: checkpoint status}; empty until the engine has checked."""
        self.engine_available = False
        self.live_chunks: list[np.ndarray] = []
        self.live_sample_rate = 0
        self._load_state()
        self._pending: dict[int, dict[str, Any]] = {}
        self._compare: dict[str, RunRecord] = {}
        self._latest_id = 0
        self._stream_id = 0
        self._prepare_timer = _single_shot_timer(self, prepare_delay_ms)
        self._prepare_timer.timeout.connect(self._send_prepare)
        self._start_worker(backend_loader)
        self.tasks.finished.connect(self._task_finished)
        self.tasks.failed.connect(self._task_failed)
        self.tasks.progress.connect(self._task_progress)

    # ----- state -------------------------------------------------------------------------------

    def _load_state(self) -> None:
        s = self.settings
        self.voice: str = s.json_value("voice", "default")
        self.recent_voices: list[str] = [v for v in s.json_value("recent_voices", []) if isinstance(v, str)]
        self.device_choice: str = s.json_value("device", "auto")
        saved_config = s.json_value("config", None)
        self.config_is_default = saved_config is None
        self.config: dict[str, Any] = {**self.schema.defaults(), **(saved_config or {})}
        self.options: dict[str, Any] = {**DEFAULT_OPTIONS, **s.json_value("options", {})}
        self.chatterbox_options: dict[str, Any] = {**caps.CHATTERBOX_DEFAULTS, **s.json_value("chatterbox_options", {})}
        self.autoplay: bool = bool(s.json_value("autoplay", True))
        self.player.device = s.json_value("output_device", None)

    def save_state(self) -> None:
        s = self.settings
        s.set_json("voice", self.voice)
        s.set_json("recent_voices", self.recent_voices[:10])
        s.set_json("device", self.device_choice)
        s.set_json("config", self.config)
        s.set_json("options", self.options)
        s.set_json("chatterbox_options", self.chatterbox_options)
        s.set_json("autoplay", self.autoplay)
        s.set_json("output_device", self.player.device)
        s.sync()

    @property
    def reasons(self) -> dict[str, str]:
        return caps.unavailable_reasons(self.device_info, self.device_choice)

    @property
    def voice_variant(self) -> str | None:
        """'standard' / 'turbo' while a Chatterbox voice is in use, None for Piper."""
        return caps.chatterbox_variant(self.voice)

    def effective_config(self) -> dict[str, Any]:
        return caps.applicable_config(self.config, self.reasons)

    def preset_configs(self) -> dict[str, dict[str, Any]]:
        """Preset name → config as it applies to the selected device (empty until the engine reports)."""
        if not self.presets:
            return {}
        device = caps.resolve_device(self.device_info, self.device_choice)
        max_speed = self.presets["cuda" if device.startswith("cuda") else "cpu"]
        reasons = self.reasons
        return {
            caps.PRESET_UNOPTIMIZED: caps.applicable_config(self.presets["unoptimized"], reasons),
            caps.PRESET_MAX_SPEED: caps.applicable_config(max_speed, reasons),
        }

    # ----- worker ------------------------------------------------------------------------------

    def _start_worker(self, backend_loader) -> None:
        self.thread = QThread(self)
        self.thread.setObjectName("engine-worker")
        self.worker = EngineWorker(backend_loader)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.start)
        self._request_prepare.connect(self.worker.prepare)
        self._request_synthesis.connect(self.worker.synthesize)
        self._request_download.connect(self.worker.download_chatterbox)
        # blocking, so the worker has released the model and joined its sampler before quit()
        self._request_shutdown.connect(self.worker.shutdown, Qt.BlockingQueuedConnection)
        w = self.worker
        w.engine_ready.connect(self._on_engine_ready)
        w.engine_unavailable.connect(self._on_engine_unavailable)
        w.phase_changed.connect(self.phase_changed)
        w.voice_loaded.connect(self.voice_loaded)
        w.optimized.connect(self._on_optimized)
        w.chunk_ready.connect(self._on_chunk)
        w.synthesis_finished.connect(self._on_finished)
        w.synthesis_cancelled.connect(self._on_cancelled)
        w.request_failed.connect(self._on_failed)
        w.memory_sampled.connect(self.metrics.add_memory)
        w.download_progress.connect(self.chatterbox_download_progress)
        w.download_finished.connect(self._on_chatterbox_downloaded)
        self.thread.start()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel work, stop playback, stop the worker thread. True when the thread has ended."""
        self._prepare_timer.stop()
        self.worker.cancel_through(self._latest_id)
        self.player.stop()
        self.save_state()
        if self.thread.isRunning():
            self._request_shutdown.emit()
            self.thread.quit()
            finished = self.thread.wait(timeout_ms)  # cancellation lands at the next sentence or batch
            if not finished:
                log.error("the engine worker did not stop within %.0f s", timeout_ms / 1000)
        else:
            finished = True
        self._downloads_cancel.set()
        self.tasks.shutdown()
        return finished

    def _on_engine_ready(self, payload: dict) -> None:
        self.engine_available = True
        self.device_info = payload["device_info"]
        self.presets = payload["presets"]
        self.formats = [f.lstrip(".").upper() for f in payload.get("formats") or self.formats]
        self.chatterbox = payload.get("chatterbox") or self.chatterbox
        if self.config_is_default:
            self.config = dict(self.preset_configs()[caps.PRESET_MAX_SPEED])  # first run: show what it can do
        self.engine_ready.emit(payload)
        self.chatterbox_changed.emit(self.chatterbox)
        missing, status = self.voice, self.chatterbox.get(self.voice)
        if status is not None and not status.get("ready"):
            # the saved voice's checkpoint is gone: speak with the bundled voice and offer the download
            self.voice = "default"
            self.voice_changed.emit(self.voice)
            self.chatterbox_missing.emit(missing, status)
        self.reasons_changed.emit(self.reasons)
        self._send_prepare()

    def _on_engine_unavailable(self, message: str, details: str) -> None:
        self.error.emit(message, details)

    def _on_optimized(self, stats: dict) -> None:
        for fallback in stats.get("fallbacks", []):
            log.warning("optimizer fallback: %s", fallback)
        self.optimizer_stats.emit(stats)

    # ----- user intents ------------------------------------------------------------------------

    def set_voice(self, spec: str) -> None:
        """Use `spec`, unless it is a Chatterbox that is not downloaded or a folder with no checkpoint."""
        if spec == self.voice:
            return
        if self._refuse_voice(spec):
            self.voice_changed.emit(self.voice)  # the picker goes back to the voice still in use
            return
        self.voice = spec
        if spec not in ("default", *caps.CHATTERBOX_VOICES) and spec not in self.recent_voices:
            self.recent_voices.insert(0, spec)
            self.voices_changed.emit(self.recent_voices)
        self.voice_changed.emit(spec)
        self._schedule_prepare()

    def _refuse_voice(self, spec: str) -> bool:
        if spec in caps.CHATTERBOX_VOICES:
            status = self.chatterbox.get(spec)
            if status is None:
                self.notice.emit("Still checking which Chatterbox models are downloaded; try again in a moment.")
                return True
            if not status.get("ready"):
                self.chatterbox_missing.emit(spec, status)
                return True
            return False
        if Path(spec).is_dir() and caps.chatterbox_variant(spec) is None:
            files = " or ".join(caps.CHATTERBOX_T3_FILES.values())
            self.notice.emit(f"{Path(spec).name} is not a Chatterbox checkpoint folder: it has no {files}.")
            return True
        return False

    def set_device(self, choice: str) -> None:
        if choice == self.device_choice:
            return
        self.device_choice = choice
        self.reasons_changed.emit(self.reasons)
        self._schedule_prepare()

    def set_config(self, config: dict[str, Any]) -> None:
        self.config_is_default = False
        if config == self.config:
            return
        self.config = dict(config)
        self._schedule_prepare()

    def set_options(self, options: dict[str, Any]) -> None:
        self.options = {**self.options, **options}

    def set_chatterbox_options(self, options: dict[str, Any]) -> None:
        self.chatterbox_options = {**self.chatterbox_options, **options}

    def download_chatterbox(self, spec: str) -> None:
        """Fetch a Chatterbox checkpoint on the worker's download thread; the voice switches when it lands."""
        self._request_download.emit(spec)

    def cancel_chatterbox_download(self) -> None:
        self.worker.cancel_download()

    def set_autoplay(self, enabled: bool) -> None:
        self.autoplay = enabled
        if not enabled:
            self.player.stop()

    def set_output_device(self, device: int | None) -> None:
        self.player.stop()
        self.player.device = device

    def output_devices(self) -> list[tuple[int, str]]:
        return [] if self.playback_unavailable else output_devices()

    def speak(self, text: str) -> int:
        """Queue a synthesis of `text` with the current snapshot; returns its request id."""
        text = text.strip()
        if not text:
            self.notice.emit("Nothing to speak: type or paste some text first.")
            return 0
        self.player.stop()
        request_id = self._submit(text, self.effective_config(), label="")
        self._stream_id = request_id
        return request_id

    def compare(self, text: str, config_a: dict[str, Any], config_b: dict[str, Any]) -> tuple[int, int]:
        """Run the same text under A then B; `compare_finished` fires with both records."""
        text = text.strip()
        if not text:
            self.notice.emit("Nothing to compare: type or paste some text first.")
            return 0, 0
        self._compare.clear()
        reasons = self.reasons
        a = self._submit(text, caps.applicable_config(config_a, reasons), label="A")
        b = self._submit(text, caps.applicable_config(config_b, reasons), label="B")
        return a, b

    def stop(self) -> None:
        """Esc: cancel the running and queued syntheses and silence playback."""
        self.worker.cancel_through(self._latest_id)
        self.player.stop()

    def replay(self, run_id: int) -> None:
        record = self.history.get(run_id)
        if record is not None:
            self._play(record.audio, record.sample_rate)

    def stop_playback(self) -> None:
        self.player.stop()

    def clear_history(self) -> None:
        self.history.clear()
        self.metrics.clear_runs()
        self.history_cleared.emit()

    def export(self, run_id: int, path: str) -> None:
        record = self.history.get(run_id)
        if record is None:
            return
        self.tasks.submit(f"export:{path}", _write_audio, path, record.audio, record.sample_rate)

    def fetch_catalog(self) -> None:
        self.tasks.submit("catalog", _fetch_catalog)

    def download_voice(self, key: str, entry: dict[str, Any]) -> None:
        self.tasks.submit(f"download:{key}", _download_voice, entry, self._downloads_cancel, with_progress=True)

    def list_installed_voices(self) -> None:
        self.tasks.submit("installed", _installed_voices)

    # ----- worker results ----------------------------------------------------------------------

    def _submit(self, text: str, config: dict[str, Any], label: str) -> int:
        request_id = self.history.next_id()
        self._latest_id = request_id
        job = {
            "id": request_id,
            "text": text,
            "voice": self.voice,
            "device": self.device_choice,
            "config": config,
            "options": self._synthesis_options(),
            "label": label,
        }
        self._pending[request_id] = {
            "text": text,
            "voice": self.voice,
            "preset": caps.matching_preset(config, self.preset_configs()),
        }
        self._request_synthesis.emit(job)
        return request_id

    def _synthesis_options(self) -> dict[str, Any]:
        """`SynthesisOptions` fields; a Chatterbox voice adds its knobs as `extra`."""
        variant = self.voice_variant
        if variant is None:
            return dict(self.options)
        return {**self.options, "extra": caps.chatterbox_extra(self.chatterbox_options, variant)}

    def _on_chatterbox_downloaded(self, spec: str, status: dict, outcome: str) -> None:
        self.chatterbox = {**self.chatterbox, spec: status}
        self.chatterbox_changed.emit(self.chatterbox)
        if not outcome and not status.get("ready"):
            outcome = "The download finished but files are still missing: " + ", ".join(status.get("missing", []))
        self.chatterbox_download_finished.emit(spec, outcome)
        if not outcome:
            self.set_voice(spec)
            self.notice.emit(f"{caps.CHATTERBOX_LABELS[spec]} is downloaded and selected.")

    def _schedule_prepare(self) -> None:
        if self.engine_available:
            self._prepare_timer.start()

    def _send_prepare(self) -> None:
        self._request_prepare.emit(
            {"voice": self.voice, "device": self.device_choice, "config": self.effective_config()}
        )

    def _on_chunk(self, request_id: int, audio: np.ndarray, sample_rate: int, index: int, count: int) -> None:
        if request_id != self._stream_id:
            return
        if index == 0:
            self.live_chunks = []
            self.live_sample_rate = sample_rate
            self.live_audio_started.emit(sample_rate)
            if self.autoplay and not self.playback_unavailable:
                self.player.begin(sample_rate)
        self.live_chunks.append(audio)
        self._guard_playback(self.player.feed, audio)

    def _on_finished(self, request_id: int, result: dict) -> None:
        pending = self._pending.pop(request_id, {})
        record = RunRecord(
            run_id=request_id,
            started=time.time(),
            text=pending.get("text", ""),
            voice=pending.get("voice", self.voice),
            config_summary=result.get("config_summary", ""),
            preset=pending.get("preset", caps.PRESET_CUSTOM),
            device=result.get("device", ""),
            audio=np.asarray(result["audio"], dtype=np.float32),
            sample_rate=int(result["sample_rate"]),
            timings=result.get("timings", {}),
            peak_vram_bytes=int(result.get("peak_vram_bytes", 0)),
            fallbacks=list(result.get("fallbacks", [])),
            label=result.get("label", ""),
        )
        self.history.add(record)
        self.metrics.add_run(record)
        if request_id == self._stream_id:
            self._guard_playback(self.player.end_of_input)
        log.info(
            "run %d: %.2f s audio in %.3f s on %s (%.1f× real time, %s)",
            record.run_id, record.audio_s, record.timings.get("total_s", 0.0), record.device,
            record.x_realtime, record.config_summary,
        )
        self.run_added.emit(record)
        if record.label:
            self._compare[record.label] = record
            if len(self._compare) == 2:
                self.compare_finished.emit(self._compare["A"], self._compare["B"])

    def _on_cancelled(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        if request_id == self._stream_id:
            self.player.stop()
            self.notice.emit("Stopped.")

    def _on_failed(self, request_id: int, message: str, details: str) -> None:
        self._pending.pop(request_id, None)
        if request_id and request_id == self._stream_id:
            self.player.stop()
        self.error.emit(message, details)

    def _play(self, audio: np.ndarray, sample_rate: int) -> None:
        if self.playback_unavailable:
            self.notice.emit(self.playback_unavailable)
            return
        self._guard_playback(self.player.play, audio, sample_rate)

    def _guard_playback(self, action, *args) -> None:
        if self.playback_unavailable:
            return
        try:
            action(*args)
        except PlaybackUnavailable as exc:
            self.playback_unavailable = f"{exc} Playback is off; Export still works."
            self.playback_lost.emit(self.playback_unavailable)

    # ----- background tasks --------------------------------------------------------------------

    def _task_finished(self, token: str, result: object) -> None:
        kind, _, arg = token.partition(":")
        if kind == "catalog":
            self.catalog_loaded.emit(result)
        elif kind == "installed":
            for path in result:
                if path not in self.recent_voices:
                    self.recent_voices.append(path)
            self.voices_changed.emit(self.recent_voices)
        elif kind == "download":
            self.download_finished.emit(arg, str(result))
            self.set_voice(str(result))
        elif kind == "export":
            self.notice.emit(f"Exported {Path(arg).name}.")

    def _task_failed(self, token: str, message: str, details: str) -> None:
        kind, _, arg = token.partition(":")
        if kind == "catalog":
            self.catalog_failed.emit(message)
        elif kind == "download":
            self.catalog_failed.emit(message)
            self.download_finished.emit(arg, "")
        elif kind != "installed":
            self.error.emit(message, details)

    def _task_progress(self, token: str, done: int, total: int) -> None:
        self.download_progress.emit(token.partition(":")[2], done, total)


def _single_shot_timer(parent: QObject, interval_ms: int) -> QTimer:
    """Built with setters: PySide6 6.12 mis-counts references to bool constructor keywords."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(interval_ms)
    return timer


def _write_audio(path: str, audio: np.ndarray, sample_rate: int) -> str:
    from engine.audio_io import write_audio

    write_audio(path, audio, sample_rate)
    return path


def _fetch_catalog() -> list[dict[str, Any]]:
    from dataclasses import asdict

    from engine import voices

    installed = {p.stem for p in voices.installed_voices()}
    return [{**asdict(e), "size": e.download_bytes, "installed": e.key in installed} for e in voices.fetch_catalog()]


def _download_voice(entry: dict[str, Any], cancel: threading.Event, progress) -> str:
    from engine import voices

    names = ("key", "name", "language_code", "language_name", "quality", "num_speakers", "files")
    fields = {k: entry[k] for k in names}
    return str(voices.download_voice(voices.VoiceEntry(**fields), progress=progress, cancel=cancel))


def _installed_voices() -> list[str]:
    from engine import voices

    return [str(p) for p in voices.installed_voices()]
