"""An opt-in tuning of glibc's allocator for training loops (nothing changes unless it is called)."""
import ctypes

_M_TRIM_THRESHOLD = -1  # <malloc.h>: free memory above the heap's top beyond this goes back to the OS
_M_MMAP_THRESHOLD = -3  # <malloc.h>: blocks at least this large get an mmap of their own

MMAP_THRESHOLD = 64 << 20  # a (64, 64, 24, 24) float32 activation is 9 MiB; batch 256 makes it 36 MiB
TRIM_THRESHOLD = 256 << 20


def tune_allocator() -> bool:
    """Keep freed array memory in this process for the next step instead of handing it back to the OS.

    Training allocates and frees the same large arrays every step; with glibc's defaults each one is a fresh
    `mmap` (or is trimmed off the heap when freed), so every step pays a page fault per 4 KiB it touches. This
    raises glibc's mmap threshold to MMAP_THRESHOLD and its trim threshold to TRIM_THRESHOLD, for the whole
    process and for the rest of its life: blocks below 64 MiB come from the heap, and up to 256 MiB of freed
    memory stays resident (glibc also stops adapting its mmap threshold). Returns True when both were set,
    False where the C library is not glibc (nothing changes there).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
