"""Piper voice catalog and downloads from the Hugging Face `rhasspy/piper-voices` repository.

The catalog is the repository's `voices.json`; a copy is kept beside the downloaded voices so the
browser still lists voices offline. Downloads go through `huggingface_hub` with a progress callback
and land as `<voices_dir>/<key>/<key>.onnx` + `.onnx.json`, which `load_model(path)` accepts.
Every network failure becomes `ModelNotAvailableError` with a message a user can act on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

from .errors import InputError, ModelNotAvailableError

VOICES_REPO = "rhasspy/piper-voices"
CATALOG_FILE = "voices.json"
DEFAULT_ENDPOINT = "https://huggingface.co"

ProgressCallback = Callable[[int, int], None]
"""progress(done_bytes, total_bytes) for the whole voice (model + config)."""


@dataclass(frozen=True)
class VoiceEntry:
    """One downloadable voice as listed in `voices.json`."""

    key: str
    name: str
    language_code: str
    language_name: str
    quality: str
    num_speakers: int
    files: dict[str, int] = field(default_factory=dict)
    """Repository path → size in bytes."""

    @property
    def model_file(self) -> str:
        return next(p for p in self.files if p.endswith(".onnx"))

    @property
    def config_file(self) -> str:
        return self.model_file + ".json"

    @property
    def download_bytes(self) -> int:
        return self.files.get(self.model_file, 0) + self.files.get(self.config_file, 0)


def voices_dir() -> Path:
    """Where downloaded voices live: $TTS_TURBO_VOICES, else the per-user data directory."""
    override = os.environ.get("TTS_TURBO_VOICES")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "TTSTurbo"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "tts-turbo"
    return base / "voices"


def parse_catalog(data: dict[str, Any]) -> list[VoiceEntry]:
    """`voices.json` content → entries sorted by language then name; entries without a model are skipped."""
    entries = []
    for key, item in data.items():
        files = {path: int(meta.get("size_bytes", 0)) for path, meta in item.get("files", {}).items()}
        if not any(p.endswith(".onnx") for p in files):
            continue
        language = item.get("language", {})
        entries.append(
            VoiceEntry(
                key=key,
                name=item.get("name", key),
                language_code=language.get("code", ""),
                language_name=_language_label(language),
                quality=item.get("quality", ""),
                num_speakers=int(item.get("num_speakers", 1)),
                files=files,
            )
        )
    return sorted(entries, key=lambda e: (e.language_code, e.name, e.quality))


def fetch_catalog(directory: Path | None = None, timeout: float = 4.0) -> list[VoiceEntry]:
    """Download `voices.json` (or reuse the cached copy when offline) and parse it."""
    directory = directory or voices_dir()
    cached = directory / CATALOG_FILE
    try:
        _require_hub(timeout)
        path = _hub_download(CATALOG_FILE, directory / ".download", timeout=timeout)
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, cached)
    except ModelNotAvailableError:
        if not cached.is_file():
            raise
    return parse_catalog(json.loads(cached.read_text(encoding="utf-8")))


def installed_voices(directory: Path | None = None) -> list[Path]:
    """Downloaded voices: every `.onnx` with its `.onnx.json` beside it."""
    directory = directory or voices_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*/*.onnx") if p.with_suffix(".onnx.json").is_file())


def download_voice(
    entry: VoiceEntry,
    directory: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 4.0,
) -> Path:
    """Fetch a voice's model and config; returns the local `.onnx` path (no network if already present)."""
    target = (directory or voices_dir()) / entry.key
    model_path = target / Path(entry.model_file).name
    if model_path.is_file() and model_path.with_suffix(".onnx.json").is_file():
        return model_path
    _require_hub(timeout)
    total = entry.download_bytes
    done = 0
    for repo_path in (entry.config_file, entry.model_file):
        if cancel is not None and cancel.is_set():
            raise ModelNotAvailableError(f"download of {entry.key} was cancelled")
        reporter = _progress_class(progress, done, total, cancel) if progress else None
        local = _hub_download(repo_path, target / ".download", timeout=timeout, tqdm_class=reporter)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target / Path(repo_path).name)
        done += entry.files.get(repo_path, 0)
        if progress:
            progress(done, total)
    shutil.rmtree(target / ".download", ignore_errors=True)
    return model_path


def find_entry(entries: Iterable[VoiceEntry], key: str) -> VoiceEntry:
    for entry in entries:
        if entry.key == key:
            return entry
    raise InputError(f"no Piper voice named {key!r} in the catalog")


def hub_reachable(timeout: float = 4.0) -> bool:
    """A TCP connect to the hub's host; DNS failures return at once instead of after HF's retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _require_hub(timeout: float) -> None:
    if not hub_reachable(timeout):
        raise ModelNotAvailableError(
            "Cannot reach Hugging Face (huggingface.co) to list or download Piper voices: you appear "
            "to be offline or behind a firewall. Voices already downloaded still work, and any Piper "
            ".onnx file can be opened with 'Open voice…'."
        )


def _hub_download(repo_path: str, local_dir: Path, timeout: float, tqdm_class: type | None = None) -> str:
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(
            VOICES_REPO, repo_path, local_dir=local_dir, etag_timeout=timeout, tqdm_class=tqdm_class
        )
    except Exception as exc:  # huggingface_hub raises many network/HTTP types; all mean "not available"
        raise ModelNotAvailableError(
            f"Downloading {repo_path} from {VOICES_REPO} failed: {exc}. Check the connection and retry."
        ) from exc


def _progress_class(callback: ProgressCallback, offset: int, total: int, cancel: threading.Event | None) -> type:
    """A tqdm stand-in for `hf_hub_download` that forwards byte counts to `callback`.

    Xet downloads open two bars (network and disk) over the same bytes, so the furthest one is reported.
    """
    from tqdm import tqdm

    furthest = [0]

    class _Progress(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "disable": False, "file": _NullWriter()})

        def update(self, n: float | None = 1) -> bool | None:
            if cancel is not None and cancel.is_set():
                raise ModelNotAvailableError("download cancelled")
            shown = super().update(n)
            furthest[0] = max(furthest[0], int(self.n))
            callback(min(offset + furthest[0], total), total)
            return shown

    return _Progress


class _NullWriter:
    def write(self, _text: str) -> None:
        return None

    def flush(self) -> None:
        return None


def _language_label(language: dict[str, Any]) -> str:
    name = language.get("name_english") or language.get("code", "")
    country = language.get("country_english")
    return f"{name} ({country})" if country else name
