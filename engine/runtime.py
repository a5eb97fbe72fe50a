"""Process-wide runtime facts and settings: threads, environment, devices, memory.

`configure_environment()` must run before torch is imported to have full effect (the CLI and the
app call it first thing); everything else here may import torch.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Any

from .paths import cache_root

ENV_DEFAULTS = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
RELEVANT_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TORCHINDUCTOR_CACHE_DIR",
    "TTS_TURBO_CACHE",
    "HF_HUB_OFFLINE",
    "HF_HOME",
)


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def configure_environment() -> dict[str, str]:
    """Set allocator, thread and compile-cache variables that are not already set by the user.

    Expandable segments stop fragmentation when sentence lengths vary; one OpenMP thread per
    physical core avoids hyper-thread contention in the CPU convolutions; a persistent inductor
    cache makes torch.compile's second start fast.
    """
    applied = {}
    wanted = dict(ENV_DEFAULTS)
    cores = str(physical_cores())
    wanted.update({name: cores for name in THREAD_ENV})
    wanted["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root() / "inductor")
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    return applied


def apply_threads(num_threads: int) -> int:
    """torch intra-op threads; 0 → physical cores. Returns the count in effect."""
    import torch

    count = num_threads or physical_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return torch.get_num_threads()


def apply_tf32(enabled: bool) -> bool:
    """TF32 for matmul and cuDNN conv on Ampere and newer (no effect elsewhere)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    return enabled


@lru_cache(maxsize=1)
def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


@lru_cache(maxsize=1)
def cpu_bf16_fast() -> bool:
    """Native bf16 arithmetic on this CPU (AVX512-BF16 or AMX): only then does a bf16 decoder pay."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def device_info() -> dict[str, Any]:
    """What the UI and `doctor` show: versions, GPUs, what this build can run on them."""
    import torch

    devices = []
    if torch.cuda.is_available():
        arch_list = torch.cuda.get_arch_list()
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            props = torch.cuda.get_device_properties(index)
            devices.append(
                {
                    "index": index,
                    "name": props.name,
                    "compute_capability": f"{major}.{minor}",
                    "total_memory": props.total_memory,
                    "bf16": major >= 8,
                    "arch_supported": _arch_supported(arch_list, major, minor),
                }
            )
    return {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "arch_list": torch.cuda.get_arch_list() if torch.cuda.is_available() else [],
        "devices": devices,
        "triton_available": triton_available(),
        "physical_cores": physical_cores(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_bf16_fast(),
    }


def _arch_supported(arch_list: list[str], major: int, minor: int) -> bool:
    """True when this torch build carries kernels (SASS, or PTX it can JIT) for the GPU."""
    cap = major * 10 + minor
    for arch in arch_list:
        kind, _, num = arch.partition("_")
        digits = int("".join(c for c in num if c.isdigit()) or 0)
        # SASS runs on later minor versions of the same major (sm_86 code on an sm_89 RTX 40xx);
        # arch-specific "a" variants (sm_90a) run only on their exact GPU
        if kind == "sm" and digits // 10 == major and (digits == cap or (digits % 10 <= minor and not num.endswith("a"))):
            return True
        if kind == "compute" and digits <= cap:
            return True
    return False


def memory_snapshot(device: Any) -> dict[str, int]:
    """Allocated / reserved / peak bytes on a CUDA device; zeros on the CPU.

    One read of the allocator's nested stats: `memory_allocated()` and friends each flatten the
    whole statistics tree, ~0.3 ms apiece, which was a sixth of a short sentence's synthesis."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return {"allocated": 0, "reserved": 0, "peak": 0}
    stats = torch.cuda.memory_stats_as_nested_dict(dev)
    if not stats:  # CUDA not initialised yet: nothing allocated
        return {"allocated": 0, "reserved": 0, "peak": 0}
    return {
        "allocated": stats["allocated_bytes"]["all"]["current"],
        "reserved": stats["reserved_bytes"]["all"]["current"],
        "peak": stats["allocated_bytes"]["all"]["peak"],
    }


def sync(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
