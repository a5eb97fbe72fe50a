import subprocess
import sys

LEAK_PROBE = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
{shield}
from PySide6.QtWidgets import QApplication, QCheckBox
app = QApplication([])
box = QCheckBox()
before = sys.getrefcount(None)
for _ in range(1000):
    box.setEnabled(True)
print(before - sys.getrefcount(None))
"""


def _dropped(shield: str) -> int:
    code = LEAK_PROBE.format(shield=shield)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_shield_keeps_pyside_refcount_drift_harmless():
    import app  # noqa: F401 - importing the package applies the shield
    from app.qt_compat import BUDGET

    if sys.version_info >= (3, 12):
        return
    assert sys.getrefcount(None) > BUDGET // 2
    assert _dropped("import app") >= 0
