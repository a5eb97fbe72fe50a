"""`AdvancedTTSOptimizer`: applies an `OptimizationConfig` to a model and owns what it creates
(precision plan, CUDA graphs, buffer pool, pinned staging, voice-embedding cache) and the stats.

Every requested optimization that cannot apply is recorded as a fallback with its reason and shown
by `get_stats()` and the UI: nothing degrades silently.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch

from . import runtime
from .buffers import BufferPool, PinnedStaging
from .config import OptimizationConfig
from .graphs import GraphRunner, GraphStats
from .models.base import TTSModel
from .paths import cache_root
from .precision import PrecisionManager

log = logging.getLogger(__name__)


class AdvancedTTSOptimizer:
    def __init__(self, config: OptimizationConfig | None = None, device: str | torch.device | None = None, voice_cache_size: int = 8):
        from .registry import resolve_device

        self.config = config or OptimizationConfig()
        self.device = resolve_device(device or "auto")
        self.precision_manager = PrecisionManager(self.config, self.device)
        self.pool = BufferPool(self.device)
        self.staging = PinnedStaging()
        self.graphs: GraphRunner | None = None
        self.fallbacks: list[str] = []
        self.model_stats: dict[str, Any] = {}
        self.optimize_s = 0.0
        self.threads = runtime.apply_threads(self.config.num_threads)
        self.voice_cache: OrderedDict[str, Any] = OrderedDict()
        self.voice_cache_size = voice_cache_size
        self.voice_hits = 0
        self.voice_misses = 0
        self._model: TTSModel | None = None

    # ---- applying a config ----

    def optimize_model(self, model: TTSModel) -> TTSModel:
        """Apply `self.config` to `model` in place (re-optimizing from its fp32 reference state)."""
        start = time.perf_counter()
        self.clear_caches()
        self.fallbacks.clear()
        self.model_stats.clear()
        self.precision_manager = PrecisionManager(self.config, self.device)
        self.threads = runtime.apply_threads(self.config.num_threads)
        if self.device.type == "cuda":
            runtime.apply_tf32(self.config.enable_tf32)
        model.optimize(self)
        for note in self.precision_manager.notes:
            self.record_fallback("precision", note)
        self._model = model
        self.optimize_s = time.perf_counter() - start
        return model

    def record_fallback(self, feature: str, reason: str) -> None:
        message = f"{feature}: {reason}"
        if message not in self.fallbacks:
            self.fallbacks.append(message)
            log.warning("optimization fallback — %s", message)

    def set_stat(self, key: str, value: Any) -> None:
        self.model_stats[key] = value

    def graph_runner(self) -> GraphRunner:
        if self.graphs is None:
            self.graphs = GraphRunner(self.device, self.config.graph_warmup_iters, self.record_fallback)
        return self.graphs

    # ---- buffers (product API) ----

    def get_buffer(self, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.pool.get_buffer(tuple(shape), dtype)

    def return_buffer(self, buf: torch.Tensor) -> None:
        self.pool.return_buffer(buf)

    # ---- voice embeddings ----

    def get_voice_embedding(self, audio_path: str | Path, embedding_fn: Callable[[Path], Any], model_name: str) -> Any:
        """Embedding of a reference recording, computed once per (file content, model).

        Keyed by the SHA-256 of the file's bytes, so a renamed copy hits and an edited file
        misses. Kept LRU-bounded in memory (on the device) and persisted with torch.save.
        """
        path = Path(audio_path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = f"{model_name}:{digest}"
        if key in self.voice_cache:
            self.voice_cache.move_to_end(key)
            self.voice_hits += 1
            return self.voice_cache[key]
        disk = voice_cache_dir() / model_name / f"{digest}.pt"
        value = None
        if disk.is_file():
            try:
                value = _to_device(torch.load(disk, map_location="cpu", weights_only=True), self.device)
            except Exception as exc:  # a damaged entry is recomputed
                log.warning("ignoring damaged voice cache entry %s: %s", disk, exc)
        if value is None:
            self.voice_misses += 1
            value = embedding_fn(path)
            tmp = disk.with_name(f"{disk.name}.{os.getpid()}.tmp")
            try:
                disk.parent.mkdir(parents=True, exist_ok=True)
                torch.save(_to_device(value, torch.device("cpu")), tmp)
                os.replace(tmp, disk)
            except Exception as exc:  # persisting is a cache: the embedding is still returned
                log.warning("could not persist voice embedding %s: %s", disk, exc)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            self.voice_hits += 1
        self.voice_cache[key] = value
        while len(self.voice_cache) > self.voice_cache_size:
            self.voice_cache.popitem(last=False)
        return value

    # ---- housekeeping ----

    def clear_caches(self) -> None:
        """Release graphs, the buffer pool, pinned staging and cached embeddings."""
        if self.graphs is not None:
            self.graphs.clear()
            self.graphs = None
        self.pool.clear()
        self.staging.clear()
        self.voice_cache.clear()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            if hasattr(torch._C, "_host_emptyCache"):  # pinned blocks cached by torch's host allocator (a lone sentence's audio is one)
                torch._C._host_emptyCache()

    def get_stats(self) -> dict[str, Any]:
        model = self._model
        return {
            "config": self.config.to_dict(),
            "summary": self.config.summary(),
            "device": str(self.device),
            "threads": self.threads,
            "tf32": self.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32,
            "precision": self.precision_manager.describe(model.model) if model is not None and hasattr(model, "model") else {},
            "graphs": (self.graphs.stats if self.graphs is not None else GraphStats()).as_dict(),
            "pool": self.pool.stats.as_dict(),
            "pinned_bytes": self.staging.bytes,
            "voice_cache": {"entries": len(self.voice_cache), "hits": self.voice_hits, "misses": self.voice_misses},
            "fallbacks": list(self.fallbacks),
            "memory": runtime.memory_snapshot(self.device),
            "optimize_s": round(self.optimize_s, 3),
            "model": dict(self.model_stats),
        }


def voice_cache_dir() -> Path:
    return cache_root() / "voices"


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value
