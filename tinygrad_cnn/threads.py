"""Thread counts for Numba's kernels and NumPy's BLAS, set together in this one place.

NumPy's bundled OpenBLAS is reached through ctypes (no extra dependency): the loaded library is found in
/proc/self/maps or next to NumPy, and its `*openblas_set_num_threads*` symbol is called. If it cannot be
found, only Numba's count changes and a warning says so. Nothing is changed at import: the defaults stay.
"""
import ctypes
import glob
import os
import warnings

import numba
import numpy as np

_SYMBOL_PREFIXES = ("scipy_openblas", "openblas")
_SYMBOL_SUFFIXES = ("64_", "", "_64")


def _openblas_candidates():
    """Paths of OpenBLAS libraries: the ones this process has loaded first, then those shipped with NumPy."""
    loaded = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in os.path.basename(path) and path not in loaded:
                    loaded.append(path)
    except OSError:
        pass
    numpy_dir = os.path.dirname(np.__file__)
    shipped = glob.glob(os.path.join(numpy_dir, "..", "numpy.libs", "*openblas*")) + \
        glob.glob(os.path.join(numpy_dir, ".libs", "*openblas*"))
    return loaded + shipped


def _find_openblas_function(verb):
    """The `{prefix}_{verb}_num_threads{suffix}` function of NumPy's OpenBLAS, or None."""
    for path in _openblas_candidates():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _SYMBOL_PREFIXES:
            for suffix in _SYMBOL_SUFFIXES:
                function = getattr(library, f"{prefix}_{verb}_num_threads{suffix}", None)
                if function is not None:
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
    blas_set.argtypes, blas_set.restype = [ctypes.c_int], None
    blas_set(int(n))


def get_num_threads() -> int:
    """The number of threads the Numba kernels use."""
    return numba.get_num_threads()


def get_blas_num_threads():
    """The number of threads NumPy's OpenBLAS uses, or None if it cannot be reached."""
    blas_get = _find_openblas_function("get")
    if blas_get is None:
        return None
    blas_get.argtypes, blas_get.restype = [], ctypes.c_int
    return blas_get()
