"""Shape arithmetic of windowed ops (conv and pooling), in one place for the kernels, the Functions, the functional
wrappers, the layers and `summary`. It sits with the kernels, the lowest layer that needs it, so every user
imports it downward."""
import functools

import numpy as np
from numba import njit


def pair(value, name: str, op: str) -> tuple:
    """An int or an (h, w) pair of ints as a pair; a TypeError naming the op otherwise."""
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                     for v in values):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in values)


def kernel_span(kernel: int, dilation: int = 1) -> int:
    """Rows (or columns) a kernel of K taps, D apart, covers: D·(K−1) + 1."""
    return dilation * (kernel - 1) + 1


def conv2d_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """floor((W + 2P − D·(F−1) − 1) / S) + 1, which is (W − F + 2P)/S + 1 when D = 1: the windows that fit."""
    return (size + 2 * padding - kernel_span(kernel, dilation)) // stride + 1


def output_hw(input_hw, kernel, stride, padding, dilation=(1, 1)) -> tuple:
    """(OH, OW) of a conv or pool over an H×W plane, each axis by conv2d_output_size (a pool has D = 1)."""
    return tuple(conv2d_output_size(input_hw[i], kernel[i], stride[i], padding[i], dilation[i]) for i in range(2))


def same_padding(kernel: int, dilation: int = 1) -> tuple:
    """(padding on both sides, extra on the bottom/right) that keep the input's size at stride 1: the dilated
    kernel spans D·(K−1) + 1, so D·(K−1) rows of padding in all, the odd one (even K) at the end, as PyTorch."""
    total = dilation * (kernel - 1)
    return total // 2, total - 2 * (total // 2)


@functools.lru_cache(maxsize=64)
def plane_positions(out_h: int, out_w: int, row_step: int, column_step: int = 1) -> np.ndarray:
    """positions[q] = oh·row_step + ow·column_step for output position q = oh·OW + ow, as int64: where each output
    of an OH × OW plane sits on input planes of row pitch `row_step`. Remembered per geometry (callers only read
    it): the conv kernels ask for it every step."""
    return (np.arange(out_h)[:, None] * row_step + np.arange(out_w) * column_step).reshape(-1).astype(np.int64)


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def valid_range(offset, stride, out_size, in_size):
    """The range [lo, hi) of output positions o < out_size with 0 <= o·stride + offset < in_size. Conditional
    expressions, not min/max: each of those compiles Numba's generic implementation for tuples anew."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    lo = lo if lo < out_size else out_size
    last = in_size - 1 - offset
    hi = 0 if last < 0 else last // stride + 1
    hi = hi if hi < out_size else out_size
    return lo, hi if hi > lo else lo
