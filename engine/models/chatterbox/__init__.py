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
from .download import ENV_DIR, REPO_ID, checkpoint_status, download, find_checkpoint
from .model import T3_FILE

__all__ = ["FAMILY", "checkpoint_status", "download", "load", "matches"]


def matches(spec: str) -> bool:
    """'chatterbox' (any case) or a folder holding t3_cfg.safetensors."""
    if spec.strip().lower() == "chatterbox":
        return True
    path = Path(spec)
    return path.is_dir() and (path / T3_FILE).is_file()


def load(spec: str, device: torch.device):
    from .model import CONDS_FILE, TOKENIZER_FILE, load_chatterbox
    from .tokenizer import EnTokenizer
    from .tts import ChatterboxTTS
    from .voice import load_conds

    folder = find_checkpoint(None if spec.strip().lower() == "chatterbox" else spec)
    if folder is None:
        raise ModelNotAvailableError(
            f"Chatterbox weights are not downloaded ({REPO_ID}); run 'tts-turbo models download chatterbox' "
            f"or set {ENV_DIR} to a folder with the checkpoint files"
        )
    model = load_chatterbox(folder)
    return ChatterboxTTS(model, EnTokenizer(folder / TOKENIZER_FILE), load_conds(folder / CONDS_FILE),
                         torch.device(device), path=folder)


FAMILY = Family(
    name="chatterbox",
    matches=matches,
    load=load,
    description="Chatterbox (Resemble AI): zero-shot voice cloning, 24 kHz, English",
)
