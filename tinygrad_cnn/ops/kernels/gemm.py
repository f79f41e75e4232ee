"""The conv GEMMs, split into blocks (of columns, or of a stack's matrices) that Python threads run at once,
each on one BLAS thread (NumPy's matmul releases the GIL).

Why not BLAS's own threads: after a multi-threaded GEMM, OpenBLAS's idle workers keep spinning and take a core
from the Numba kernels that come next (the column builders, the pools, the next layer); a Python thread that
has finished simply waits (figures in benchmarks/RESULTS.md). The blocks run on the kernels' worker threads
(runtime/launch.py), as many as `tc.set_num_threads` says, so the two never compete.
"""
import numpy as np

from tinygrad_cnn.runtime import get_num_threads, one_blas_thread
from tinygrad_cnn.runtime.launch import run_in_parts, split

MIN_COLUMNS_PER_BLOCK = 64  # narrower blocks lose more to BLAS's blocking than the split gains
COLUMN_BLOCKS = 4  # a product's column blocks, whatever the thread count


def _split(count: int, min_per_block: int, run) -> None:
    """run(lo, hi) over contiguous blocks of range(count), one per thread (the caller runs the first), with
    one BLAS thread each."""
    blocks = max(1, min(get_num_threads(), count // min_per_block))
    with one_blas_thread():
        run_in_parts(run, (), split(count, blocks))


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[...] = a @ b for 2-D arrays (`b` and `out` may be strided views), in up to COLUMN_BLOCKS blocks of
    columns, each one BLAS call, the threads taking whole blocks. The blocks do not depend on the thread count,
    so neither do the bits: a BLAS may sum a column differently inside a narrower product (OpenBLAS's Haswell
    kernels do, its SkylakeX kernels did not), and a split by the thread count made the MNIST models train
    differently on one and on two threads there."""
    columns = split(out.shape[1], max(1, min(COLUMN_BLOCKS, out.shape[1] // MIN_COLUMNS_PER_BLOCK)))

    def run(first, last):
        for lo, hi in columns[first:last]:
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])
    _split(len(columns), 1, run)


def gemm_stack(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[s] = a @ b[s] (a 2-D) or a[s] @ b[s] (a 3-D) for stacks of matrices, split into blocks of s."""
    def run(lo, hi):
        np.matmul(a if a.ndim == 2 else a[lo:hi], b[lo:hi], out=out[lo:hi])
    _split(out.shape[0], 1, run)
