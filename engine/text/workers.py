"""espeak in worker processes: a long text's chunks phonemized in parallel, beside synthesis.

espeak-ng is single-threaded and keeps global state, and a thread running it competes with the
synthesis thread for the GIL (on the GPU machine a 10,000-character chapter took 58 ms of espeak,
of which a front-end thread hid only 9 ms behind the GPU). Worker processes share neither: each
loads espeak once (and no torch: `text.sentences`), chunks (paragraphs of ≤ 2,000 characters) go
out to them in order and come back in order as each is done, already as model ids, so the first
sentences are synthesized while later paragraphs are still being phonemized.

The workers are plain child processes (`python -m engine.text.workers`) speaking length-prefixed
pickles over their stdin/stdout, not `multiprocessing`: a spawned multiprocessing child re-runs
the parent's main script, and a user's script that calls the engine without a `__main__` guard
would run again in every worker. They start in the background at the first long text (which is
phonemized here meanwhile). A short text of several clauses uses them too, the other way round:
its clause groups are phonemized at once, here and in the workers (`phonemize_spread`), so a
sentence waits for its longest clause rather than for all of them. Any failure to start or a
worker that dies means phonemizing in this process, with a warning.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from itertools import chain
from typing import Any, Callable, Iterable, Iterator, TypeVar

from ..errors import brief
from .phonemize import clause_groups, clauses, joins_cleanly, phonemize, sentences_of

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_WORKERS = 16
"""Each worker holds ~20 MB. Chunks go out round-robin, so a chapter's 20 paragraphs cost the
busiest of 8 workers three paragraphs of espeak (~9 ms on the GPU host), of 10 or more two; the
call waited ~6 ms for them after its first sentence (run AO)."""
SPIN_S = 0.01
"""How long a worker polls for its next request after answering one, before it blocks. A process
blocked in a read sleeps, and its core with it; woken for the next sentence, it answers later and
runs espeak slower (run AU: the medium sentence's front end 0.80 ms back to back, 0.99–1.34 ms
after 1–30 ms idle). Polling a little while, as OpenMP's threads spin before they sleep
(KMP_BLOCKTIME, 200 ms by default), keeps a worker ready for sentences that follow each other
closely, at ≤ 10 ms of one core per request. On the 2-vCPU CI machine, with the caller busy
2.5 ms between sentences as it is while the GPU works: the medium front end 619/628 → 606/603 µs
median, 726/752 → 650/651 µs p90 (two rounds). `TTS_TURBO_WORKER_SPIN_S` overrides it for the
workers this process starts."""
AHEAD = 2
"""Chunks in flight per worker: enough to keep it busy, few enough that pipes never fill."""
GROUP_CHARS = 48
"""Shortest clause group worth a worker: espeak takes ~3 µs a character on top of ~50 µs a call
(CI machine), a round trip to a worker ~25–100 µs; shorter groups made a 48-character sentence slower there."""

_lock = threading.Lock()
_ready: Future | None = None


class WorkerDied(RuntimeError):
    """A worker process exited before answering."""


def worker_count() -> int:
    """One process per core but the synthesis thread's, at least one: physical cores, or fewer
    where this process may run on fewer CPUs (affinity, as a container's CPU set sets it)."""
    from ..runtime import physical_cores

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical_cores()
    return max(1, min(MAX_WORKERS, min(physical_cores(), usable) - 1))


def _load(voice: str) -> int:
    """In a worker: espeak loaded, `voice` set."""
    return len(phonemize("ready", voice))


class Worker:
    """One child process; requests are answered in the order they were sent."""

    def __init__(self) -> None:
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)  # the child imports what we import
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )

    def send(self, fn: bytes, arg: Any) -> None:
        """`fn` pickled once per map: the worker unpickles each function once and keeps it (an
        IdTable's warn-once set stays one set)."""
        _write(self.process.stdin, (fn, arg))

    def receive(self) -> tuple[bool, Any]:
        """(True, result) or (False, the exception it raised)."""
        reply = _read(self.process.stdout)
        if reply is None:
            raise WorkerDied(f"espeak worker {self.process.pid} exited (code {self.process.poll()})")
        return reply

    def answer(self) -> tuple[bool, Any]:
        """As `receive`, but a failure to read is returned as (False, WorkerDied), not raised."""
        try:
            return self.receive()
        except Exception as exc:
            return False, exc if isinstance(exc, WorkerDied) else WorkerDied(f"espeak worker {self.process.pid}: {brief(exc)}")

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


class WorkerPool:
    def __init__(self, workers: list[Worker]):
        self.workers = workers
        self.busy = threading.Lock()

    def map(self, fn: Callable[[str], T], chunks: Iterator[str], pending: deque[str]) -> Iterator[T]:
        """`fn(chunk)` per chunk, in order, taking chunks only as workers have room (chunk i goes
        to worker i mod n); `pending` holds those sent and not yet answered, so a caller can
        finish them elsewhere if a worker dies. Holds `busy` while it runs; a map left unfinished
        collects its outstanding answers before the pool is reused."""
        n, sent, received = len(self.workers), 0, 0
        pickled = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            while True:
                while len(pending) < AHEAD * n and (chunk := next(chunks, None)) is not None:
                    pending.append(chunk)  # before sending: a send that fails leaves it to the caller
                    self.workers[sent % n].send(pickled, chunk)
                    sent += 1
                if not pending:
                    return
                ok, result = self.workers[received % n].receive()
                pending.popleft()
                received += 1
                if not ok:
                    raise result
                yield result
        finally:
            try:
                for i in range(received, sent):
                    self.workers[i % n].receive()
            except Exception:
                pass  # a dead worker: `map_chunks` has already retired the pool
            self.busy.release()

    def spread(self, fn: Callable[[str], T], args: list[str], local: Callable[[], Any]) -> tuple[Any, list[T]]:
        """`fn(args[i])` on worker i (at most one each) while `local()` runs here: (what `local`
        returned, the workers' results in order). Holds `busy` while it runs and reads every
        answer before it returns or raises, so the workers stay in step; a worker that failed
        raises `WorkerDied` (after the others' answers are read), an error `fn` raised there
        is raised here."""
        sent = 0
        try:
            pickled = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
            for worker, arg in zip(self.workers, args):
                worker.send(pickled, arg)
                sent += 1
            mine = local()
        finally:
            replies = [worker.answer() for worker in self.workers[:sent]]
            self.busy.release()
        for ok, result in replies:
            if not ok:
                raise result
        return mine, [result for _, result in replies]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


def start(voice: str) -> Future:
    """Start the workers once per process, in the background; the future gives the pool when each
    worker has espeak loaded with `voice` set (or the error)."""
    global _ready
    with _lock:
        if _ready is None:
            _ready = Future()
            threading.Thread(target=_start, args=(voice, _ready), name="tts-espeak-workers", daemon=True).start()
        return _ready


def _start(voice: str, ready: Future) -> None:
    workers: list[Worker] = []
    try:
        workers = [Worker() for _ in range(worker_count())]
        load = pickle.dumps(_load)
        for worker in workers:
            worker.send(load, voice)
        for worker in workers:
            ok, result = worker.receive()
            if not ok:
                raise result
    except Exception as exc:  # no workers here (frozen app, no executable, espeak missing): stay in-process
        log.warning("espeak worker processes unavailable (%s); phonemizing in this process", exc)
        for worker in workers:
            worker.close()
        ready.set_exception(exc)
        return
    log.info("%d espeak worker processes ready", len(workers))
    ready.set_result(WorkerPool(workers))


def wait(ready: Future, timeout: float) -> None:
    """Until the pool of `start` is up, has failed (warned there) or `timeout` seconds passed."""
    try:
        ready.exception(timeout)
    except FutureTimeout:  # the built-in TimeoutError only from Python 3.11 on
        log.info("espeak worker processes not ready after %.0f s; phonemizing here until they are", timeout)


def ready_pool() -> WorkerPool | None:
    """The pool if it is up and working, else None."""
    return _ready.result() if _ready is not None and _ready.done() and _ready.exception() is None else None


def map_chunks(fn: Callable[[str], T], chunks: Iterable[str], voice: str, parallel: bool) -> Iterator[T]:
    """`fn(chunk)` for each chunk, in order, as each is done, taking chunks as they are needed:
    in the worker processes when `parallel` and they are up and free (`fn` must pickle), else
    here (starting them for next time)."""
    pool = ready_pool() if parallel else None
    if pool is None or not pool.busy.acquire(blocking=False):
        if parallel:
            start(voice)
        yield from map(fn, chunks)
        return
    source, pending = iter(chunks), deque()
    try:
        yield from pool.map(fn, source, pending)
    except (WorkerDied, OSError, EOFError, pickle.UnpicklingError) as exc:  # finish here, start afresh next time
        log.warning("an espeak worker process failed (%s); phonemizing in this process", exc)
        _retire(pool)
        yield from map(fn, chain(pending, source))


def phonemize_spread(text: str, voice: str) -> list[list[str]]:
    """`phonemize` of one short text with its clauses spread over this process and the workers:
    a sentence's espeak time becomes about its longest clause group's. On the 2-vCPU CI machine
    (one worker, two groups) the medium benchmark sentence's front end went from 0.95 to 0.90 ms
    median and 1.44 to 1.15 ms p90; more cores give more groups. The groups' clauses are used
    only where espeak ended a clause at every cut with the cut's punctuation (`joins_cleanly`);
    else, and without workers, the whole text is phonemized here. Never run inside a worker (it
    would start workers of its own)."""
    pool = ready_pool()
    groups = clause_groups(text, len(pool.workers) + 1 if pool else 2, GROUP_CHARS)
    if len(groups) < 2:
        return phonemize(text, voice)
    if pool is None:
        start(voice)  # for the next text (a voice's warmup starts them already)
        return phonemize(text, voice)
    if not pool.busy.acquire(blocking=False):  # a long text's chunks have them
        return phonemize(text, voice)
    try:
        mine, theirs = pool.spread(partial(clauses, voice=voice), groups[1:], lambda: clauses(groups[0], voice))
    except (WorkerDied, OSError) as exc:
        log.warning("an espeak worker process failed (%s); phonemizing in this process", exc)
        _retire(pool)
        return phonemize(text, voice)
    except Exception:  # espeak refused a group: the whole text here raises the same, or works
        return phonemize(text, voice)
    parts = [mine, *theirs]
    if not joins_cleanly(groups, parts):
        log.debug("espeak did not end a clause at every cut of %r; phonemized whole", text[:80])
        return phonemize(text, voice)
    return sentences_of([clause for part in parts for clause in part])


def _retire(pool: WorkerPool) -> None:
    global _ready
    with _lock:
        if ready_pool() is pool:
            _ready = None
    pool.close()


def _write(stream, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _read(stream) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        return None
    return pickle.loads(stream.read(int.from_bytes(header, "little")))


if os.name == "nt":  # select() takes only sockets there: ask the pipe how much it holds
    import ctypes
    import msvcrt

    def _bytes_waiting(fd: int) -> bool:
        waiting = ctypes.c_ulong(0)
        ok = ctypes.windll.kernel32.PeekNamedPipe(msvcrt.get_osfhandle(fd), None, 0, None, ctypes.byref(waiting), None)
        return not ok or waiting.value > 0

else:

    def _bytes_waiting(fd: int) -> bool:
        return bool(select.select([fd], [], [], 0)[0])


def _arrived(fd: int) -> bool:
    """Whether bytes wait in the pipe `fd`, or anything else makes a read return at once (end of
    file, an error: the blocking read then reports it)."""
    try:
        return _bytes_waiting(fd)
    except (OSError, ValueError, AttributeError):
        return True


def _await(fd: int, spin_s: float) -> None:
    """Poll `fd` for up to `spin_s` before the caller's read blocks."""
    deadline = time.perf_counter() + spin_s
    while time.perf_counter() < deadline:
        if _arrived(fd):
            return


class _PipeReader:
    """Exact reads from a pipe's descriptor, unbuffered, so that `_arrived` sees every byte not
    yet read (a buffered reader may hold the next request where polling cannot see it)."""

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, size: int) -> bytes:
        parts, left = [], size
        while left:
            part = os.read(self.fd, left)
            if not part:
                break
            parts.append(part)
            left -= len(part)
        return b"".join(parts)


def serve(spin_s: float = SPIN_S) -> None:
    """A worker's loop: (pickled fn, arg) in, (ok, result or exception) out, until stdin closes.
    After each answer it polls for the next request for up to `spin_s` before it blocks."""
    requests, replies = _PipeReader(sys.stdin.fileno()), sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the channel
    functions: dict[bytes, Callable[[Any], Any]] = {}
    while True:
        _await(requests.fd, spin_s)
        if (request := _read(requests)) is None:
            return
        pickled, arg = request
        try:
            if pickled not in functions:
                functions.clear()  # one request's function at a time
                functions[pickled] = pickle.loads(pickled)
            reply = (True, functions[pickled](arg))
        except Exception as exc:
            reply = (False, exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}"))
        _write(replies, reply)


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    serve(float(os.environ.get("TTS_TURBO_WORKER_SPIN_S", SPIN_S)))
