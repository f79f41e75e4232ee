"""Thread counts of the kernels (the launch path's workers) and of BLAS (through threadpoolctl), set together
in this one place. Nothing changes at import: BLAS's counts stay until `set_num_threads` is called."""
import os
import threading
from contextlib import contextmanager, nullcontext

import numba
import numpy as np
from threadpoolctl import ThreadpoolController


def _blas_libraries() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded now (NumPy's, and any other library's)."""
    return ThreadpoolController().select(user_api="blas").lib_controllers


def _is_numpys(library) -> bool:
    """Whether `library` is the BLAS shipped inside NumPy's wheel (numpy.libs/ or numpy/.libs/)."""
    folder = os.path.dirname(os.path.realpath(library.filepath))
    numpy_dir = os.path.dirname(os.path.realpath(np.__file__))
    return folder in (os.path.join(os.path.dirname(numpy_dir), "numpy.libs"), os.path.join(numpy_dir, ".libs"))


_kernel_threads = [numba.config.NUMBA_NUM_THREADS]  # the cores Numba sees, or the NUMBA_NUM_THREADS it was given


def set_num_threads(n: int) -> None:
    """Use `n` threads in the conv/pool kernels and in matrix products (every loaded BLAS), for the whole
    process (as `torch.set_num_threads`)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    _kernel_threads[0] = int(n)
    with _single.lock:
        switched = [library.filepath for library in _single.libraries or []] if _single.users else []
        for library in _blas_libraries():
            if library.filepath not in switched:
                library.set_num_threads(int(n))
        _single.restore = [int(n)] * len(switched)  # one_blas_thread is active elsewhere: its end sets n


def get_num_threads() -> int:
    """The number of threads the kernels use: the machine's cores (or NUMBA_NUM_THREADS) until
    `set_num_threads`."""
    return _kernel_threads[0]


def get_blas_num_threads():
    """The number of threads NumPy's BLAS uses (the one in NumPy's wheel, else the first BLAS found), or None
    if threadpoolctl finds no BLAS."""
    libraries = _blas_libraries()
    ours = [library for library in libraries if _is_numpys(library)] or libraries
    return ours[0].num_threads if ours else None


class _SingleThreadedBlas:
    """How many Python threads are inside `one_blas_thread`, and each BLAS's count to restore when the last
    leaves."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = 0
        self.libraries = None  # looked up once: switching then costs one C call per library
        self.restore = []


_single = _SingleThreadedBlas()


@contextmanager
def one_blas_thread():
    """BLAS calls inside run on their calling thread alone (no BLAS worker wakes, so none spins afterwards).

    BLAS's count is process-wide, so the Python threads inside share one switch under a lock: the first to enter
    sets one thread, the last to leave restores the counts the first found (or the count `set_num_threads` asked
    for meanwhile), so no thread restores a count another still relies on. OpenBLAS may ignore a count set from
    a thread other than the main one; the products inside then simply run on the count already set."""
    with _single.lock:
        if _single.users == 0:
            if _single.libraries is None:
                _single.libraries = _blas_libraries()
            _single.restore = [library.num_threads for library in _single.libraries]
            for library, count in zip(_single.libraries, _single.restore):
                if count != 1:
                    library.set_num_threads(1)
        _single.users += 1
    try:
        yield
    finally:
        with _single.lock:
            _single.users -= 1
            if _single.users == 0:
                for library, count in zip(_single.libraries, _single.restore):
                    if count != 1:
                        library.set_num_threads(count)


MULTITHREADED_BLAS_MACS = 4_000_000_000  # a product this large takes about as long as BLAS's workers spin after it
SERIAL_BLAS_MACS = 4 * 65536  # OpenBLAS runs a GEMM of at most this many on the calling thread by itself


def blas_for_product(macs: int):
    """One BLAS thread for a product of fewer than MULTITHREADED_BLAS_MACS multiply-adds (BLAS's idle workers
    spin after a product and take the cores from the kernels that follow), the set count for a larger one.
    A product of at most SERIAL_BLAS_MACS needs no switch (OpenBLAS's GEMM_MULTITHREAD_THRESHOLD · 65536): the
    switch there and back cost more than a small model's products themselves."""
    if macs <= SERIAL_BLAS_MACS or macs >= MULTITHREADED_BLAS_MACS:
        return nullcontext()
    return one_blas_thread()
