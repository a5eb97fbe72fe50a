"""TTS Turbo engine: neural TTS as fast as the GPU allows.

Public names are imported lazily so entry points can set thread and allocator environment
variables (`engine.runtime.configure_environment`) before torch is first imported.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "OptimizationConfig": "engine.config",
    "SynthesisOptions": "engine.config",
    "AdvancedTTSOptimizer": "engine.optimizer",
    "OptimizedTTSWrapper": "engine.wrapper",
    "load_model": "engine.registry",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
