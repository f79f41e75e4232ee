"""Thread counts for Numba's kernels and NumPy's BLAS, set together in this one place.

NumPy's bundled OpenBLAS is reached through ctypes (no extra dependency): the library is found next to NumPy
or in /proc/self/maps, and its `*openblas_set_num_threads*` symbol is called. If it cannot be
found, only Numba's count changes and a warning says so. Nothing is changed at import: the defaults stay.

Matrix products below `MULTITHREADED_BLAS_MACS` multiply-adds run on one BLAS thread (`blas_for_product`):
after a multi-threaded product OpenBLAS's idle workers keep spinning (0.1-0.3 s, measured) and take a core
from the Numba kernels that follow. Measured on the MNIST `cnn` at batch 64, two threads: a training step took
166 ms with the Linear products on two BLAS threads and 126 ms on one, the conv backward alone 78 vs 47 ms.
"""
import ctypes
import functools
import glob
import os
import warnings
from contextlib import contextmanager, nullcontext

import numba
import numpy as np

_SYMBOL_PREFIXES = ("scipy_openblas", "openblas")
_SYMBOL_SUFFIXES = ("64_", "", "_64")


def _openblas_candidates():
    """Paths of NumPy's OpenBLAS: the copy shipped in NumPy's wheel first, then libraries this process has loaded
    from outside other wheels' private folders (`scipy.libs/` holds SciPy's own OpenBLAS, which Numba loads;
    changing its thread count would leave NumPy's untouched)."""
    numpy_dir = os.path.dirname(np.__file__)
    shipped = glob.glob(os.path.join(numpy_dir, "..", "numpy.libs", "*openblas*")) + \
        glob.glob(os.path.join(numpy_dir, ".libs", "*openblas*"))
    loaded = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                folder = os.path.basename(os.path.dirname(path))
                if "openblas" in os.path.basename(path) and not folder.endswith(".libs") and path not in loaded:
                    loaded.append(path)
    except OSError:
        pass
    return shipped + loaded


@functools.lru_cache(maxsize=None)
def _find_openblas_function(verb):
    """The `{prefix}_{verb}_num_threads{suffix}` function of NumPy's OpenBLAS (argument types set), or None."""
    for path in _openblas_candidates():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _SYMBOL_PREFIXES:
            for suffix in _SYMBOL_SUFFIXES:
                function = getattr(library, f"{prefix}_{verb}_num_threads{suffix}", None)
                if function is not None:
                    function.argtypes, function.restype = ([ctypes.c_int], None) if verb == "set" else ([], ctypes.c_int)
                    return function
    return None


def set_num_threads(n: int) -> None:
    """Use `n` threads in the conv/pool kernels (Numba) and in matrix products (NumPy's OpenBLAS).

    Numba cannot go above the thread count it started with (NUMBA_NUM_THREADS, by default the number of
    cores), so its count is capped there; like Numba's own setting it applies to the calling thread.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    blas_set = _find_openblas_function("set")
    if blas_set is None:
        warnings.warn("set_num_threads: NumPy's OpenBLAS was not found; only the Numba kernels' thread count "
                      "changed (set OPENBLAS_NUM_THREADS before starting Python to limit BLAS).", RuntimeWarning,
                      stacklevel=2)
        return
    blas_set(int(n))


def get_num_threads() -> int:
    """The number of threads the Numba kernels use."""
    return numba.get_num_threads()


def get_blas_num_threads():
    """The number of threads NumPy's OpenBLAS uses, or None if it cannot be reached."""
    blas_get = _find_openblas_function("get")
    return None if blas_get is None else blas_get()


# A product this large takes ~0.1 s on one core here, as long as the workers' spinning it would set off.
MULTITHREADED_BLAS_MACS = 4_000_000_000


@contextmanager
def one_blas_thread():
    """BLAS calls inside run on their calling thread alone (no worker wakes, so none spins afterwards); the
    thread count is restored after."""
    blas_get, blas_set = _find_openblas_function("get"), _find_openblas_function("set")
    threads = 1 if blas_get is None else blas_get()
    if threads == 1:
        yield
        return
    blas_set(1)
    try:
        yield
    finally:
        blas_set(threads)


def blas_for_product(macs: int):
    """One BLAS thread for a product of fewer than MULTITHREADED_BLAS_MACS multiply-adds (see the module's
    docstring for why), the set count for a larger one."""
    return one_blas_thread() if macs < MULTITHREADED_BLAS_MACS else nullcontext()
