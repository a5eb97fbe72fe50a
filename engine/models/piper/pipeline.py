"""A loaded Piper voice as a `TTSModel`: text front end + runner + optimization hooks."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np
import torch

from ...config import SynthesisOptions
from ...errors import InputError
from ...feed import known_count
from ...finishing import pause_samples
from ...precision import ModulePolicy
from ...text import IdTable, has_speakable_text, has_visible_text, normalize_text, split_chunks
from ...text.abbreviations import expand_paragraphs
from ...text.chunk import CHUNK_CHARS
from ...text.sentences import ChunkFrontEnd
from ...text.workers import map_chunks, phonemize_spread
from ..base import Segment, StageTimes
from .config import VoiceConfig
from .model import PiperVITS
from .synth import PiperRunner, SynthParams
from .voice import build_model, check_config, load_weights, voice_paths

if TYPE_CHECKING:
    from ...optimizer import AdvancedTTSOptimizer

log = logging.getLogger(__name__)

PRECISION_POLICY = {
    # Measured on joe-medium against fp32 (shared/research/piper-facts.md §2.1, re-checked by
    # `tts-turbo bench`): the decoder holds 57 dB in fp16 and 39 dB in bf16; the flow drops to
    # 25 dB in bf16 and bf16 in the encoder/duration path changes rounded durations (audio length).
    "enc_p": ModulePolicy((), "bf16 changed ceil'ed durations (2 of 417 tokens)"),
    "dp": ModulePolicy((), "duration rounding is length-critical"),
    "flow": ModulePolicy((torch.float16,), "fp16 43 dB; bf16 only 25 dB, so the flow never runs in bf16"),
    "dec": ModulePolicy((torch.float16, torch.bfloat16), "fp16 57 dB, bf16 39 dB; holds most of the FLOPs"),
}


class PiperTTS:
    family = "piper"
    finishes_audio = True  # normalised and clipped per batch on the device, pauses added on the way out

    def __init__(self, model: PiperVITS, config: VoiceConfig, device: torch.device, source: Path, load_info: dict[str, Any]):
        self.model = model
        self._reference = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.config = config
        self.device = device
        self.source = source
        self.load_info = load_info
        self.name = source.stem
        self.sample_rate = config.sample_rate
        self.runner = PiperRunner(self.model, device)
        self._english = config.language.startswith("en") or config.espeak_voice.startswith("en")
        self._front_end = ChunkFrontEnd(config.espeak_voice, IdTable(config.phoneme_id_map, config.num_symbols))
        # clause groups spread over the workers: checked against whole-text espeak for English only
        self._short_front_end = dataclasses.replace(self._front_end, phonemizer=phonemize_spread) if self._english else self._front_end

    # ---- text front end ----

    def segment(self, text: str, options: SynthesisOptions) -> list[Segment]:
        return list(self.iter_segments(text, options))

    def iter_segments(self, text: str, options: SynthesisOptions) -> Iterator[Segment]:
        """Sentences as espeak finds them, a chunk (≤ 2,000 characters) per call (in worker
        processes for long texts, a short text's clause groups spread over them: `text.workers`);
        a paragraph's last sentence pauses twice as long.
        Paragraphs are prepared (abbreviations, chunks) as the calls need them, so the first
        sentences are not held back by the rest of a long text."""
        if not has_visible_text(text):
            raise InputError("text is empty (nothing left after removing whitespace and control characters)")
        clean = normalize_text(text)
        if not has_speakable_text(clean):
            raise InputError("text has nothing speakable (only symbols, emoji or punctuation)")
        paragraphs = clean.split("\n\n")
        numbers: deque[int] = deque()  # the paragraph of each chunk handed to the front end, in order

        def chunks() -> Iterator[str]:
            for number, paragraph in enumerate(expand_paragraphs(paragraphs) if self._english else paragraphs):
                for chunk in split_chunks(paragraph):
                    numbers.append(number)
                    yield chunk

        held: Segment | None = None  # a paragraph's last sentence is known once its paragraph is done
        paragraph = 0
        parallel = len(clean) > CHUNK_CHARS  # several espeak calls: worth the worker processes
        front_end = self._front_end if parallel else self._short_front_end
        for sentences in map_chunks(front_end, chunks(), self.config.espeak_voice, parallel):
            number = numbers.popleft()
            if held is not None and number != paragraph:
                held.pause_after = 2 * options.sentence_silence  # paragraph break
            paragraph = number
            for text_part, ids in sentences:
                if held is not None:
                    yield held
                held = Segment(text=text_part, tokens=ids, pause_after=options.sentence_silence)
        if held is None:
            raise InputError("text has nothing speakable (only symbols, emoji or punctuation)")
        held.pause_after = 2 * options.sentence_silence
        yield held

    # ---- synthesis ----

    def params(self, options: SynthesisOptions) -> SynthParams:
        n = self.model.arch.n_speakers
        if not 0 <= options.speaker_id < max(n, 1):
            raise InputError(f"speaker {options.speaker_id} does not exist: this voice has {n} speaker(s) (0–{n - 1})")
        pick = lambda value, default: default if value is None else value
        return SynthParams(
            length_scale=pick(options.length_scale, self.config.length_scale),
            noise_scale=pick(options.noise_scale, self.config.noise_scale),
            noise_w=pick(options.noise_w, self.config.noise_w),
            speaker_id=options.speaker_id,
            seed=options.seed if options.seed is not None else secrets.randbits(48),
            volume=options.volume,
            normalize=options.normalize,
        )

    def synthesize(self, segments: Iterable[Segment], options: SynthesisOptions, times: StageTimes, cancelled=lambda: False,
                   joined: bool = False) -> Iterator[np.ndarray]:
        """Finished audio per segment (see `finishes_audio`)."""
        params = self.params(options)
        self.ensure_on_device()
        if known_count(segments) == 1 and not cancelled():
            (segment,) = segments
            yield self.runner.run_one(segment.tokens, pause_samples(segment, self.sample_rate), params, times)
            return
        items = ((s.tokens, pause_samples(s, self.sample_rate)) for s in segments)
        for _, audio in self.runner.run(items, params, times, cancelled, ready=getattr(segments, "ready", None), joined=joined):
            yield audio

    # ---- optimization ----

    precision_policy = PRECISION_POLICY

    def ensure_on_device(self) -> None:
        if self.model.enc_p.emb.weight.device != self.device:
            self.model.to(self.device)

    def restore_reference_weights(self) -> None:
        """Back to the fp32 weights as loaded (re-optimizing never compounds rounding)."""
        self.model.float().load_state_dict(self._reference)

    def optimize(self, optimizer: "AdvancedTTSOptimizer") -> None:
        from .optimize import apply_optimizations

        apply_optimizations(self, optimizer)

    def describe(self) -> dict[str, Any]:
        arch = self.model.arch
        return {
            "family": self.family,
            "name": self.name,
            "path": str(self.source),
            "sample_rate": self.sample_rate,
            "language": self.config.language,
            "num_speakers": arch.n_speakers,
            "speaker_id_map": dict(self.config.speaker_id_map),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "defaults": {
                "length_scale": self.config.length_scale,
                "noise_scale": self.config.noise_scale,
                "noise_w": self.config.noise_w,
            },
            "load_s": round(self.load_info.get("load_s", 0.0), 3),
            "weights_from_cache": self.load_info.get("from_cache", False),
        }


def load_piper(spec: str, device: torch.device) -> PiperTTS:
    start = time.perf_counter()
    onnx_path, json_path = voice_paths(spec)
    config = VoiceConfig.load(json_path)
    state, arch, info = load_weights(onnx_path)
    check_config(config, arch, onnx_path.name)
    model = build_model(state, arch, onnx_path.name)
    info["load_s"] = time.perf_counter() - start
    log.info("loaded %s in %.2f s (weights %s)", onnx_path.name, info["load_s"], "cached" if info["from_cache"] else "converted")
    return PiperTTS(model, config, device, onnx_path, info)


def is_piper_spec(spec: str) -> bool:
    """Bundled names, any file path (a wrong one gets Piper's specific error), or a voice folder."""
    path = Path(spec)
    return spec in ("", "default", "joe", "en_US-joe-medium") or bool(path.suffix) or (path.is_dir() and any(path.glob("*.onnx")))
