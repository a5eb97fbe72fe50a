"""Installer tests: make installer/ and installer/bootstrap/ importable; register the installer_full marker.

installer_full tests download the real Windows payload from PyPI (~360 MB) and compile it (minutes); they
run only when TTS_TURBO_INSTALLER_FULL=1, so a plain `pytest` stays fast and offline.
"""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for p in (REPO / "installer", REPO / "installer" / "bootstrap"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def pytest_configure(config):
    config.addinivalue_line("markers", "installer_full: builds the real Windows payload from PyPI (slow, network)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TTS_TURBO_INSTALLER_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="set TTS_TURBO_INSTALLER_FULL=1 to build the real payload (network, minutes)")
    for item in items:
        if "installer_full" in item.keywords:
            item.add_marker(skip)
