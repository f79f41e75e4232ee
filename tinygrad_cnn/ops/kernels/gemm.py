"""out = a @ b for the conv GEMMs, split into column blocks that Python threads run at once, each on one BLAS
thread (NumPy's matmul releases the GIL).

Why not BLAS's own threads: after a multi-threaded GEMM, OpenBLAS's idle workers spin for 0.1-0.3 s and take a
core from the Numba kernels that come next (the column builders, the pools, the next layer), which then run
about 2× slower; a Python thread that has finished simply waits. The split uses as many threads as the Numba
kernels (`tc.set_num_threads`), so the two never compete.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from tinygrad_cnn.threads import one_blas_thread

MIN_COLUMNS_PER_BLOCK = 64  # narrower blocks lose more to BLAS's blocking than the split gains
_pool = None


def _helpers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                   thread_name_prefix="tinygrad_cnn-gemm")
    return _pool


def _forget_pool_in_child() -> None:
    """A forked child inherits the pool object but none of its threads: work sent to it would wait forever."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool_in_child)


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[...] = a @ b for 2-D arrays (`b` and `out` may be strided views), over get_num_threads() threads."""
    columns = out.shape[1]
    blocks = max(1, min(numba.get_num_threads(), columns // MIN_COLUMNS_PER_BLOCK))
    edges = np.linspace(0, columns, blocks + 1).astype(int)
    with one_blas_thread():
        pending = [_helpers().submit(np.matmul, a, b[:, lo:hi], out=out[:, lo:hi])
                   for lo, hi in zip(edges[1:-1], edges[2:])]
        np.matmul(a, b[:, :edges[1]], out=out[:, :edges[1]])
        for block in pending:
            block.result()
