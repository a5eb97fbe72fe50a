import numpy as np
import pytest

from app.ringbuffer import RingBuffer


def test_view_is_contiguous_oldest_to_newest_after_wrapping():
    ring = RingBuffer(4, columns=2)
    for i in range(10):
        ring.append((i, i * 10))
    view = ring.view()
    assert view.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(view[:, 0], [6, 7, 8, 9])
    np.testing.assert_array_equal(view[:, 1], [60, 70, 80, 90])
    assert np.shares_memory(view, ring._data)


def test_partial_fill_and_clear():
    ring = RingBuffer(5)
    assert len(ring) == 0 and ring.last() is None
    ring.append(1.5)
    ring.append(2.5)
    np.testing.assert_array_equal(ring.view()[:, 0], [1.5, 2.5])
    assert ring.last()[0] == 2.5
    ring.clear()
    assert len(ring.view()) == 0


def test_rejects_empty_capacity():
    with pytest.raises(ValueError):
        RingBuffer(0)
