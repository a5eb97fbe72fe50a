"""Gapless streamed playback: one long-lived output stream per utterance, fed from a chunk queue.

The audio callback runs on PortAudio's real-time thread, so it only does a bounded copy out of a
deque under a short lock, zero-fills on underrun and counts it. Nothing here imports Qt, and
`sounddevice` is imported lazily so the app (and these tests) work where PortAudio is missing.
Streams come from an injectable `stream_factory`; tests pass a fake that drives the callback.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any, Callable, Protocol

import numpy as np

FillCallback = Callable[[np.ndarray, bool], bool]
"""fill(out (frames, 1) float32, device_reported_underflow) -> True once the utterance is done."""


class OutputStream(Protocol):
    def start(self) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


StreamFactory = Callable[[int, Any, FillCallback, Callable[[], None]], OutputStream]
"""factory(sample_rate, device, fill, on_finished) -> an unstarted stream."""


class PlaybackUnavailable(RuntimeError):
    """No PortAudio, no output device, or the device refused the stream."""


def probe_output() -> str | None:
    """None when a default output device exists, else the reason playback is unavailable."""
    try:
        import sounddevice as sd
    except OSError:
        return "No audio playback: the PortAudio library is not installed (apt install libportaudio2)."
    try:
        sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError):
        return "No audio output device found. Playback is off; Export still writes WAV/FLAC/OGG."
    return None


def output_devices() -> list[tuple[int, str]]:
    """(PortAudio index, label) of every device that can play; empty without PortAudio."""
    try:
        import sounddevice as sd

        devices = sd.query_devices()
        apis = sd.query_hostapis()
    except (OSError, Exception):  # PortAudio missing or failing to enumerate: no devices to offer
        return []
    return [
        (index, f"{dev['name']} ({apis[dev['hostapi']]['name']})")
        for index, dev in enumerate(devices)
        if dev["max_output_channels"] > 0
    ]


def sounddevice_stream(sample_rate: int, device: Any, fill: FillCallback, on_finished: Callable[[], None]):
    """The real stream: a callback `OutputStream`; 'high' latency is PortAudio's robust default."""
    try:
        import sounddevice as sd
    except OSError as exc:
        raise PlaybackUnavailable(probe_output() or str(exc)) from exc

    def callback(outdata, frames, time, status):  # noqa: ARG001 - PortAudio's signature
        if fill(outdata, bool(status.output_underflow)):
            raise sd.CallbackStop

    try:
        return sd.OutputStream(
            samplerate=sample_rate,
            channels=1,
            dtype="float32",
            device=device,
            callback=callback,
            finished_callback=on_finished,
            extra_settings=_wasapi_conversion(sd, device),
        )
    except (sd.PortAudioError, ValueError) as exc:
        raise PlaybackUnavailable(f"The audio device refused the stream: {exc}") from exc


def _wasapi_conversion(sd, device):
    """WASAPI shared mode rejects rates other than the mixer's; let it resample 22.05 kHz voices."""
    if sys.platform != "win32":
        return None
    info = sd.query_devices(device, kind="output") if device is None else sd.query_devices(device)
    if "WASAPI" in sd.query_hostapis(info["hostapi"])["name"]:
        return sd.WasapiSettings(auto_convert=True)
    return None


class StreamPlayer:
    """Plays one utterance at a time from chunks fed while synthesis continues."""

    def __init__(self, stream_factory: StreamFactory | None = None, prefill_seconds: float = 0.15) -> None:
        self._factory = stream_factory or sounddevice_stream
        self._prefill_seconds = prefill_seconds
        self._lock = threading.Lock()
        self._chunks: deque[np.ndarray] = deque()
        self._offset = 0
        self._queued = 0
        self._input_ended = False
        self._stream: OutputStream | None = None
        self._sample_rate = 0
        self._generation = 0
        self._playing = False
        self.device: Any = None
        self.underflows = 0
        self.played_samples = 0

    @property
    def is_playing(self) -> bool:
        return self._playing

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def begin(self, sample_rate: int) -> None:
        """Start a new utterance (stopping any current one); the stream opens once prefilled."""
        self.stop()
        with self._lock:
            self._sample_rate = sample_rate
            self._input_ended = False
            self.underflows = 0
            self.played_samples = 0
            self._playing = True

    def feed(self, audio: np.ndarray) -> None:
        if not self._playing:
            return
        with self._lock:
            self._chunks.append(np.ascontiguousarray(audio, dtype=np.float32).reshape(-1))
            self._queued += len(self._chunks[-1])
            ready = self._queued >= self._prefill_seconds * self._sample_rate
        if ready and self._stream is None:
            self._open()

    def end_of_input(self) -> None:
        """No more chunks: play out what is queued, then finish."""
        if not self._playing:
            return
        with self._lock:
            self._input_ended = True
        if self._stream is None:
            self._open()

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        self.begin(sample_rate)
        self.feed(audio)
        self.end_of_input()

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        with self._lock:
            self._generation += 1
            self._chunks.clear()
            self._offset = 0
            self._queued = 0
            self._playing = False
        if stream is not None:
            stream.abort()
            stream.close()

    def _open(self) -> None:
        generation = self._generation
        try:
            stream = self._factory(
                self._sample_rate, self.device, self._fill, lambda: self._finished(generation)
            )
            stream.start()
        except PlaybackUnavailable:
            self.stop()
            raise
        self._stream = stream

    def _fill(self, out: np.ndarray, device_underflow: bool) -> bool:
        """The audio callback: bounded copy, zero-fill, count underruns. No allocation, no blocking."""
        frames = len(out)
        written = 0
        with self._lock:
            while written < frames and self._chunks:
                chunk = self._chunks[0]
                take = min(frames - written, len(chunk) - self._offset)
                out[written : written + take, 0] = chunk[self._offset : self._offset + take]
                written += take
                self._offset += take
                if self._offset == len(chunk):
                    self._chunks.popleft()
                    self._offset = 0
            self._queued -= written
            ended = self._input_ended
            done = ended and not self._chunks
        if written < frames:
            out[written:] = 0.0
            if not ended:
                self.underflows += 1
        elif device_underflow:
            self.underflows += 1
        self.played_samples += written
        return done

    def _finished(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._playing = False
