"""2-D pooling kernels (NCHW) on plain arrays. Each task owns one (sample, channel) plane, of
the output in the forward and of the input gradient in the backward, so overlapping windows never race.

Window (i, j) covers input rows i·S − P … i·S − P + K − 1 (likewise columns), clipped to the input: padding
counts as −inf for max-pooling and as zeros for average-pooling (which divides by K_h·K_w, PyTorch's
count_include_pad=True). Output size per axis: geometry.conv2d_output_size with D = 1.
"""
import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.geometry import output_hw, valid_range
from tinygrad_cnn.ops.kernels.inner_loops import axpy_strided, fill, sum_range
from tinygrad_cnn.runtime.array_pool import empty


def _first_planes(planes, *rest):
    """The tasks of a kernel: the planes of its first argument, each owned by one task."""
    return planes.shape[0]


def _input_elements(planes, *rest):
    """The pass of a forward: the input, its first argument."""
    return planes.size


def _gradient_elements(*arguments):
    """The pass of a backward: the input gradient, its last argument."""
    return arguments[-1].size


@parallel_kernel(tasks=_first_planes, elements=_input_elements)
def _max_pool_forward(planes, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out, winners, start, stop):
    """out = each window's maximum; winners = its flat index in the plane: the first maximum in row-major
    order, as PyTorch (a strict `>` keeps the earlier of equal values). A NaN wins, as in PyTorch's max-pool
    (here the first NaN of the window). Padding is never read, so it acts as −∞.

    The NaN test is kept out of the comparison: with it there, LLVM can no longer turn the data-dependent
    `if` into a branch-free select, and the forward ran ~3× slower on random data.
    """
    count, height, width = planes.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in range(start, stop):
        for i in range(out_h):
            top, bottom = max(i * stride_h - pad_h, 0), min(i * stride_h - pad_h + kernel_h, height)
            for j in range(out_w):
                left, right = max(j * stride_w - pad_w, 0), min(j * stride_w - pad_w + kernel_w, width)
                best, where, saw_nan = planes[p, top, left], top * width + left, False
                for r in range(top, bottom):
                    for q in range(left, right):
                        value = planes[p, r, q]
                        if value > best:
                            best, where = value, r * width + q
                        saw_nan |= value != value
                if saw_nan:  # rare: find the first NaN
                    for index in range(bottom * width - 1, top * width + left - 1, -1):
                        r, q = index // width, index % width
                        if left <= q < right and planes[p, r, q] != planes[p, r, q]:
                            best, where = planes[p, r, q], index
                out[p, i, j] = best
                winners[p, i, j] = where


@parallel_kernel(tasks=_first_planes, elements=_input_elements)
def _max_pool_forward_2x2(planes, out, winners, start, stop):
    """The same for 2×2 windows at stride 2 without padding, the pool of most CNNs, written out: with the
    window's four cells known, LLVM makes the comparisons branch-free; the general loop's data-dependent
    branches cost several times more on random data (benchmarks/RESULTS.md).
    Same winners: first maximum in row-major order, the first NaN if any."""
    count, width = planes.shape[0], planes.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    for p in range(start, stop):
        for i in range(out_h):
            for j in range(out_w):
                r, q = 2 * i, 2 * j
                a, b, c, d = planes[p, r, q], planes[p, r, q + 1], planes[p, r + 1, q], planes[p, r + 1, q + 1]
                best, where = a, r * width + q
                if b > best:
                    best, where = b, r * width + q + 1
                if c > best:
                    best, where = c, (r + 1) * width + q
                if d > best:
                    best, where = d, (r + 1) * width + q + 1
                if (a != a) | (b != b) | (c != c) | (d != d):  # rare: the first NaN wins
                    if a != a:
                        best, where = a, r * width + q
                    elif b != b:
                        best, where = b, r * width + q + 1
                    elif c != c:
                        best, where = c, (r + 1) * width + q
                    else:
                        best, where = d, (r + 1) * width + q + 1
                out[p, i, j] = best
                winners[p, i, j] = where


@parallel_kernel(tasks=_first_planes, elements=_gradient_elements)
def _max_pool_backward(grad_out, winners, grad_in, start, stop):
    """Each window's whole gradient goes to its winner: dL/dx[winner] += dL/dO."""
    count, out_h, out_w = grad_out.shape
    width = grad_in.shape[2]
    for p in range(start, stop):
        grad_in[p] = 0
        for i in range(out_h):
            for j in range(out_w):
                where = winners[p, i, j]
                if where >= 0:
                    grad_in[p, where // width, where % width] += grad_out[p, i, j]


@parallel_kernel(tasks=_first_planes, elements=_input_elements)
def _avg_pool_forward(planes, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out, start, stop):
    """out = window sum / (K_h·K_w), tap by tap over a whole output row: zero padding counts in the average."""
    count, height, width = planes.shape
    out_h, out_w = out.shape[1], out.shape[2]
    planes_flat, out_flat = planes.reshape(planes.size), out.reshape(out.size)
    share = 1.0 / (kernel_h * kernel_w)
    for p in range(start, stop):
        for i in range(out_h):
            row = (p * out_h + i) * out_w
            fill(out_flat, row, out_w, 0)
            for kh in range(kernel_h):
                r = i * stride_h - pad_h + kh
                if 0 <= r < height:
                    for kw in range(kernel_w):
                        lo, hi = valid_range(kw - pad_w, stride_w, out_w, width)
                        axpy_strided(out_flat, row + lo, 1, planes_flat,
                                     (p * height + r) * width + lo * stride_w + kw - pad_w, stride_w, hi - lo, share)


@parallel_kernel(tasks=_first_planes, elements=_gradient_elements)
def _avg_pool_backward(grad_out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, grad_in, start, stop):
    """Each window's gradient spread evenly: dL/dx[window] += dL/dO / (K_h·K_w), tap by tap over an output row."""
    count, out_h, out_w = grad_out.shape
    height, width = grad_in.shape[1], grad_in.shape[2]
    grad_flat, grad_in_flat = grad_out.reshape(grad_out.size), grad_in.reshape(grad_in.size)
    share = 1.0 / (kernel_h * kernel_w)
    for p in range(start, stop):
        fill(grad_in_flat, p * height * width, height * width, 0)
        for i in range(out_h):
            for kh in range(kernel_h):
                r = i * stride_h - pad_h + kh
                if 0 <= r < height:
                    for kw in range(kernel_w):
                        lo, hi = valid_range(kw - pad_w, stride_w, out_w, width)
                        axpy_strided(grad_in_flat, (p * height + r) * width + lo * stride_w + kw - pad_w, stride_w,
                                     grad_flat, (p * out_h + i) * out_w + lo, 1, hi - lo, share)


@njit(cache=True, no_cfunc_wrapper=True)
def _adaptive_bin(index, in_size, out_size):
    """PyTorch's bins: [floor(i·W / out), ceil((i + 1)·W / out))."""
    return (index * in_size) // out_size, -((-(index + 1) * in_size) // out_size)


@parallel_kernel(tasks=_first_planes, elements=_input_elements)
def _adaptive_avg_pool_forward(planes, out, start, stop):
    count, height, width = planes.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in range(start, stop):
        for i in range(out_h):
            top, bottom = _adaptive_bin(i, height, out_h)
            for j in range(out_w):
                left, right = _adaptive_bin(j, width, out_w)
                total = planes.dtype.type(0)
                for r in range(top, bottom):
                    for q in range(left, right):
                        total += planes[p, r, q]
                out[p, i, j] = total / ((bottom - top) * (right - left))


@parallel_kernel(tasks=_first_planes, elements=_gradient_elements)
def _adaptive_avg_pool_backward(grad_out, grad_in, start, stop):
    count, out_h, out_w = grad_out.shape
    height, width = grad_in.shape[1], grad_in.shape[2]
    for p in range(start, stop):
        grad_in[p] = 0
        for i in range(out_h):
            top, bottom = _adaptive_bin(i, height, out_h)
            for j in range(out_w):
                left, right = _adaptive_bin(j, width, out_w)
                share = grad_out[p, i, j] / ((bottom - top) * (right - left))
                for r in range(top, bottom):
                    for q in range(left, right):
                        grad_in[p, r, q] += share


@parallel_kernel(tasks=lambda x_flat, size, out_flat: out_flat.shape[0], elements=_input_elements)
def _global_avg_pool_forward(x_flat, size, out_flat, start, stop):
    """out[p] = the mean of plane p (output size 1×1): one contiguous sum per plane, no bins to work out."""
    for p in range(start, stop):
        out_flat[p] = sum_range(x_flat, p * size, size, out_flat.dtype.type(0)) / size


@parallel_kernel(tasks=_first_planes, elements=_gradient_elements)
def _global_avg_pool_backward(grad_flat, size, grad_in_flat, start, stop):
    """dL/dx[p, :, :] = dL/dO[p] / (H·W): the plane's one gradient spread evenly."""
    for p in range(start, stop):
        fill(grad_in_flat, p * size, size, grad_flat[p] / size)


def _planes(array):
    """(N, C, H, W) as (N·C, H, W) without copying (the array must be C-contiguous)."""
    return array.reshape(-1, array.shape[2], array.shape[3])


def max_pool2d_forward(x, kernel, stride, padding):
    """(out, winners): the window maxima and, per window, the flat index of its winner in the input plane."""
    shape = x.shape[:2] + output_hw(x.shape[2:], kernel, stride, padding)
    out, winners = empty(shape, x.dtype), empty(shape, np.int32)
    if kernel == stride == (2, 2) and padding == (0, 0):
        _max_pool_forward_2x2(_planes(x), _planes(out), _planes(winners))
    else:
        _max_pool_forward(_planes(x), *kernel, *stride, *padding, _planes(out), _planes(winners))
    return out, winners


def max_pool2d_backward(grad_out, winners, input_shape):
    """dL/dx: each window's gradient routed to its winner (summed where windows overlap)."""
    grad_in = empty(input_shape, grad_out.dtype)
    _max_pool_backward(_planes(grad_out), _planes(winners), _planes(grad_in))
    return grad_in


def avg_pool2d_forward(x, kernel, stride, padding):
    """Window averages, zero padding included in the count."""
    out = empty(x.shape[:2] + output_hw(x.shape[2:], kernel, stride, padding), x.dtype)
    _avg_pool_forward(_planes(x), *kernel, *stride, *padding, _planes(out))
    return out


def avg_pool2d_backward(grad_out, input_shape, kernel, stride, padding):
    """dL/dx: each window's gradient spread evenly over its K_h·K_w positions (those in the padding dropped)."""
    grad_in = empty(input_shape, grad_out.dtype)
    _avg_pool_backward(_planes(grad_out), *kernel, *stride, *padding, _planes(grad_in))
    return grad_in


def adaptive_avg_pool2d_forward(x, output_size):
    """Averages over PyTorch's adaptive bins, giving an output of `output_size` (h, w)."""
    out = empty(x.shape[:2] + tuple(output_size), x.dtype)
    if tuple(output_size) == (1, 1):
        _global_avg_pool_forward(x.reshape(-1), x.shape[2] * x.shape[3], out.reshape(-1))
    else:
        _adaptive_avg_pool_forward(_planes(x), _planes(out))
    return out


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """dL/dx: each bin's gradient spread evenly over the bin."""
    grad_in = empty(input_shape, grad_out.dtype)
    if grad_out.shape[2:] == (1, 1):
        _global_avg_pool_backward(grad_out.reshape(-1), input_shape[2] * input_shape[3], grad_in.reshape(-1))
    else:
        _adaptive_avg_pool_backward(_planes(grad_out), _planes(grad_in))
    return grad_in
