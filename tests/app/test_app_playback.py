"""The playback queue with an injected fake stream: gapless, ordered, bit-exact, underflows counted."""

import threading
import time

import numpy as np
from app_fakes import FakeStream

from app.playback import PlaybackUnavailable, StreamPlayer

RATE = 16000


def _player(streams, prefill_seconds=0.01, **stream_kwargs):
    def factory(sample_rate, device, fill, on_finished):
        stream = FakeStream(sample_rate, fill, on_finished, **stream_kwargs)
        streams.append(stream)
        return stream

    return StreamPlayer(factory, prefill_seconds=prefill_seconds)


def test_chunks_play_gapless_in_order_and_bit_exact():
    streams = []
    # an unpaced fake stream drains instantly, so queue everything before it starts
    player = _player(streams, prefill_seconds=10.0, blocksize=512, realtime=False)
    rng = np.random.default_rng(0)
    chunks = [rng.uniform(-1, 1, n).astype(np.float32) for n in (700, 3000, 1, 4096, 2500)]
    player.begin(RATE)
    for chunk in chunks:
        player.feed(chunk)
    player.end_of_input()
    assert streams[0].finished.wait(5)
    played = streams[0].played()
    expected = np.concatenate(chunks)
    np.testing.assert_array_equal(played[: len(expected)], expected)
    assert not played[len(expected) :].any(), "the tail of the last block is zero-padded"
    assert player.underflows == 0
    assert not player.is_playing
    assert player.played_samples == len(expected)


def test_feeding_while_playing_in_real_time_has_no_gaps():
    streams = []
    player = _player(streams, prefill_seconds=0.05, blocksize=256, realtime=True, speed=4.0)
    chunks = [np.full(1600, v, np.float32) for v in (0.1, 0.2, 0.3, 0.4, 0.5)]
    player.begin(RATE)
    for chunk in chunks:
        player.feed(chunk)
        time.sleep(0.005)  # synthesis of the next sentence, faster than playback
    player.end_of_input()
    assert streams[0].finished.wait(5)
    played = streams[0].played()
    expected = np.concatenate(chunks)
    np.testing.assert_array_equal(played[: len(expected)], expected)
    assert player.underflows == 0


def test_slow_producer_counts_underflows_but_keeps_order():
    streams = []
    player = _player(streams, blocksize=256, realtime=True)
    first = np.full(800, 0.25, np.float32)
    second = np.full(800, -0.5, np.float32)
    player.begin(RATE)
    player.feed(first)
    time.sleep(0.2)  # the producer stalls: the stream must zero-fill and count it
    player.feed(second)
    player.end_of_input()
    assert streams[0].finished.wait(5)
    played = streams[0].played()
    audible = played[played != 0]
    np.testing.assert_array_equal(audible, np.concatenate([first, second]))
    assert player.underflows > 0


def test_stream_waits_for_prefill_and_short_utterances_start_at_end():
    streams = []

    def factory(sample_rate, device, fill, on_finished):
        stream = FakeStream(sample_rate, fill, on_finished, realtime=False)
        streams.append(stream)
        return stream

    player = StreamPlayer(factory, prefill_seconds=0.5)
    player.begin(RATE)
    player.feed(np.ones(100, np.float32))
    assert streams == [], "not enough audio queued to start"
    player.end_of_input()
    assert len(streams) == 1 and streams[0].finished.wait(5)


def test_stop_aborts_and_a_new_utterance_replaces_the_old():
    streams = []
    player = _player(streams, realtime=True)
    player.begin(RATE)
    player.feed(np.ones(RATE * 5, np.float32))
    player.stop()
    assert streams[0].aborted and not player.is_playing
    player.play(np.full(300, 0.5, np.float32), RATE)
    assert streams[1].finished.wait(5)
    assert np.count_nonzero(streams[1].played()) == 300


def test_device_refusal_raises_playback_unavailable():
    def refusing(sample_rate, device, fill, on_finished):
        raise PlaybackUnavailable("no device")

    player = StreamPlayer(refusing)
    player.begin(RATE)
    try:
        player.feed(np.ones(RATE, np.float32))
    except PlaybackUnavailable:
        pass
    else:
        raise AssertionError("expected PlaybackUnavailable")
    assert not player.is_playing


def test_callback_copy_is_thread_safe_with_a_concurrent_producer():
    streams = []
    player = _player(streams, prefill_seconds=1.0, blocksize=128, realtime=False)
    chunks = [np.full(97, i, np.float32) for i in range(1, 60)]
    player.begin(RATE)

    def produce():
        for chunk in chunks:
            player.feed(chunk)
        player.end_of_input()

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join()
    assert streams[0].finished.wait(5)
    audible = streams[0].played()
    audible = audible[audible != 0]
    np.testing.assert_array_equal(audible, np.concatenate(chunks))
