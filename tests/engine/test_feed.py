"""The text front end as a feed: run beside synthesis for long texts, in order, errors carried over."""

import logging
import pickle
import sys
import threading
import time

import numpy as np
import pytest

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
from engine import wrapper as wrapper_module
from engine.config import SynthesisOptions
from engine.errors import InputError
from engine.feed import SegmentFeed, known_count
from engine.models.base import Segment

SEEDED = SynthesisOptions(seed=5, sentence_silence=0.1)
PARAGRAPHS = "\n\n".join(
    [
        "The lighthouse keeper climbed the stairs at dusk. He lit the lamp.",
        "Ships passed far out at sea, their lights low on the water!",
        "By morning the fog had lifted; the harbour was calm again.",
    ]
)


def test_feed_hands_over_segments_while_the_front_end_still_runs():
    gate = threading.Event()

    def produce():
        yield Segment("a", [1], 0.2)
        yield Segment("b", [1], 0.2)
        gate.wait(5)
        yield Segment("c", [1], 0.2)

    feed = SegmentFeed(produce, threaded=True)
    items = iter(feed)
    assert next(items).text == "a"  # handed over once "b" exists, before "c" is made
    assert feed.count == 0, "unknown while the front end still runs"
    assert feed.ready() == 0, "b waits for c (it may be the last), so nothing can be taken without waiting"
    gate.set()
    assert [(s.text, s.pause_after) for s in items] == [("b", 0.2), ("c", 0.0)]
    assert feed.count == 3


def test_feed_gives_the_last_segment_no_pause_and_the_final_count():
    assert SegmentFeed(lambda: [Segment("a", [1], 0.2)], threaded=False).ready() == sys.maxsize  # finished: nothing to wait for
    feed = SegmentFeed(lambda: [Segment("a", [1], 0.2), Segment("b", [1], 0.3)], threaded=True)
    got = list(feed)
    assert [(s.text, s.pause_after) for s in got] == [("a", 0.2), ("b", 0.0)]
    assert feed.count == 2 and feed.busy_s > 0


def test_a_requests_segment_count_is_known_only_once_its_front_end_has_finished():
    segments = [Segment("a", [1], 0.2), Segment("b", [1], 0.3)]
    assert known_count(segments) == 2
    assert known_count(iter(segments)) is None
    assert known_count(SegmentFeed(lambda: segments[:1], threaded=False)) == 1
    release = threading.Event()

    def slow():
        yield segments[0]
        release.wait(5)

    feed = SegmentFeed(slow, threaded=True)
    assert known_count(feed) is None
    release.set()
    assert len(list(feed)) == 1 and known_count(feed) == 1


def test_a_worker_sees_a_request_arrive_while_it_polls_and_reads_it_whole():
    """The worker's pipe is polled (`_arrived`) before its blocking read, so it must see every
    byte not yet read: nothing is buffered out of the poll's sight, and a request written in
    pieces is read whole."""
    import os

    from engine.text import workers

    read_end, write_end = os.pipe()
    try:
        reader = workers._PipeReader(read_end)
        assert not workers._arrived(read_end)
        os.write(write_end, b"abc")
        assert workers._arrived(read_end)
        threading.Timer(0.05, lambda: os.write(write_end, b"defg")).start()
        assert reader.read(7) == b"abcdefg"  # the rest arrives later: read waits for it
        assert not workers._arrived(read_end)
        os.close(write_end)
        write_end = None
        assert workers._arrived(read_end) and reader.read(4) == b""  # end of file: at once, empty
    finally:
        os.close(read_end)
        if write_end is not None:
            os.close(write_end)


def test_a_closed_feed_stops_its_front_end_at_the_next_segment():
    """A cancelled request's long text is not phonemized to its end behind it."""
    made, gate, stopped = [], threading.Event(), threading.Event()

    def produce():
        try:
            for i in range(100):
                made.append(i)
                yield Segment(str(i), [1], 0.2)
                if i == 2:
                    gate.wait(5)
        finally:
            stopped.set()

    feed = SegmentFeed(produce, threaded=True)
    assert next(iter(feed)).text == "0"
    feed.close()
    gate.set()
    assert stopped.wait(5), "the front end's thread returned"
    assert len(made) <= 5


def test_front_end_errors_reach_the_caller_from_the_thread():
    def produce():
        yield Segment("a", [1], 0.2)
        raise InputError("corrupt paragraph")

    feed = SegmentFeed(produce, threaded=True)
    with pytest.raises(InputError, match="corrupt paragraph"):
        list(feed)
    assert feed.ready() == 0, "a failed front end has nothing to take: the caller hands out what it has first"


def test_long_text_is_phonemized_beside_synthesis_with_the_same_audio(joe_cpu, monkeypatch):
    wrapper = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), "cpu"))
    direct = wrapper.generate("", SEEDED, segments=joe_cpu.segment(PARAGRAPHS, SEEDED))
    monkeypatch.setattr(wrapper_module, "FRONT_END_THREAD_CHARS", 40)
    spied = []

    class Spy(SegmentFeed):
        def __init__(self, produce, threaded, **kw):
            spied.append(threaded)
            super().__init__(produce, threaded, **kw)

    monkeypatch.setattr(wrapper_module, "SegmentFeed", Spy)
    chunks = list(wrapper.stream(PARAGRAPHS, SEEDED))
    assert spied == [True]
    assert len(chunks) == direct.segments == chunks[-1].count == 4  # espeak's sentences
    np.testing.assert_array_equal(np.concatenate([c.audio for c in chunks]), direct.audio)
    timings = wrapper.last_timings
    assert timings.phonemize_s > 0 and timings.model_s <= timings.total_s


def test_nothing_speakable_in_a_long_text_is_still_a_clear_error(joe_cpu, monkeypatch):
    monkeypatch.setattr(wrapper_module, "FRONT_END_THREAD_CHARS", 10)
    wrapper = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), "cpu"))
    with pytest.raises(InputError, match="nothing speakable"):
        wrapper.generate("… ... !!! ??? — " * 20)


@pytest.mark.parametrize("physical, usable, expected", [(16, 16, 15), (16, 2, 1), (16, 1, 1), (64, 64, 16), (4, 32, 3)])
def test_espeak_workers_one_per_usable_core_but_one(monkeypatch, physical, usable, expected):
    """Physical cores, or the CPUs this process may run on where fewer (a container's CPU set),
    less the synthesis thread's, at most MAX_WORKERS and at least one."""
    import os

    from engine import runtime
    from engine.text import workers

    monkeypatch.setattr(runtime, "physical_cores", lambda: physical)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(usable)), raising=False)
    assert workers.MAX_WORKERS == 16 and workers.worker_count() == expected


def test_espeak_worker_processes_give_the_same_segments(joe_cpu):
    from engine.text import workers

    voice = joe_cpu.config.espeak_voice
    pool = workers.start(voice).result(timeout=120)
    assert len(pool.workers) == workers.worker_count() and workers.ready_pool() is pool
    chunks = PARAGRAPHS.split("\n\n") * 3
    front_end = joe_cpu._front_end
    pooled = list(workers.map_chunks(front_end, chunks, voice, parallel=True))
    assert pooled == [front_end(c) for c in chunks]
    assert all(isinstance(text, str) and ids for part in pooled for text, ids in part)
    probe = "'torch' in __import__('sys').modules"
    assert list(workers.map_chunks(eval, [probe], voice, parallel=True)) == [False], "workers stay light"


def test_an_unfinished_map_leaves_the_workers_in_step(joe_cpu):
    from engine.text import workers

    voice = joe_cpu.config.espeak_voice
    workers.start(voice).result(timeout=120)
    chunks = [f"Sentence number {i}." for i in range(12)]
    first = workers.map_chunks(str.upper, chunks, voice, parallel=True)
    assert next(first) == "SENTENCE NUMBER 0."
    first.close()  # e.g. a cancelled request
    assert list(workers.map_chunks(str.lower, chunks, voice, parallel=True)) == [c.lower() for c in chunks]


def test_a_worker_error_reaches_the_caller(joe_cpu):
    from engine.text import workers

    voice = joe_cpu.config.espeak_voice
    workers.start(voice).result(timeout=120)
    with pytest.raises(ValueError, match="invalid literal"):
        list(workers.map_chunks(int, ["7", "seven"], voice, parallel=True))
    assert list(workers.map_chunks(int, ["1", "2"], voice, parallel=True)) == [1, 2]


def test_chunks_go_to_the_workers_only_as_they_have_room(joe_cpu):
    """A long text's chunks are prepared lazily: the first answers come back before later
    chunks are even made (a chapter's abbreviation pass and chunking no longer come first)."""
    from engine.text import workers

    voice = joe_cpu.config.espeak_voice
    pool = workers.start(voice).result(timeout=120)
    made = []

    def chunks():
        for i in range(10 * len(pool.workers)):
            made.append(i)
            yield f"chunk {i}"

    results = workers.map_chunks(str.upper, chunks(), voice, parallel=True)
    assert next(results) == "CHUNK 0"
    assert len(made) == workers.AHEAD * len(pool.workers)
    assert list(results) == [f"CHUNK {i}" for i in range(1, 10 * len(pool.workers))]


@pytest.mark.parametrize("dies_in", ["receive", "send"])
def test_a_dead_worker_leaves_no_chunk_behind(joe_cpu, monkeypatch, dies_in):
    """Chunks sent to a worker that dies (found when reading its answer or writing the next
    chunk), and those not yet sent, are phonemized here instead."""
    from engine.text import workers

    voice = joe_cpu.config.espeak_voice
    workers.start(voice).result(timeout=120)
    calls = 0
    original = getattr(workers.Worker, dies_in)

    def dies_on_the_third(self, *args):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise workers.WorkerDied("worker exited") if dies_in == "receive" else BrokenPipeError("worker exited")
        return original(self, *args)

    monkeypatch.setattr(workers.Worker, dies_in, dies_on_the_third)
    chunks = [f"c{i}" for i in range(9)]
    assert list(workers.map_chunks(str.upper, iter(chunks), voice, parallel=True)) == [c.upper() for c in chunks]
    monkeypatch.undo()
    workers.start(voice).result(timeout=120)  # started afresh after the failure


MEDIUM = ("At 6:45 on a grey Tuesday, Doctor Ellis unlocked the lab, switched on all 12 monitors, and wondered"
          " aloud whether the new model could really speak 200 times faster.")


def test_a_text_ending_in_two_periods_leaves_nothing_for_the_next_one(joe_cpu):
    """espeak kept the second period of "Wait.." and began the next text with "dot"."""
    from engine.text.phonemize import phonemize

    voice = joe_cpu.config.espeak_voice
    alone = phonemize("Hello.", voice)
    assert phonemize("Wait..", voice) == phonemize("Wait.", voice)
    assert phonemize("Hello.", voice) == alone and "".join(alone[0]).startswith("həl")


def test_a_short_texts_clause_groups_go_to_the_workers_with_the_same_phonemes(joe_cpu, monkeypatch):
    from engine.text import workers
    from engine.text.phonemize import clause_groups, phonemize

    voice = joe_cpu.config.espeak_voice
    pool = workers.start(voice).result(timeout=120)
    sent = []
    send = workers.Worker.send
    monkeypatch.setattr(workers.Worker, "send", lambda self, fn, arg: (sent.append(arg), send(self, fn, arg)))
    for text in [MEDIUM, "Mr. Smith, our guest from the coast, arrived late; nobody minded at all. Then, at last, dinner: soup, fish and pie!", PARAGRAPHS.replace("\n\n", " ")]:
        sent.clear()
        assert workers.phonemize_spread(text, voice) == phonemize(text, voice)
        groups = clause_groups(text, len(pool.workers) + 1, workers.GROUP_CHARS)
        assert len(groups) >= 2 and sent == groups[1:], "the first group is phonemized here, the others in the workers"
    monkeypatch.undo()
    assert joe_cpu._short_front_end.phonemizer is workers.phonemize_spread  # what a short request runs
    assert [(s.text, s.tokens) for s in joe_cpu.segment(MEDIUM, SynthesisOptions())] == joe_cpu._front_end(MEDIUM)


def test_a_cut_espeak_read_otherwise_falls_back_to_the_whole_text(joe_cpu, monkeypatch, caplog):
    """"?!" ends its clause as "?": the groups' phonemes are not used, the whole text's are."""
    from engine.text import workers
    from engine.text.phonemize import phonemize

    voice = joe_cpu.config.espeak_voice
    workers.start(voice).result(timeout=120)
    text = "Really?! Yes, really."
    monkeypatch.setattr(workers, "clause_groups", lambda text, most, least_chars: ["Really?!", "Yes, really."])
    with caplog.at_level(logging.DEBUG, logger="engine.text.workers"):
        assert workers.phonemize_spread(text, voice) == phonemize(text, voice)
    assert any("did not end a clause at every cut" in r.message for r in caplog.records)


def test_a_worker_dying_during_a_spread_text_costs_nothing_but_the_pool(joe_cpu, monkeypatch):
    from engine.text import workers
    from engine.text.phonemize import phonemize

    voice = joe_cpu.config.espeak_voice
    pool = workers.start(voice).result(timeout=120)

    def dies(self):
        raise workers.WorkerDied("worker exited")

    monkeypatch.setattr(workers.Worker, "receive", dies)
    assert workers.phonemize_spread(MEDIUM, voice) == phonemize(MEDIUM, voice)
    assert workers.ready_pool() is not pool, "the failed pool is retired"
    monkeypatch.undo()
    assert workers.start(voice).result(timeout=120) is not pool  # started afresh


def test_one_worker_dying_in_a_spread_leaves_the_others_in_step(joe_cpu):
    """Worker 1 dies while worker 0 answers: the error says so, the pool is free again, and worker
    0's next answer is the answer to its next request (not a stale one)."""
    from engine.text import workers

    pool = workers.WorkerPool([workers.Worker(), workers.Worker()])
    try:
        pool.busy.acquire()
        with pytest.raises(workers.WorkerDied):
            pool.spread(time.sleep, [0, 30], local=lambda: pool.workers[1].process.kill())  # worker 1 dies while it sleeps
        assert pool.busy.acquire(blocking=False), "busy was released"
        pool.workers[0].send(pickle.dumps(str.lower), "AGAIN")
        assert pool.workers[0].receive() == (True, "again")
    finally:
        pool.close()
