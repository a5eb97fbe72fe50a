"""`ChatterboxTTS`: the engine-facing model (TTSModel protocol) around the Chatterbox networks.

Text → sentence chunks (≤ 300 chars, inside the 40 s per-call limit) → per chunk T3 tokens →
S3Gen mel → HiFT audio, yielded chunk by chunk so the player can start on the first one.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from ...config import OptimizationConfig, SynthesisOptions
from ...errors import InputError, SynthesisCancelled
from ..base import Segment, StageTimes
from .audio import S3GEN_SR
from .checkpoint import rebuild_buffers
from .generate import S3GenRunner, SamplingParams, T3Decoder, embeds_for
from .graphs import GraphCache
from .model import Chatterbox, parameter_count
from .t3_turbo import SILENCE_TOKEN
from .tokenizer import EnTokenizer, GPT2Tokenizer, punc_norm, split_sentences
from .voice import Conditionals, embed_voice, read_audio

S3_VOCAB = 6561
_KNOBS = {"exaggeration": 0.5, "cfg_weight": 0.5, "temperature": 0.8, "repetition_penalty": 1.2,
          "min_p": 0.05, "top_p": 1.0, "max_new_tokens": 1000}
_TURBO_KNOBS = {**_KNOBS, "exaggeration": 0.0, "cfg_weight": 0.0, "min_p": 0.0, "top_p": 0.95}  # no CFG / min-p
TURBO_TOP_K = 1000
LOCAL_VOICE_CACHE = 8  # voices kept when no optimizer cache is attached


def sampling_params(options: SynthesisOptions, turbo: bool = False) -> SamplingParams:
    """Chatterbox knobs from `options.extra` (defaults = the reference's `generate()` defaults)."""
    values = {}
    for name, default in (_TURBO_KNOBS if turbo else _KNOBS).items():
        raw = options.extra.get(name, default)
        try:
            values[name] = int(raw) if name == "max_new_tokens" else float(raw)
        except (TypeError, ValueError) as exc:
            raise InputError(f"chatterbox option {name} must be a number, got {raw!r}") from exc
    try:
        return SamplingParams(**values)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class ChatterboxTTS:
    family = "chatterbox"
    sample_rate = S3GEN_SR
    finishes_audio = False  # one sentence at a time: finished on the host by the wrapper

    def __init__(self, model: Chatterbox, tokenizer: EnTokenizer | GPT2Tokenizer, conds: Conditionals, device: torch.device,
                 path: Path | None = None, name: str = "chatterbox"):
        self.name, self.path, self.device = name, path, device
        self.turbo = model.cfg.turbo
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.builtin = conds.to(device)
        self.optimizer = None
        self.voices: OrderedDict[str, Conditionals] = OrderedDict()
        self._configure(OptimizationConfig.unoptimized(), None)

    def _configure(self, cfg: OptimizationConfig, optimizer) -> None:
        cuda = self.device.type == "cuda"
        half = (cfg.enable_bf16 or (cfg.enable_fp16 and cuda)) and (cuda or cfg.enable_bf16)
        self.t3_dtype = torch.bfloat16 if half else torch.float32
        self.flow_dtype = self.t3_dtype  # HiFT and all spectral / phase math stay fp32
        m = self.model
        on_fallback = optimizer.record_fallback if optimizer is not None else None
        if self.t3_dtype == torch.float32 and m.t3.speech_head.weight.dtype != torch.float32:
            self._restore_fp32(on_fallback)
        m.t3.to(self.t3_dtype)
        m.s3gen.flow.to(self.flow_dtype)
        for part in (m.t3, m.s3gen.flow):  # the cast also rounded RoPE / time-frequency / schedule tables
            rebuild_buffers(part, self.device)
        graphs = cfg.enable_cuda_graphs and cuda
        if cfg.enable_cuda_graphs and not cuda and optimizer is not None:
            optimizer.record_fallback("cuda_graphs", "chatterbox: no CUDA device, decoding eagerly")
        max_seq = m.cfg.t3.cond_len + 2 + 512 + _KNOBS["max_new_tokens"]  # Turbo: 376 cond positions
        compile_mode = cfg.compile_mode if cfg.enable_compile and cuda and _has_triton() else None
        if cfg.enable_compile and compile_mode is None and on_fallback is not None:
            on_fallback("compile", "chatterbox: torch.compile needs CUDA and triton; T3 step runs uncompiled")
        self.decoder = T3Decoder(m.t3, self.device, self.t3_dtype, max_seq, _KNOBS["max_new_tokens"],
                                 GraphCache(graphs, cfg.graph_warmup_iters, on_fallback, "cuda_graphs.t3"),
                                 compile_mode=compile_mode, top_k=TURBO_TOP_K if self.turbo else None)
        self.s3 = S3GenRunner(m.s3gen, self.device, cfg.shape_buckets, graphs, cfg.graph_warmup_iters, on_fallback)
        self.inference_mode = cfg.use_inference_mode

    def _restore_fp32(self, on_fallback) -> None:
        """Going back to fp32 after bf16 re-reads the checkpoint: an upcast would keep bf16 rounding."""
        from .checkpoint import load_module
        from .model import S3GEN_FILE, T3_FILE, T3_IGNORED
        from .s3gen import S3GEN_OPTIONAL

        if self.path is None:
            if on_fallback is not None:
                on_fallback("precision", "chatterbox: fp32 restored by upcasting bf16 weights (no checkpoint path)")
            return
        load_module(self.model.t3, self.path / T3_FILE, ignore=T3_IGNORED)
        load_module(self.model.s3gen, self.path / S3GEN_FILE, optional=S3GEN_OPTIONAL)
        self.model.to(self.device)

    def optimize(self, optimizer) -> None:
        """Precision (bf16 T3 and flow), static KV cache, CUDA graphs per bucket, token buckets."""
        self.optimizer = optimizer
        self._configure(optimizer.config, optimizer)
        optimizer.set_stat("chatterbox_t3_dtype", str(self.t3_dtype).replace("torch.", ""))
        optimizer.set_stat("chatterbox_kv_cache_positions", self.decoder.max_seq)

    def segment(self, text: str, options: SynthesisOptions) -> list[Segment]:
        chunks = split_sentences(text)
        if not chunks:
            raise InputError("no text to speak")
        segments = []
        for i, chunk in enumerate(chunks):
            norm = punc_norm(chunk, turbo=self.turbo)
            pause = options.sentence_silence if i < len(chunks) - 1 else 0.0
            segments.append(Segment(text=norm, tokens=self.tokenizer.encode(norm), pause_after=pause))
        return segments

    def iter_segments(self, text: str, options: SynthesisOptions) -> Iterator[Segment]:
        """The front end is a tokenizer: cheap enough to run whole."""
        return iter(self.segment(text, options))

    def voice(self, path: str | None) -> Conditionals:
        """Built-in conds.pt, or a reference clip embedded once (optimizer cache, else a small local LRU)."""
        if not path:
            return self.builtin
        if self.optimizer is not None:
            data = self.optimizer.get_voice_embedding(path, self._embed_path, model_name="chatterbox")
            return Conditionals(**{k: v.to(self.device) for k, v in data.items()})
        key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if key not in self.voices:
            self.voices[key] = Conditionals(**self._embed_path(path))
            while len(self.voices) > LOCAL_VOICE_CACHE:
                self.voices.popitem(last=False)
        self.voices.move_to_end(key)
        return self.voices[key]

    def _embed_path(self, path: str) -> dict[str, torch.Tensor]:
        wav, sr = read_audio(path)
        with torch.inference_mode():
            return embed_voice(self.model, wav, sr).tensors()

    def synthesize(self, segments: Iterable[Segment], options: SynthesisOptions, times: StageTimes,
                   cancelled: Callable[[], bool] = lambda: False, joined: bool = False) -> Iterator[torch.Tensor]:
        """One sentence at a time, each a fresh waveform (`joined` changes nothing here)."""
        params = sampling_params(options, self.turbo)
        conds = self.voice(options.extra.get("voice_path"))
        if options.seed is not None:
            torch.manual_seed(options.seed)
        for seg in segments:
            if cancelled():
                raise SynthesisCancelled("cancelled")
            with torch.inference_mode(self.inference_mode):
                yield self._one(seg.tokens, conds, params, times, cancelled)

    def _one(self, text_ids: list[int], conds: Conditionals, params: SamplingParams, times: StageTimes,
             cancelled: Callable[[], bool]) -> torch.Tensor:
        rows = 2 if params.cfg_weight > 0 and not self.turbo else 1
        t0 = time.perf_counter()
        embeds = embeds_for(self.model.t3, conds, text_ids, params.exaggeration, rows, self.device)
        tokens = [t for t in self.decoder.generate(embeds, params, cancelled=cancelled) if t < S3_VOCAB]
        times.add("t3", time.perf_counter() - t0)
        if not tokens:
            return torch.zeros(0, device=self.device)
        if self.turbo:
            tokens += [SILENCE_TOKEN] * 3  # as the reference: a short silent tail for the vocoder
        mel = self.s3.mel(conds, tokens, times=times.add)
        return self.s3.wav(mel, times=times.add)

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {
            "family": self.family, "name": self.name, "variant": "turbo" if self.turbo else "standard",
            "path": str(self.path) if self.path else None,
            "sample_rate": self.sample_rate, "parameters": parameter_count(m),
            "t3_parameters": parameter_count(m.t3), "s3gen_parameters": parameter_count(m.s3gen),
            "t3_layers": m.cfg.t3.n_layers, "t3_dim": m.cfg.t3.dim, "t3_dtype": str(self.t3_dtype),
            "flow_dtype": str(self.flow_dtype), "hift_dtype": "torch.float32", "speakers": 1,
            "samples_per_token": 2 * m.cfg.s3gen.hift.samples_per_frame,
        }
