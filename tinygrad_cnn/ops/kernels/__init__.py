"""Numba kernels on plain NumPy arrays: no Tensor, no autograd. This package is the one place that sets
Numba's threading layer.

Threading layer: Numba's default (OpenMP/TBB) leaves its worker threads spinning after a parallel loop,
which starves the BLAS matmul that usually follows (im2col + GEMM ran about 2x slower on this 2-core
machine). The `workqueue` layer parks its workers instead. It must be chosen before the first parallel
kernel runs; every kernel module is imported through this package, so it is.

The `workqueue` layer is not thread-safe: when two Python threads launch parallel kernels at the same time it
aborts the whole process. Callers therefore hold `launch_lock` around every kernel call (ops/conv.py,
ops/pool.py, optim/adam.py), so kernels from several Python threads run one after another.
"""
import threading

import numba

numba.config.THREADING_LAYER = "workqueue"
launch_lock = threading.Lock()
