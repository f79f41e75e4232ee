"""Scratch buffers for kernels, reused across calls."""
import threading

import numpy as np


class Workspace:
    """Scratch buffers reused across calls, keyed by (name, dtype, thread).

    A fresh multi-MB temporary per call pays a page fault for each 4 KiB page it touches when the allocator
    hands large freed blocks back to the OS; a reused buffer pays that once. Only kernel-internal temporaries
    live here: nothing handed back to a caller is ever a workspace buffer. Keeps the most recently used
    `capacity` buffers so a network's few repeated shapes stay resident; keys include the calling thread, so
    two Python threads never share a buffer.
    """

    def __init__(self, capacity: int = 16):
        self.capacity = capacity
        self._buffers: dict = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape`, backed by the same memory each time the key repeats.

        Buffers are kept flat and grown to the largest size asked for under `name`, so the last, smaller batch
        chunk of a loop reuses the first chunk's memory.
        """
        size = int(np.prod(shape))
        key = (name, np.dtype(dtype), threading.get_ident())
        buffer = self._buffers.pop(key, None)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size, dtype)
        self._buffers[key] = buffer  # re-insert: dict order is the recency order
        while len(self._buffers) > self.capacity:
            del self._buffers[next(iter(self._buffers))]
        return buffer[:size].reshape(shape)

    def clear(self) -> None:
        """Free every buffer (for example after changing model sizes)."""
        self._buffers.clear()


workspace = Workspace()
