"""Which optimization toggles and speech knobs apply here, and which preset a config matches. Qt-free.

Inputs are plain dicts from the worker (`engine.runtime.device_info()` plus a compiler probe) or a
voice spec, so a panel can grey a control out with the reason instead of the engine ignoring it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GPU_ONLY = ("enable_fp16", "enable_cuda_graphs", "pin_memory", "enable_tf32")

PRESET_UNOPTIMIZED = "Unoptimized (fp32 eager)"
PRESET_MAX_SPEED = "Max speed"
PRESET_CUSTOM = "Custom"
PRESET_NAMES = (PRESET_UNOPTIMIZED, PRESET_MAX_SPEED, PRESET_CUSTOM)


def resolve_device(device_info: dict[str, Any] | None, choice: str) -> str:
    """'auto' → 'cuda:0' when torch sees a GPU, else 'cpu'; explicit choices pass through."""
    if choice == "auto":
        return "cuda:0" if device_info and device_info.get("cuda_available") else "cpu"
    return choice


def unavailable_reasons(device_info: dict[str, Any] | None, choice: str) -> dict[str, str]:
    """Field name → why it cannot apply with this device choice (fields that can apply are absent)."""
    if device_info is None:
        pending = (*GPU_ONLY, "enable_bf16", "enable_compile", "enable_fused_kernels")
        return {name: "Checking what this machine supports…" for name in pending}
    device = resolve_device(device_info, choice)
    reasons: dict[str, str] = {}
    if not device.startswith("cuda"):
        why = (
            f"Needs a CUDA GPU: this torch build ({device_info.get('torch_version', '?')}) has no CUDA."
            if not device_info.get("cuda_available")
            else "Needs a CUDA GPU: the CPU device is selected."
        )
        reasons.update({name: why for name in GPU_ONLY})
        if not device_info.get("compiler_available", True):
            reasons["enable_compile"] = "torch.compile on the CPU needs a C++ compiler; none was found on PATH."
        return reasons
    gpu = _gpu(device_info, device)
    if gpu is not None and not gpu.get("bf16", False):
        reasons["enable_bf16"] = f"{gpu.get('name', 'This GPU')} has no native bf16 (needs compute capability 8.0+)."
    if not device_info.get("triton_available"):
        reasons["enable_compile"] = (
            "torch.compile on the GPU needs triton, which is not installed (Windows: triton-windows)."
        )
        reasons["enable_fused_kernels"] = (
            "The fused GPU kernels are written in Triton, which is not installed (Windows: triton-windows)."
        )
    return reasons


def applicable_config(config: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """The config the engine should get: toggles that cannot apply here are switched off."""
    return {k: (False if k in reasons and isinstance(v, bool) else v) for k, v in config.items()}


def matching_preset(config: dict[str, Any], presets: dict[str, dict[str, Any]]) -> str:
    for name, values in presets.items():
        if all(config.get(k) == v for k, v in values.items()):
            return name
    return PRESET_CUSTOM


def device_label(device_info: dict[str, Any] | None, device: str) -> str:
    """'cuda:0' → 'CUDA 0 · NVIDIA H100'; 'cpu' → 'CPU'."""
    if not device.startswith("cuda"):
        return "CPU"
    gpu = _gpu(device_info or {}, device)
    index = device.partition(":")[2] or "0"
    return f"CUDA {index} · {gpu['name']}" if gpu else f"CUDA {index}"


def _gpu(device_info: dict[str, Any], device: str) -> dict[str, Any] | None:
    index = int(device.partition(":")[2] or 0)
    return next((d for d in device_info.get("devices", []) if d.get("index") == index), None)


CHATTERBOX_VOICES = {"chatterbox": "standard", "chatterbox-turbo": "turbo"}
"""The built-in Chatterbox voice specs the picker lists → checkpoint variant."""
CHATTERBOX_LABELS = {"chatterbox": "Chatterbox", "chatterbox-turbo": "Chatterbox Turbo"}
CHATTERBOX_T3_FILES = {"standard": "t3_cfg.safetensors", "turbo": "t3_turbo_v1.safetensors"}
"""The file that marks a checkpoint folder (engine.models.chatterbox.model names; not imported: no torch here)."""
CHATTERBOX_KNOBS = (
    # key, label, minimum, maximum, step, default, tooltip
    ("exaggeration", "Exaggeration", 0.0, 2.0, 0.05, 0.5, "Emotion intensity: 0.5 is neutral, higher is livelier."),
    ("cfg_weight", "CFG weight", 0.0, 1.0, 0.05, 0.5, "Guidance toward text and voice: lower is looser pacing."),
    ("temperature", "Temperature", 0.05, 2.0, 0.05, 0.8, "Sampling randomness: lower is steadier, higher varied."),
)
CHATTERBOX_DEFAULTS: dict[str, Any] = {key: default for key, *_, default, _tip in CHATTERBOX_KNOBS} | {"voice_path": ""}
TURBO_UNUSED = {
    "exaggeration": "Chatterbox Turbo has no exaggeration control.",
    "cfg_weight": "Chatterbox Turbo decodes without classifier-free guidance.",
}
PIPER_ONLY = {
    "speaker_id": "Piper only: Chatterbox speaks with its built-in voice or the Reference voice.",
    "length_scale": "Piper only: Chatterbox has no speed control.",
    "noise_scale": "Piper only: Chatterbox samples with Temperature instead.",
    "noise_w": "Piper only: Chatterbox has no duration predictor.",
}


def chatterbox_variant(spec: str) -> str | None:
    """'standard' / 'turbo' for a Chatterbox voice (built-in name or checkpoint folder), None for Piper."""
    name = spec.strip().lower()
    if name in CHATTERBOX_VOICES:
        return CHATTERBOX_VOICES[name]
    if name in ("", "default") or name.endswith(".onnx"):
        return None
    folder = Path(spec)
    return next((v for v, file in CHATTERBOX_T3_FILES.items() if (folder / file).is_file()), None)


def chatterbox_extra(options: dict[str, Any], variant: str) -> dict[str, Any]:
    """`SynthesisOptions.extra` for this variant: Turbo's unused knobs stay at its own defaults (0)."""
    extra = {
        key: float(options.get(key, default))
        for key, *_, default, _tip in CHATTERBOX_KNOBS
        if not (variant == "turbo" and key in TURBO_UNUSED)
    }
    if options.get("voice_path"):
        extra["voice_path"] = str(options["voice_path"])
    return extra
