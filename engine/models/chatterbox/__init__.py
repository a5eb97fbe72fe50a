"""Chatterbox (Resemble AI): T3 Llama text→speech-token model + S3Gen flow decoder + HiFT vocoder.

Clean-room modules that load the official `ResembleAI/chatterbox` checkpoint strictly and decode
with a static KV cache and CUDA graphs. Public here: `FAMILY` for the registry, `checkpoint_status`
and `download` for the CLI/GUI, `load` to build a `ChatterboxTTS`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import ModelNotAvailableError
from ...registry import Family
from .download import ENV_DIRS, REPOS, checkpoint_status, download, find_checkpoint
from .model import T3_FILE, TURBO_T3_FILE

__all__ = ["FAMILY", "checkpoint_status", "download", "load", "matches"]


NAMES = ("chatterbox", "chatterbox-turbo")


def matches(spec: str) -> bool:
    """'chatterbox' / 'chatterbox-turbo' (any case) or a folder holding t3_cfg / t3_turbo_v1 safetensors."""
    if spec.strip().lower() in NAMES:
        return True
    path = Path(spec)
    return path.is_dir() and ((path / T3_FILE).is_file() or (path / TURBO_T3_FILE).is_file())


def load(spec: str, device: torch.device):
    from .model import CONDS_FILE, TOKENIZER_FILE, load_chatterbox
    from .tokenizer import EnTokenizer, GPT2Tokenizer
    from .tts import ChatterboxTTS
    from .voice import load_conds

    name = spec.strip().lower()
    variant = "turbo" if name == "chatterbox-turbo" else "standard"
    folder = find_checkpoint(None if name in NAMES else spec, variant=variant)
    if folder is None:
        raise ModelNotAvailableError(
            f"Chatterbox weights are not downloaded ({REPOS[variant]}); run 'tts-turbo models download "
            f"{NAMES[variant == 'turbo']}' or set {ENV_DIRS[variant]} to a folder with the checkpoint files"
        )
    model = load_chatterbox(folder)
    tokenizer = GPT2Tokenizer(folder) if model.cfg.turbo else EnTokenizer(folder / TOKENIZER_FILE)
    return ChatterboxTTS(model, tokenizer, load_conds(folder / CONDS_FILE), torch.device(device), path=folder,
                         name="chatterbox-turbo" if model.cfg.turbo else "chatterbox")


FAMILY = Family(
    name="chatterbox",
    matches=matches,
    load=load,
    description="Chatterbox (Resemble AI): zero-shot voice cloning, 24 kHz, English; 'chatterbox-turbo' for Turbo",
)
