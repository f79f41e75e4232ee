"""Keep freed array memory in the process instead of handing it back to the OS after every op (glibc only).

Training allocates and frees the same large arrays every step (activations, masks, gradients of 1-15 MB for
the MNIST `cnn`). glibc serves such sizes with fresh `mmap`s, or trims them off the top of its heap when they
are freed, so each step pays a page fault per 4 KiB touched: 120,000 minor faults in 38 steps of the `cnn`
at batch 64, and a step (two threads) took 133-137 ms, against 112-122 ms and 38,000 faults with the
thresholds below; peak resident memory stayed at 265-269 MB.

Applied once, when the package is imported. Set TINYGRAD_CNN_DEFAULT_MALLOC=1 in the environment to leave
the C library's allocator as it is. Elsewhere than glibc (macOS, musl) nothing changes.
"""
import ctypes
import os

_M_TRIM_THRESHOLD = -1  # <malloc.h>: free memory above the heap's top beyond this goes back to the OS
_M_MMAP_THRESHOLD = -3  # <malloc.h>: blocks at least this large get an mmap of their own

MMAP_THRESHOLD = 64 << 20  # a (64, 64, 24, 24) float32 activation is 9 MiB; batch 256 makes it 36 MiB
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; True when they were set, False when left alone."""
    if os.environ.get("TINYGRAD_CNN_DEFAULT_MALLOC") == "1":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
