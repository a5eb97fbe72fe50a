"""Configuration dataclasses: every optimization toggle and every per-call synthesis knob.

`OptimizationConfig` is frozen: the optimizer takes it as a snapshot when it (re)optimizes a model,
so a later change in the GUI never half-applies. Vary it with `dataclasses.replace(cfg, **kw)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

CompileMode = Literal["default", "reduce-overhead", "max-autotune"]
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class OptimizationConfig:
    """Every optimization the engine knows, each switchable on its own."""

    enable_fp16: bool = False
    """Run the modules where fp16 measured safe (Piper: flow and HiFi-GAN decoder) in float16. GPU only."""
    enable_bf16: bool = False
    """Run the modules where bf16 measured safe in bfloat16 (needs a bf16-capable GPU or the CPU)."""
    enable_flash_attention: bool = False
    """Express attention with scaled_dot_product_attention (flash / mem-efficient / math backends)."""
    enable_cuda_graphs: bool = False
    """Capture each shape bucket into a CUDA graph after warmup and replay it. GPU only."""
    enable_fused_kernels: bool = False
    """Kernel-level rewrites: on the GPU the HiFi-GAN decoder and the flow's WaveNet couplings as
    fused Triton convolutions (needs triton), the encoder's attention in one Triton launch per
    layer (two for one sentence) where flash attention is on (same), its feed-forward blocks and
    fp32 1 × 1 products in Triton (same), and the encoder and duration convolutions as single
    matrix products; on the CPU the decoder's convolutions channels-last. Both: q/k/v as one
    product."""
    enable_compile: bool = False
    """torch.compile the hot modules (needs triton on the GPU)."""
    compile_mode: CompileMode = "default"
    """torch.compile mode: default, reduce-overhead or max-autotune."""
    pin_memory: bool = False
    """Copy audio to pinned host buffers with non_blocking transfers. GPU only."""
    preload_weights: bool = True
    """Move weights to the device once at optimize time instead of lazily on first use."""
    batch_preprocessing: bool = False
    """Phonemize all sentences in one pass and run them through the model as padded batches."""
    use_inference_mode: bool = True
    """Run synthesis under torch.inference_mode (no autograd bookkeeping)."""
    num_threads: int = 0
    """CPU threads for torch; 0 means the number of physical cores."""
    preallocate_buffers: bool = False
    """Serve intermediate tensors from a reusable device buffer pool."""
    enable_tf32: bool = True
    """Allow TF32 matmul/conv on Ampere and newer GPUs."""
    shape_buckets: bool = True
    """Pad phoneme and frame counts up to a few fixed sizes so kernels, plans and graphs are reused."""
    graph_warmup_iters: int = 2
    """Eager iterations run on a bucket before it is captured (at least 1)."""
    max_batch_size: int = 32
    """Most sentences per padded forward when batching."""

    def __post_init__(self) -> None:
        _verify(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OptimizationConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary(self) -> str:
        """Short human label, e.g. 'fp16+graphs+sdpa' or 'fp32 eager'."""
        on = [label for name, label in _LABELS if getattr(self, name)]
        return "+".join(on) if on else "fp32 eager"

    @classmethod
    def unoptimized(cls) -> "OptimizationConfig":
        """Reference configuration: fp32, eager, one sentence at a time."""
        return cls(enable_tf32=False, shape_buckets=False)

    @classmethod
    def max_speed(cls, cuda: bool, bf16_supported: bool = False) -> "OptimizationConfig":
        """Everything that helps on this machine, as measured (docs/benchmarks.md). On the GPU:
        fp16 islands, SDPA, buckets, CUDA graphs, fused kernels, batching, pinned staging and the buffer pool
        (compile stays opt-in: minutes of start-up). On the CPU the channels-last vocoder (the
        fused-kernels toggle there; fp32 vocoder 1.5× on the CI machine) and a bf16 decoder where
        the CPU has native bf16 (`bf16_supported`; 1.55×): SDPA, buckets and batching measured
        slower there, and batching would delay Stop."""
        return cls(
            enable_fp16=cuda,
            enable_bf16=not cuda and bf16_supported,
            enable_flash_attention=cuda,
            enable_cuda_graphs=cuda,
            enable_fused_kernels=True,
            enable_compile=False,
            pin_memory=cuda,
            batch_preprocessing=cuda,
            preallocate_buffers=cuda,
            shape_buckets=cuda,
        )


_LABELS = (
    ("enable_fp16", "fp16"),
    ("enable_bf16", "bf16"),
    ("enable_flash_attention", "sdpa"),
    ("enable_cuda_graphs", "graphs"),
    ("enable_fused_kernels", "fused"),
    ("enable_compile", "compile"),
    ("pin_memory", "pinned"),
    ("batch_preprocessing", "batch"),
    ("preallocate_buffers", "pool"),
)


def _verify(cfg: OptimizationConfig) -> None:
    if cfg.compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {cfg.compile_mode!r}")
    if cfg.num_threads < 0:
        raise ValueError(f"num_threads must be >= 0, got {cfg.num_threads}")
    if cfg.graph_warmup_iters < 1:
        raise ValueError(f"graph_warmup_iters must be >= 1, got {cfg.graph_warmup_iters}")
    if cfg.max_batch_size < 1:
        raise ValueError(f"max_batch_size must be >= 1, got {cfg.max_batch_size}")


@dataclass(frozen=True)
class SynthesisOptions:
    """Per-call knobs. None means 'the voice's default' (Piper: the .json `inference` block)."""

    speaker_id: int = 0
    length_scale: float | None = None
    """> 1 is slower speech."""
    noise_scale: float | None = None
    """Prior sampling noise; 0 makes the output deterministic."""
    noise_w: float | None = None
    """Duration predictor noise; 0 makes durations deterministic."""
    sentence_silence: float = 0.2
    """Seconds of silence inserted after each sentence."""
    normalize: bool = True
    """Peak-normalise each sentence (as piper-tts does by default)."""
    volume: float = 1.0
    seed: int | None = None
    """Seed for the noise; None draws fresh noise each call."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Family-specific knobs (Chatterbox: exaggeration, cfg_weight, temperature, voice_path…)."""

    def __post_init__(self) -> None:
        for name in ("length_scale", "noise_scale", "noise_w"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and value < 100):
                raise ValueError(f"{name} must be in [0, 100), got {value}")
        if self.length_scale is not None and self.length_scale <= 0:
            raise ValueError(f"length_scale must be > 0, got {self.length_scale}")
        if not 0 <= self.sentence_silence <= 10:
            raise ValueError(f"sentence_silence must be in [0, 10] seconds, got {self.sentence_silence}")
        if not 0 <= self.volume <= 10:
            raise ValueError(f"volume must be in [0, 10], got {self.volume}")
        if self.speaker_id < 0:
            raise ValueError(f"speaker_id must be >= 0, got {self.speaker_id}")
