"""The three Chatterbox networks together, built from checkpoint shapes and loaded strictly.

`Chatterbox` holds modules only; `load_chatterbox` reads the official folder layouts: standard
(`t3_cfg.safetensors`, `s3gen.safetensors`, `ve.safetensors`, `tokenizer.json`, `conds.pt`) and
Turbo (`t3_turbo_v1.safetensors`, `s3gen_meanflow.safetensors`, `ve.safetensors`, GPT-2
`vocab.json` + `merges.txt` (+ `added_tokens.json`), `conds.pt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ...errors import ModelNotAvailableError
from .checkpoint import build_on_meta, load_module, read_header
from .s3gen import S3GEN_OPTIONAL, S3Gen, S3GenConfig
from .t3 import T3, T3Config
from .t3_turbo import T3Turbo, TurboConfig
from .voice_encoder import VE_IGNORED, VoiceEncoder, VoiceEncoderConfig

T3_FILE, S3GEN_FILE, VE_FILE, TOKENIZER_FILE, CONDS_FILE = (
    "t3_cfg.safetensors", "s3gen.safetensors", "ve.safetensors", "tokenizer.json", "conds.pt",
)
REQUIRED_FILES = (T3_FILE, S3GEN_FILE, VE_FILE, TOKENIZER_FILE, CONDS_FILE)
T3_IGNORED = {"tfmr.embed_tokens.weight"}  # the Llama's own token table; T3 feeds embeddings directly
TURBO_T3_FILE, TURBO_S3GEN_FILE = "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"
TURBO_TOKENIZER_FILES = ("vocab.json", "merges.txt")
TURBO_REQUIRED_FILES = (TURBO_T3_FILE, TURBO_S3GEN_FILE, VE_FILE, *TURBO_TOKENIZER_FILES, CONDS_FILE)
TURBO_T3_IGNORED = {"tfmr.wte.weight"}  # GPT-2's token table: loaded then deleted by the reference


def _turbo_optional(n_layers: int) -> set[str]:
    """Causal-mask buffers some GPT-2 versions saved with the weights; rebuilt by SDPA's causal flag."""
    return {f"tfmr.h.{i}.attn.{b}" for i in range(n_layers) for b in ("bias", "masked_bias")}


@dataclass(frozen=True)
class ChatterboxConfig:
    t3: T3Config | TurboConfig
    s3gen: S3GenConfig
    ve: VoiceEncoderConfig

    @property
    def turbo(self) -> bool:
        return isinstance(self.t3, TurboConfig)

    @classmethod
    def from_folder(cls, folder: Path) -> ChatterboxConfig:
        if is_turbo_folder(folder):
            t3: T3Config | TurboConfig = TurboConfig.from_header(read_header(folder / TURBO_T3_FILE))
            s3 = S3GenConfig.from_header(read_header(folder / TURBO_S3GEN_FILE))
        else:
            t3 = T3Config.from_header(read_header(folder / T3_FILE))
            s3 = S3GenConfig.from_header(read_header(folder / S3GEN_FILE))
        return cls(t3=t3, s3gen=s3, ve=VoiceEncoderConfig.from_header(read_header(folder / VE_FILE)))


class Chatterbox(nn.Module):
    def __init__(self, cfg: ChatterboxConfig):
        super().__init__()
        self.cfg = cfg
        self.t3 = T3Turbo(cfg.t3) if cfg.turbo else T3(cfg.t3)
        self.s3gen = S3Gen(cfg.s3gen)
        self.ve = VoiceEncoder(cfg.ve)


def is_turbo_folder(folder: Path) -> bool:
    return (folder / TURBO_T3_FILE).is_file() and not (folder / T3_FILE).is_file()


def missing_files(folder: Path, turbo: bool | None = None) -> list[str]:
    turbo = is_turbo_folder(folder) if turbo is None else turbo
    return [name for name in (TURBO_REQUIRED_FILES if turbo else REQUIRED_FILES) if not (folder / name).is_file()]


def load_chatterbox(folder: str | Path) -> Chatterbox:
    """Build on the meta device from header shapes, then fill every tensor from the files (CPU, fp32)."""
    folder = Path(folder)
    turbo = is_turbo_folder(folder)
    missing = missing_files(folder, turbo)
    if missing:
        name = "chatterbox-turbo" if turbo else "chatterbox"
        raise ModelNotAvailableError(
            f"Chatterbox checkpoint in {folder} is incomplete: missing {', '.join(missing)}; "
            f"run 'tts-turbo models download {name}'"
        )
    cfg = ChatterboxConfig.from_folder(folder)
    model = build_on_meta(lambda: Chatterbox(cfg))
    if turbo:
        load_module(model.t3, folder / TURBO_T3_FILE, ignore=TURBO_T3_IGNORED, optional=_turbo_optional(cfg.t3.n_layers))
        load_module(model.s3gen, folder / TURBO_S3GEN_FILE, optional=S3GEN_OPTIONAL)
    else:
        load_module(model.t3, folder / T3_FILE, ignore=T3_IGNORED)
        load_module(model.s3gen, folder / S3GEN_FILE, optional=S3GEN_OPTIONAL)
    load_module(model.ve, folder / VE_FILE, ignore=VE_IGNORED)
    return model.eval().requires_grad_(False)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

