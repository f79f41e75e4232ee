"""Memory for the ops' large results, kept in the package between training steps.

A training step allocates the same large activations and gradients every time and frees them all by the end;
glibc hands such blocks back to the OS (each is an `mmap` of its own, or is trimmed off the heap's top), so the
next step pays a page fault for every 4 KiB it writes: about 30,000 a step (120 MB) for ResNet-20 at batch 64.
`empty` serves arrays of at least POOLED_BYTES from blocks freed earlier, and an array's block comes back to the
pool when the array and all its views are gone. Nothing process-wide changes: only the ops' own results come
from here, and other NumPy arrays keep the C allocator's behaviour.
"""
import sys
import threading
from collections import OrderedDict

import numpy as np

from .scratch import workspace

POOLED_BYTES = 1 << 18  # smaller arrays come from the heap, whose small free blocks glibc keeps anyway
ALIGNMENT = 64  # a cache line: a vector load that spans two lines costs two


class _Pool:
    """Free blocks by size in pages, least recently freed first, at most `capacity` bytes in all."""

    def __init__(self, capacity: int = 2 << 30):
        self.capacity = capacity
        self.cached = 0
        self._free: OrderedDict = OrderedDict()  # pages -> [(block, address)], ordered by the last return
        self._lock = threading.Lock()

    def take(self, pages: int):
        """A free block of `pages` pages and its aligned address, or a new one."""
        with self._lock:
            blocks = self._free.get(pages)
            if blocks:
                self.cached -= pages << 12
                return blocks.pop()
        block = np.empty((pages << 12) + ALIGNMENT, np.uint8)
        address = block.ctypes.data
        return block, address + (-address % ALIGNMENT)

    def give_back(self, pages: int, block, address) -> None:
        with self._lock:
            self._free.setdefault(pages, []).append((block, address))
            self._free.move_to_end(pages)
            self.cached += pages << 12
            while self.cached > self.capacity:
                oldest, blocks = next(iter(self._free.items()))
                blocks.pop(0)
                self.cached -= oldest << 12
                if not blocks:
                    del self._free[oldest]

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self.cached = 0


pool = _Pool()


class _Lease:
    """An array's hold on a pooled block (the array's `base`): freed with the array's last view, it returns
    the block to the pool."""

    __slots__ = ("pages", "block", "address", "__array_interface__")

    def __init__(self, pages, block, address, shape, dtype):
        self.pages, self.block, self.address = pages, block, address
        self.__array_interface__ = {"data": (address, False), "shape": shape, "typestr": dtype.str, "version": 3}

    def __del__(self):
        pool.give_back(self.pages, self.block, self.address)


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, as np.empty, starting on a 64-byte boundary; large ones reuse the
    memory of pooled arrays that are gone."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if nbytes < POOLED_BYTES:
        return np.empty(shape, dtype)
    pages = (nbytes + 4095) >> 12
    return np.asarray(_Lease(pages, *pool.take(pages), shape, dtype))


def empty_like(array) -> np.ndarray:
    """empty(array.shape, array.dtype)."""
    return empty(array.shape, array.dtype)


def _count_held_once() -> int:
    """What sys.getrefcount reports, in owns_its_memory's way of asking, for an object one slot refers to."""
    holder = [object()]
    base = holder[0]
    return sys.getrefcount(base)


_HELD_ONCE = _count_held_once()


def owns_its_memory(array) -> bool:
    """Whether `array` is the array its memory was made for: NumPy's own (no base), or the one array holding a
    pooled block's lease. Views of `array` itself are not seen here: they hold a reference to `array`."""
    base = array.base
    return base is None or (type(base) is _Lease and sys.getrefcount(base) <= _HELD_ONCE)


def empty_cache() -> None:
    """Free the memory kept for reuse: the pool's free blocks and the kernels' scratch buffers (for example
    after training, or after changing model sizes). Arrays in use keep theirs."""
    pool.clear()
    workspace.clear()

