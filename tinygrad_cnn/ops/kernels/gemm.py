"""The conv GEMMs, split into blocks (of columns, or of a stack's matrices) that Python threads run at once,
each on one BLAS thread (NumPy's matmul releases the GIL).

Why not BLAS's own threads: after a multi-threaded GEMM, OpenBLAS's idle workers keep spinning and take a core
from the Numba kernels that come next (the column builders, the pools, the next layer); a Python thread that
has finished simply waits (figures in benchmarks/RESULTS.md). The split uses as many threads as the Numba
kernels (`tc.set_num_threads`), so the two never compete.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from tinygrad_cnn.runtime import one_blas_thread

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


def _split(count: int, min_per_block: int, run) -> None:
    """run(lo, hi) over contiguous blocks of range(count), one per thread (the caller runs the first), with
    one BLAS thread each."""
    blocks = max(1, min(numba.get_num_threads(), count // min_per_block))
    edges = np.linspace(0, count, blocks + 1).astype(int)
    with one_blas_thread():
        pending = [_helpers().submit(run, lo, hi) for lo, hi in zip(edges[1:-1], edges[2:])]
        run(0, edges[1])
        for block in pending:
            block.result()


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[...] = a @ b for 2-D arrays (`b` and `out` may be strided views), split into column blocks."""
    _split(out.shape[1], MIN_COLUMNS_PER_BLOCK, lambda lo, hi: np.matmul(a, b[:, lo:hi], out=out[:, lo:hi]))


def gemm_stack(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[s] = a @ b[s] (a 2-D) or a[s] @ b[s] (a 3-D) for stacks of matrices, split into blocks of s."""
    def run(lo, hi):
        np.matmul(a if a.ndim == 2 else a[lo:hi], b[lo:hi], out=out[lo:hi])
    _split(out.shape[0], 1, run)
