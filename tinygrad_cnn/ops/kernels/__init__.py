"""Numba kernels on plain NumPy arrays (no Tensor, no autograd), plus the one place that sets Numba's threading layer.

Threading layer: Numba's default (OpenMP/TBB) leaves its worker threads spinning after a parallel loop,
which starves the BLAS matmul that usually follows (im2col + GEMM ran about 2x slower on this 2-core
machine). The `workqueue` layer parks its workers instead, so we choose it here, before any parallel
kernel is compiled or loaded from the cache; every kernel module imports this package first.
"""
import threading

import numba
import numpy as np

numba.config.THREADING_LAYER = "workqueue"


class Workspace:
    """Scratch buffers reused across calls, keyed by (name, shape, dtype).

    A fresh multi-MB temporary per call costs a page fault per 4 KiB page (~1 us each here) because the
    allocator returns large freed blocks to the OS; reusing the buffer pays that once. Only kernel-internal
    temporaries live here: nothing handed back to a caller is ever a workspace buffer. Keeps the most
    recently used `capacity` buffers so a network's few repeated shapes stay resident. Keys include the
    calling thread, so two Python threads never share a buffer.
    """

    def __init__(self, capacity: int = 16):
        self.capacity = capacity
        self._buffers: dict = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised buffer of `shape` and `dtype`, the same one each time the key repeats."""
        key = (name, tuple(shape), np.dtype(dtype), threading.get_ident())
        buffer = self._buffers.pop(key, None)
        if buffer is None:
            buffer = np.empty(shape, dtype)
        self._buffers[key] = buffer  # re-insert: dict order is the recency order
        while len(self._buffers) > self.capacity:
            del self._buffers[next(iter(self._buffers))]
        return buffer

    def clear(self) -> None:
        """Free every buffer (for example after changing model sizes)."""
        self._buffers.clear()


workspace = Workspace()
