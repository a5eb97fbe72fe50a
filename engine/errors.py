"""Errors with messages a user can act on. The CLI maps `InputError` to exit code 2."""


class TTSError(Exception):
    """Base class for every error the engine raises on purpose."""


class InputError(TTSError, ValueError):
    """Bad input from the user: text, options, paths. CLI exit code 2."""


class VoiceLoadError(InputError):
    """A voice or checkpoint file is missing, corrupt or inconsistent."""


class ModelNotAvailableError(InputError):
    """Weights are not on disk (and could not be downloaded)."""


class SynthesisCancelled(TTSError):
    """The caller's cancel event was set during synthesis."""


class DeviceOutOfMemory(TTSError):
    """The GPU ran out of memory; the message says how much was free and what to change."""


def brief(exc: BaseException) -> str:
    """An error as "Type: first line", for fallback notes that must fit one line of the UI."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
