"""The three Chatterbox networks together, built from checkpoint shapes and loaded strictly.

`Chatterbox` holds modules only; `load_chatterbox` reads the official folder layout
(`t3_cfg.safetensors`, `s3gen.safetensors`, `ve.safetensors`, `tokenizer.json`, `conds.pt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ...errors import ModelNotAvailableError
from .checkpoint import build_on_meta, load_module, read_header
from .s3gen import S3GEN_OPTIONAL, S3Gen, S3GenConfig
from .t3 import T3, T3Config
from .voice_encoder import VE_IGNORED, VoiceEncoder, VoiceEncoderConfig

T3_FILE, S3GEN_FILE, VE_FILE, TOKENIZER_FILE, CONDS_FILE = (
    "t3_cfg.safetensors", "s3gen.safetensors", "ve.safetensors", "tokenizer.json", "conds.pt",
)
REQUIRED_FILES = (T3_FILE, S3GEN_FILE, VE_FILE, TOKENIZER_FILE, CONDS_FILE)
T3_IGNORED = {"tfmr.embed_tokens.weight"}  # the Llama's own token table; T3 feeds embeddings directly


@dataclass(frozen=True)
class ChatterboxConfig:
    t3: T3Config
    s3gen: S3GenConfig
    ve: VoiceEncoderConfig

    @classmethod
    def from_folder(cls, folder: Path) -> ChatterboxConfig:
        return cls(
            t3=T3Config.from_header(read_header(folder / T3_FILE)),
            s3gen=S3GenConfig.from_header(read_header(folder / S3GEN_FILE)),
            ve=VoiceEncoderConfig.from_header(read_header(folder / VE_FILE)),
        )


class Chatterbox(nn.Module):
    def __init__(self, cfg: ChatterboxConfig):
        super().__init__()
        self.cfg = cfg
        self.t3 = T3(cfg.t3)
        self.s3gen = S3Gen(cfg.s3gen)
        self.ve = VoiceEncoder(cfg.ve)


def missing_files(folder: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


def load_chatterbox(folder: str | Path) -> Chatterbox:
    """Build on the meta device from header shapes, then fill every tensor from the files (CPU, fp32)."""
    folder = Path(folder)
    missing = missing_files(folder)
    if missing:
        raise ModelNotAvailableError(
            f"Chatterbox checkpoint in {folder} is incomplete: missing {', '.join(missing)}; "
            "run 'tts-turbo models download chatterbox'"
        )
    cfg = ChatterboxConfig.from_folder(folder)
    model = build_on_meta(lambda: Chatterbox(cfg))
    load_module(model.t3, folder / T3_FILE, ignore=T3_IGNORED)
    load_module(model.s3gen, folder / S3GEN_FILE, optional=S3GEN_OPTIONAL)
    load_module(model.ve, folder / VE_FILE, ignore=VE_IGNORED)
    return model.eval().requires_grad_(False)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

