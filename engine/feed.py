"""The text front end as a feed of segments, run ahead of synthesis for long texts.

Phonemizing a 10,000-character chapter takes 30–70 ms of single-threaded espeak; run first, it
would delay the first audio and leave the GPU idle that long. Here it runs on its own thread and
hands segments over in order, so the synthesis of the first sentences starts while later
paragraphs are still being phonemized (by espeak worker processes, `text.workers`, or here clause
by clause with the GIL released between calls).
"""

from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from typing import Callable, Iterable, Iterator, Sequence

from .models.base import Segment

_END = object()
CANCEL_POLL_S = 0.05
"""How often a consumer waiting for the front end checks for cancellation."""


def without_final_pause(segments: Iterable[Segment]) -> Iterator[Segment]:
    """The segments with no pause after the last one (nothing follows it). Each is handed on once
    the next exists, so the rule holds however the segments were made."""
    held = None
    for segment in segments:
        if held is not None:
            yield held
        held = segment
    if held is not None:
        yield dataclasses.replace(held, pause_after=0.0)


def known_count(segments: Iterable[Segment]) -> int | None:
    """How many segments a request holds, where that is known before any is taken: a sequence's
    length, or a feed's count once its front end has finished; else None."""
    if isinstance(segments, SegmentFeed):
        return segments.count if segments.ready() == sys.maxsize else None
    return len(segments) if isinstance(segments, Sequence) else None


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class SegmentFeed:
    """Segments of one request, in order, the last without a pause. `threaded=False` runs
    `produce` to the end at once.

    `items` holds the segments handed out so far (index i is the i-th yielded). `busy_s` is the
    front end's own time; `waited_s` is how long the consumer waited for it (all of it when not
    threaded, only what synthesis could not hide when threaded).
    """

    def __init__(self, produce: Callable[[], Iterable[Segment]], threaded: bool, cancelled: Callable[[], bool] = lambda: False):
        self.items: list[Segment] = []
        self.cancelled = cancelled
        self.busy_s = 0.0
        self.waited_s = 0.0
        self.count = 0
        """Segments in the request, once the front end has finished; 0 while it still runs."""
        self._stopped = False  # set by `close`, polled by the front end's thread (an Event cost each call ~10 µs)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._finished = self._failed = False
        if threaded:
            threading.Thread(target=self._produce, args=(produce,), name="tts-front-end", daemon=True).start()
        else:
            start = time.perf_counter()
            for segment in without_final_pause(produce()):
                self._queue.put(segment)
                self.count += 1
            self._queue.put(_END)
            self._finished = True
            self.busy_s = self.waited_s = time.perf_counter() - start

    def _produce(self, produce: Callable[[], Iterable[Segment]]) -> None:
        start = time.perf_counter()
        produced = 0
        try:
            for segment in without_final_pause(produce()):
                if self._stopped:
                    return
                self._queue.put(segment)
                produced += 1
        except BaseException as exc:  # handed to the consumer, raised there
            self.busy_s = time.perf_counter() - start
            self._failed = True
            self._queue.put(_Failure(exc))
            return
        self.busy_s = time.perf_counter() - start
        self.count = produced
        self._finished = True
        self._queue.put(_END)

    def ready(self) -> int:
        """How many segments can be taken now without waiting: all that are left (sys.maxsize)
        once the front end has finished, none once it has failed (so that the caller hands out
        what it has before the error reaches it)."""
        if self._failed:
            return 0
        return sys.maxsize if self._finished else self._queue.qsize()

    def __iter__(self) -> Iterator[Segment]:
        """Stops early, without error, once `cancelled()` (the caller raises its own)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = self._wait()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            self.items.append(item)
            yield item

    def _wait(self):
        start = time.perf_counter()
        try:
            while True:
                try:
                    return self._queue.get(timeout=CANCEL_POLL_S)
                except queue.Empty:
                    if self.cancelled():
                        return _END
        finally:
            self.waited_s += time.perf_counter() - start

    def close(self) -> None:
        """Stop the front end early (cancelled or failed request)."""
        self._stopped = True
