"""A loaded Piper voice as a `TTSModel`: text front end + runner + optimization hooks."""

from __future__ import annotations

import logging
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

from ...config import SynthesisOptions
from ...errors import InputError
from ...finishing import pause_samples
from ...precision import ModulePolicy
from ...text import IdTable, has_speakable_text, has_visible_text, normalize_text, split_chunks
from ...text.abbreviations import expand_abbreviations
from ...text.phonemize import phonemize
from ..base import Segment, StageTimes
from .config import VoiceConfig
from .model import PiperVITS
from .synth import PiperRunner, SynthParams
from .voice import build_model, check_config, load_weights, voice_paths

if TYPE_CHECKING:
    from ...optimizer import AdvancedTTSOptimizer

log = logging.getLogger(__name__)

MAX_PHONEMES = 400
"""Longest phoneme run per segment (~30 s of speech); longer sentences are cut at word breaks,
which bounds attention memory for text without punctuation."""
SPEAKABLE_EXCLUDES = set(" .,;:!?¡¿—…-\"'()")

PRECISION_POLICY = {
    # Measured on joe-medium against fp32 (shared/research/piper-facts.md §2.1, re-checked by
    # `tts-turbo bench`): the decoder holds 57 dB in fp16 and 39 dB in bf16; the flow drops to
    # 25 dB in bf16 and bf16 in the encoder/duration path changes rounded durations (audio length).
    "enc_p": ModulePolicy((), "bf16 changed ceil'ed durations (2 of 417 tokens)"),
    "dp": ModulePolicy((), "duration rounding is length-critical"),
    "flow": ModulePolicy((torch.float16,), "fp16 43 dB; bf16 only 25 dB, so the flow never runs in bf16"),
    "dec": ModulePolicy((torch.float16, torch.bfloat16), "fp16 57 dB, bf16 39 dB; holds most of the FLOPs"),
}


_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"')\]]*|$)")


def sentence_texts(chunk: str, count: int) -> list[str]:
    """Best-effort sentence strings for display; espeak splits sentences but returns only phonemes."""
    parts = [p.strip() for p in _SENTENCE.findall(chunk) if p.strip()]
    return parts if len(parts) == count else [chunk] * count


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
        self._dropped: set[str] = set()
        self._ids = IdTable(config.phoneme_id_map, config.num_symbols)

    # ---- text front end ----

    def segment(self, text: str, options: SynthesisOptions) -> list[Segment]:
        clean = normalize_text(text)
        if self.config.language.startswith("en") or self.config.espeak_voice.startswith("en"):
            clean = expand_abbreviations(clean)
        if not has_visible_text(text):
            raise InputError("text is empty (nothing left after removing whitespace and control characters)")
        if not has_speakable_text(clean):
            raise InputError("text has nothing speakable (only symbols, emoji or punctuation)")
        segments: list[Segment] = []
        for paragraph in clean.split("\n\n"):
            for chunk in split_chunks(paragraph):
                sentences = phonemize(chunk, self.config.espeak_voice)
                texts = sentence_texts(chunk, len(sentences))
                for text_part, phonemes in zip(texts, sentences):
                    segments.extend(self._sentence_segments(text_part, phonemes, options.sentence_silence))
            if segments:
                segments[-1].pause_after = 2 * options.sentence_silence  # paragraph break
        if not segments:
            raise InputError("text has nothing speakable (only symbols, emoji or punctuation)")
        return segments

    def _sentence_segments(self, chunk: str, phonemes: list[str], pause: float) -> list[Segment]:
        if not any(p not in SPEAKABLE_EXCLUDES for p in phonemes):
            return []
        pieces = []
        while len(phonemes) > MAX_PHONEMES:
            cut = max((i for i, p in enumerate(phonemes[:MAX_PHONEMES]) if p == " "), default=MAX_PHONEMES)
            cut = cut if cut > MAX_PHONEMES // 2 else MAX_PHONEMES
            pieces.append(phonemes[:cut])
            phonemes = phonemes[cut:]
        pieces.append(phonemes)
        out = []
        for piece in pieces:
            ids = self._ids(piece, self._dropped)
            if len(ids) > 3:
                out.append(Segment(text=chunk if len(pieces) == 1 else "".join(piece), tokens=ids, pause_after=pause))
        return out

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

    def synthesize(self, segments: Sequence[Segment], options: SynthesisOptions, times: StageTimes, cancelled=lambda: False) -> Iterator[np.ndarray]:
        """Finished audio per segment (see `finishes_audio`)."""
        params = self.params(options)
        self.ensure_on_device()
        tails = [pause_samples(segments, i, self.sample_rate) for i in range(len(segments))]
        for _, audio in self.runner.run([s.tokens for s in segments], params, times, cancelled, tails):
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
