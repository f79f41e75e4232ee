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
import functools
import threading
import types

import numba

numba.config.THREADING_LAYER = "workqueue"
launch_lock = threading.Lock()


def parallel_kernel(function=None, **options):
    """`@njit(parallel=True, cache=True, **options)`, with a serial twin (the same code compiled without
    `parallel`, where `prange` is `range`) that runs instead while Numba has one thread. With one thread a
    parallel launch only costs: ~45 us per launch on the workqueue layer here, and the lone worker thread ran
    the LeNet's second conv 25% slower than the calling thread runs the twin (1.0 against 0.8 ms forward). The
    twin has a name of its own, so that the two do not share a cache entry."""
    if function is None:  # used as @parallel_kernel(fastmath=...)
        return functools.partial(parallel_kernel, **options)
    parallel = numba.njit(parallel=True, cache=True, **options)(function)
    twin = types.FunctionType(function.__code__, function.__globals__, function.__name__ + "_serial",
                              function.__defaults__, function.__closure__)
    twin.__qualname__ = function.__qualname__ + "_serial"
    serial = numba.njit(cache=True, **options)(twin)

    @functools.wraps(function)
    def launch(*args):
        return (serial if numba.get_num_threads() == 1 else parallel)(*args)
    launch.parallel, launch.serial = parallel, serial
    return launch


SMALL_PASS = 1 << 19  # elements


def sized(kernel, elements: int):
    """`kernel` for a memory-bound pass over `elements` elements, or its serial twin when the pass is small:
    two threads share one memory bus, and below SMALL_PASS the launch costs more than the split gains.
    Measured at two threads (us, parallel / serial): 2×2 max-pool of 64×6×28×28 357 / 236, its backward
    454 / 292; of 64×64×24×24 1763 / 1943."""
    return kernel.serial if elements < SMALL_PASS else kernel
