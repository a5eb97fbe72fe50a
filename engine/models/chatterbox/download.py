"""Finding and fetching the official checkpoints (`ResembleAI/chatterbox`, `ResembleAI/chatterbox-turbo`).

Lookup order: an explicit folder, `$TTS_TURBO_CHATTERBOX_DIR`, then the Hugging Face cache (read
offline). Downloads fetch only the five files the engine uses; every failure becomes a
`ModelNotAvailableError` that names the missing files and the command that fetches them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import ModelNotAvailableError
from .model import REQUIRED_FILES, TURBO_REQUIRED_FILES, missing_files

REPOS = {"standard": "ResembleAI/chatterbox", "turbo": "ResembleAI/chatterbox-turbo"}
ENV_DIRS = {"standard": "TTS_TURBO_CHATTERBOX_DIR", "turbo": "TTS_TURBO_CHATTERBOX_TURBO_DIR"}
REPO_ID, ENV_DIR = REPOS["standard"], ENV_DIRS["standard"]
_FILES = {"standard": REQUIRED_FILES, "turbo": TURBO_REQUIRED_FILES}
_PATTERNS = {"standard": list(REQUIRED_FILES), "turbo": [*TURBO_REQUIRED_FILES, "added_tokens.json"]}


def _hint(variant: str) -> str:
    name = "chatterbox-turbo" if variant == "turbo" else "chatterbox"
    return f"run 'tts-turbo models download {name}' (needs network access to huggingface.co)"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _cached_snapshot(cache_dir: str | Path | None, variant: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(REPOS[variant], allow_patterns=_PATTERNS[variant], local_files_only=True,
                                      cache_dir=cache_dir))
    except Exception:  # noqa: BLE001 - any hub error here means "not in the local cache"
        return None


def find_checkpoint(path: str | Path | None = None, cache_dir: str | Path | None = None,
                    variant: str = "standard") -> Path | None:
    if path is not None:
        return Path(path)
    if os.environ.get(ENV_DIRS[variant]):
        return Path(os.environ[ENV_DIRS[variant]])
    return _cached_snapshot(cache_dir, variant)


def checkpoint_status(path: str | Path | None = None, cache_dir: str | Path | None = None,
                      variant: str = "standard") -> dict[str, Any]:
    """{ready, path, missing}: what the GUI shows next to Chatterbox (no network access)."""
    folder = find_checkpoint(path, cache_dir, variant)
    if folder is None:
        return {"ready": False, "path": None, "missing": list(_FILES[variant])}
    missing = missing_files(folder, variant == "turbo" or None)
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
            # huggingface_hub drives several bars through this class (file bytes, network bytes,
            # a file count); only the file-bytes bar is a meaningful progress for the caller
            if self.unit == "B" and not str(self.desc).startswith("Downloading bytes"):
                progress(int(self.n), int(self.total or 0))
            return out

    return _Callback


def download(progress: Any = None, cache_dir: str | Path | None = None, variant: str = "standard") -> Path:
    """Fetch the checkpoint files into the Hugging Face cache (progress: True, a tqdm class or a callback)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError("huggingface_hub is not installed: pip install huggingface_hub") from exc
    repo = REPOS[variant]
    kwargs: dict[str, Any] = {"allow_patterns": _PATTERNS[variant], "cache_dir": cache_dir}
    bar = _progress_class(progress)
    if bar is not None:
        kwargs["tqdm_class"] = bar
    try:
        folder = Path(snapshot_download(repo, local_files_only=_offline(), **kwargs))
    except Exception as exc:  # offline, DNS, HTTP, disk: all reported the same actionable way
        status = checkpoint_status(cache_dir=cache_dir, variant=variant)
        reason = "offline mode (HF_HUB_OFFLINE=1) and not in the cache" if _offline() else f"{type(exc).__name__}: {exc}"
        raise ModelNotAvailableError(
            f"cannot get {repo}: {reason}. Missing: {', '.join(status['missing'])}. "
            f"To fix: {_hint(variant)}, or put the files in a folder and set {ENV_DIRS[variant]} to it."
        ) from exc
    missing = missing_files(folder, variant == "turbo")
    if missing:
        raise ModelNotAvailableError(f"{repo} download incomplete, missing {', '.join(missing)}; {_hint(variant)}")
    return folder
