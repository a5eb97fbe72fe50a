"""Runs test_gpu.py's checks without pytest (the GPU machine may lack it): python3 tests/chatterbox/run_gpu_checks.py"""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_gpu
import torch
from conftest import FakeOptimizer

from engine.models.chatterbox.random_checkpoint import random_model, tiny_config


def main() -> int:
    model = random_model(tiny_config(), seed=7, device=test_gpu.CUDA)
    checks = [
        ("t3_graph_replay_equals_eager", lambda: test_gpu.test_t3_graph_replay_equals_eager(model)),
        ("flow_graph_replay_equals_eager", lambda: test_gpu.test_flow_graph_replay_equals_eager(model)),
        ("optimized_pipeline_bf16_graphs",
         lambda: test_gpu.test_optimized_pipeline_bf16_graphs(Path(tempfile.mkdtemp()), FakeOptimizer)),
    ]
    failed = 0
    for name, fn in checks:
        try:
            fn()
            print(f"PASS {name}")
        except Exception:  # noqa: BLE001 - report every check, then fail the run
            failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}")
    return failed


if __name__ == "__main__":
    torch.backends.cuda.matmul.allow_tf32 = False
    sys.exit(main())
