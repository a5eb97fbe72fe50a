"""Fixed-capacity ring buffer whose last N rows are always one contiguous numpy view.

Every row is written twice (at i and i + capacity), so `view()` never copies and plots can hand the
slice straight to pyqtgraph's `setData`. Qt-free.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Rows of `columns` values; the oldest are overwritten once `capacity` rows are held."""

    def __init__(self, capacity: int, columns: int = 1, dtype: type = np.float64) -> None:
        if capacity < 1 or columns < 1:
            raise ValueError("capacity and columns must be >= 1")
        self._capacity = capacity
        self._data = np.zeros((2 * capacity, columns), dtype=dtype)
        self._head = 0
        self._count = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return self._count

    def append(self, row) -> None:
        self._data[self._head] = row
        self._data[self._head + self._capacity] = row
        self._head = (self._head + 1) % self._capacity
        self._count = min(self._count + 1, self._capacity)

    def view(self) -> np.ndarray:
        """Oldest-to-newest rows, shape (len, columns); a view, valid until the next append."""
        end = self._head + self._capacity
        return self._data[end - self._count : end]

    def last(self) -> np.ndarray | None:
        return self.view()[-1] if self._count else None

    def clear(self) -> None:
        self._head = 0
        self._count = 0
