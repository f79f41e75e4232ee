"""Index arithmetic shared by the conv and pool kernels."""
from numba import njit


def conv2d_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """floor((W + 2P − D·(F−1) − 1) / S) + 1, which is (W − F + 2P)/S + 1 when D = 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@njit(cache=True)
def valid_range(offset, stride, out_size, in_size):
    """The range [lo, hi) of output positions o < out_size with 0 <= o·stride + offset < in_size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    last = in_size - 1 - offset
    hi = 0 if last < 0 else min(out_size, last // stride + 1)
    return min(lo, out_size), max(min(lo, out_size), hi)
