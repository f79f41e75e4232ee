"""Numba kernels on plain NumPy arrays: no Tensor, no autograd. This package is the one place that sets
Numba's threading layer.

Threading layer: Numba's default (OpenMP/TBB) leaves its worker threads spinning after a parallel loop,
which starves the BLAS matmul that usually follows (im2col + GEMM ran about 2x slower on this 2-core
machine). The `workqueue` layer parks its workers instead. It must be chosen before the first parallel
kernel runs; every kernel module is imported through this package, so it is.
"""
import numba

numba.config.THREADING_LAYER = "workqueue"
