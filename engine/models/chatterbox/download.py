"""Finding and fetching the official checkpoint (`ResembleAI/chatterbox` on the Hugging Face Hub).

Lookup order: an explicit folder, `$TTS_TURBO_CHATTERBOX_DIR`, then the Hugging Face cache (read
offline). Downloads fetch only the five files the engine uses; every failure becomes a
`ModelNotAvailableError` that names the missing files and the command that fetches them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import ModelNotAvailableError
from .model import REQUIRED_FILES, missing_files

REPO_ID = "ResembleAI/chatterbox"
ENV_DIR = "TTS_TURBO_CHATTERBOX_DIR"
DOWNLOAD_HINT = "run 'tts-turbo models download chatterbox' (needs network access to huggingface.co)"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _cached_snapshot(cache_dir: str | Path | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(REPO_ID, allow_patterns=list(REQUIRED_FILES), local_files_only=True,
                                      cache_dir=cache_dir))
    except Exception:  # noqa: BLE001 - any hub error here means "not in the local cache"
        return None


def find_checkpoint(path: str | Path | None = None, cache_dir: str | Path | None = None) -> Path | None:
    if path is not None:
        return Path(path)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    return _cached_snapshot(cache_dir)


def checkpoint_status(path: str | Path | None = None, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """{ready, path, missing}: what the GUI shows next to Chatterbox (no network access)."""
    folder = find_checkpoint(path, cache_dir)
    if folder is None:
        return {"ready": False, "path": None, "missing": list(REQUIRED_FILES)}
    missing = missing_files(folder)
    return {"ready": not missing, "path": str(folder), "missing": missing}


def _progress_class(progress: Any):
    """None/True → the hub's own tqdm bars; a tqdm class → used as is; a callable(done, total) → fed by one."""
    if progress is None or isinstance(progress, bool):
        return None
    if isinstance(progress, type):
        return progress
    from tqdm.auto import tqdm

    class _Callback(tqdm):
        def update(self, n=1):
            out = super().update(n)
            progress(int(self.n), int(self.total or 0))
            return out

    return _Callback


def download(progress: Any = None, cache_dir: str | Path | None = None) -> Path:
    """Fetch the checkpoint files into the Hugging Face cache (progress: True, a tqdm class or a callback)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError("huggingface_hub is not installed: pip install huggingface_hub") from exc
    kwargs: dict[str, Any] = {"allow_patterns": list(REQUIRED_FILES), "cache_dir": cache_dir}
    bar = _progress_class(progress)
    if bar is not None:
        kwargs["tqdm_class"] = bar
    try:
        folder = Path(snapshot_download(REPO_ID, local_files_only=_offline(), **kwargs))
    except Exception as exc:  # offline, DNS, HTTP, disk: all reported the same actionable way
        status = checkpoint_status(cache_dir=cache_dir)
        reason = "offline mode (HF_HUB_OFFLINE=1) and not in the cache" if _offline() else f"{type(exc).__name__}: {exc}"
        raise ModelNotAvailableError(
            f"cannot get {REPO_ID}: {reason}. Missing: {', '.join(status['missing'])}. "
            f"To fix: {DOWNLOAD_HINT}, or put the files in a folder and set {ENV_DIR} to it."
        ) from exc
    missing = missing_files(folder)
    if missing:
        raise ModelNotAvailableError(f"{REPO_ID} download incomplete, missing {', '.join(missing)}; {DOWNLOAD_HINT}")
    return folder
