"""Workaround for a PySide6 6.12 reference-count bug on Python < 3.12.

The 6.12 abi3 wheels hand back `None`/`True`/`False` without taking a reference: every void Qt call
(`setEnabled`, `setChecked`, …) drops one reference to `None` and every signal `emit()` one to
`True`. From Python 3.12 these singletons are immortal and nothing happens; on 3.11 their counts
drift down until the interpreter aborts with "Fatal Python error: none_dealloc" (usually at exit,
after a long session even mid-run). Giving each singleton a reference budget no session can spend
makes the drift harmless. `tests/app/test_app_qt_compat.py` shows the leak and the cure.
"""

from __future__ import annotations

import ctypes
import sys

BUDGET = 1 << 40


def shield_singletons() -> bool:
    """Raise the counts of None/True/False once; True when applied (Python < 3.12 only)."""
    if sys.version_info >= (3, 12) or getattr(sys, "_tts_turbo_singletons_shielded", False):
        return False
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += BUDGET
    sys._tts_turbo_singletons_shielded = True
    return True
