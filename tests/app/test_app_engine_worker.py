"""What the engine worker hands across the thread boundary."""

import numpy as np
import torch

from app.engine_worker import _owned


def test_audio_kept_in_the_run_history_owns_its_memory():
    """The engine may hand out audio over a tensor's memory (a lone sentence's lies in the pinned
    block it was copied to): the history keeps a copy of that, and numpy's own arrays as they are."""
    over_tensor = torch.arange(8, dtype=torch.float32).numpy()
    kept = _owned(over_tensor)
    assert np.array_equal(kept, over_tensor) and not np.shares_memory(kept, over_tensor)
    assert not np.shares_memory(_owned(over_tensor[2:]), over_tensor)
    plain = np.zeros(8, np.float32)
    view = plain[2:]
    assert _owned(plain) is plain and _owned(view) is view
