"""Elementwise passes over flat C-contiguous arrays, split over the threads in runs of RUN elements: ReLU and its
gradient in one pass each, the sum of two arrays of one shape, and dropout's scaled mask."""
import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.runtime import SMALL_PASS
from tinygrad_cnn.runtime.array_pool import empty_like

RUN = 1 << 16  # elements per task: a task's three streams stay well inside the L2 cache


def _runs(x, *rest):
    """A pass's tasks: its first flat array in runs of RUN elements."""
    return -(-x.size // RUN)


def _elements(x, *rest):
    return x.size


@parallel_kernel(tasks=_runs, elements=_elements)
def relu_forward(x, zero, out, start, stop):
    """out[i] = max(x[i], 0) on flat C-contiguous arrays, NaN kept (as PyTorch); `zero` is 0 of their dtype.
    About twice as fast as np.maximum(x, 0), which runs its general broadcasting loop."""
    for i in range(np.uint64(start * RUN), np.uint64(min(stop * RUN, x.size))):
        out[i] = zero if x[i] <= zero else x[i]


@parallel_kernel(tasks=_runs, elements=_elements)
def relu_backward(grad, out, zero, grad_in, start, stop):
    """dL/dx[i] = dL/dy[i] where y[i] = max(x[i], 0) > 0, else 0 (PyTorch's gradient at 0), on flat C-contiguous
    arrays; `zero` is 0 of their dtype. One pass: NumPy's grad · (x > 0) builds a mask first and converts it to
    floats."""
    for i in range(np.uint64(start * RUN), np.uint64(min(stop * RUN, grad.size))):
        grad_in[i] = grad[i] if out[i] > 0 else zero


@parallel_kernel(tasks=_runs, elements=_elements)
def add(a, b, out, start, stop):
    """out[i] = a[i] + b[i] (the residual sum of two activations: NumPy's a + b runs on one thread)."""
    for i in range(np.uint64(start * RUN), np.uint64(min(stop * RUN, a.size))):
        out[i] = a[i] + b[i]


def sum_of(a, b):
    """a + b: `add` on the threads for two C-contiguous float arrays of one shape and dtype from SMALL_PASS
    elements on (the same bits), NumPy's a + b otherwise (broadcasting, mixed dtypes, scalars)."""
    if (isinstance(a, np.ndarray) and a.size >= SMALL_PASS and isinstance(b, np.ndarray) and a.shape == b.shape
            and a.dtype == b.dtype and a.dtype.kind == "f" and a.flags.c_contiguous and b.flags.c_contiguous):
        out = empty_like(a)
        add(a.reshape(-1), b.reshape(-1), out.reshape(-1))
        return out
    return a + b


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment and multipliers (Steele, Lea, Flood, 2014)
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def _uniform(seed, i):
    """A uniform draw in [0, 1) for element i of the stream `seed`: SplitMix64's output function applied to
    seed + (i + 1)·golden, its top 53 bits. Counter-based, so any thread draws any element, and the backward
    draws the forward's mask again."""
    z = seed + (np.uint64(i) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@parallel_kernel(tasks=_runs, elements=_elements)
def dropout(x, seed, p, scale, out, start, stop):
    """out[i] = x[i]·scale where the draw of element i is at least p (probability 1 − p), else x[i]·0 (NaN for an
    infinite or NaN x[i], as PyTorch's x·mask): dropout's forward with x the input, and its backward with x the
    incoming gradient and the same seed."""
    zero = out.dtype.type(0)
    for i in range(np.uint64(start * RUN), np.uint64(min(stop * RUN, x.size))):
        out[i] = x[i] * (scale if _uniform(seed, i) >= p else zero)
