"""2-D convolution kernels (NCHW) and the dispatchers that pick one per call.

Geometry, per spatial axis: output size = floor((W + 2P − D·(F−1) − 1) / S) + 1 for input size W, filter F,
padding P, stride S, dilation D; it is (W − F + 2P)/S + 1 when D = 1. Cost: H·W·K²·N·M multiply-adds per
sample for an H×W output, K×K filter, N input and M output channels (H·W·N·M for a 1×1 conv).

Three directions, each a rule of its own (nothing here differentiates the forward):
  forward      O = X ⋆ W + b  (cross-correlation of the zero-padded input with the filter)
  grad_input   dL/dX = full convolution of dL/dO — zero-padded by D·(K−1), dilated by S — with the
               filter rotated 180°, cropped by the forward padding
  grad_weight  dL/dW = X ⋆ dL/dO — the padded input correlated with dL/dO dilated by S
  grad_bias    dL/db = dL/dO summed over N, H and W
and two algorithms for each: direct loops (`prange` over the slice a thread owns) or columns + one BLAS GEMM
per batch chunk. `conv2d_forward`, `conv2d_grad_input` and `conv2d_grad_weight` choose between them.

Arrays must be C-contiguous and share one float dtype (float32 or float64); callers check arguments.
"""
import numpy as np
from numba import njit, prange

from tinygrad_cnn.ops.kernels import workspace


def conv2d_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((W + 2P − D·(F−1) − 1) / S) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@njit(cache=True)
def _valid_range(offset, stride, out_size, in_size):
    """The range [lo, hi) of output positions o with 0 <= o·stride + offset < in_size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    last = in_size - 1 - offset
    hi = 0 if last < 0 else min(out_size, last // stride + 1)
    return lo, max(lo, hi)


# ---------------------------------------------------------------------------------------------- forward

@njit(parallel=True, cache=True)
def conv2d_forward_direct(x, weight, bias, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """O[n, m] = b[m] + Σ_c Σ_kh,kw W[m, c, kh, kw] · X_pad[n, c, oh·S + kh·D, ow·S + kw·D]; thread owns O[n]."""
    batch, channels, height, width = x.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    out_h, out_w = out.shape[2], out.shape[3]
    group_out = out_channels // groups
    for n in prange(batch):
        for m in range(out_channels):
            out[n, m] = bias[m]
            first_channel = (m // group_out) * group_in
            for c in range(group_in):
                for kh in range(kernel_h):
                    oh_lo, oh_hi = _valid_range(kh * dil_h - pad_h, stride_h, out_h, height)
                    for kw in range(kernel_w):
                        offset_w = kw * dil_w - pad_w
                        ow_lo, ow_hi = _valid_range(offset_w, stride_w, out_w, width)
                        w = weight[m, c, kh, kw]
                        for oh in range(oh_lo, oh_hi):
                            ih = oh * stride_h + kh * dil_h - pad_h
                            for ow in range(ow_lo, ow_hi):
                                out[n, m, oh, ow] += w * x[n, first_channel + c, ih, ow * stride_w + offset_w]


@njit(parallel=True, cache=True)
def im2col(x, first_channel, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_w):
    """cols[n, (c·KH + kh)·KW + kw, oh·OW + ow] = X_pad[n, first_channel + c, oh·S + kh·D, ow·S + kw·D].

    With these columns the forward is one GEMM per sample, W(M × C·KH·KW) @ cols[n]; thread owns cols[n].
    """
    batch, rows, positions = cols.shape
    height, width = x.shape[2], x.shape[3]
    out_h = positions // out_w
    for n in prange(batch):
        for row in range(rows):
            c = row // (kernel_h * kernel_w)
            kh = (row // kernel_w) % kernel_h
            kw = row % kernel_w
            offset_w = kw * dil_w - pad_w
            ow_lo, ow_hi = _valid_range(offset_w, stride_w, out_w, width)
            for oh in range(out_h):
                ih = oh * stride_h + kh * dil_h - pad_h
                start = oh * out_w
                if ih < 0 or ih >= height:
                    cols[n, row, start:start + out_w] = 0
                    continue
                cols[n, row, start:start + ow_lo] = 0
                for ow in range(ow_lo, ow_hi):
                    cols[n, row, start + ow] = x[n, first_channel + c, ih, ow * stride_w + offset_w]
                cols[n, row, start + ow_hi:start + out_w] = 0


@njit(parallel=True, cache=True)
def add_bias(out, bias):
    """out[n, m, :] += b[m]; thread owns out[n]."""
    for n in prange(out.shape[0]):
        for m in range(out.shape[1]):
            out[n, m] += bias[m]


# ------------------------------------------------------------------------------------------ grad input

@njit(parallel=True, cache=True)
def conv2d_grad_input_direct(grad_out, weight, grad_input, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated
    filter, cropped by the forward padding. Thread owns dX[n].

    With r = K−1−k the rotated tap, the padded, dilated gradient Z[a] = dL/dO[(a − D·(K−1)) / S] (zero
    unless the division is exact and in range) meets input position i at a = i + P + r·D. Z is non-zero
    only at a − D·(K−1) = o·S, i.e. at i = o·S + D·(K−1) − P − r·D, so the loops visit just those o.
    """
    batch, channels, height, width = grad_input.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    group_out = out_channels // groups
    for n in prange(batch):
        grad_input[n] = 0
        for c in range(channels):
            group = c // group_in
            for m in range(group * group_out, (group + 1) * group_out):
                for rh in range(kernel_h):
                    offset_h = dil_h * (kernel_h - 1) - pad_h - rh * dil_h
                    oh_lo, oh_hi = _valid_range(offset_h, stride_h, out_h, height)
                    for rw in range(kernel_w):
                        offset_w = dil_w * (kernel_w - 1) - pad_w - rw * dil_w
                        ow_lo, ow_hi = _valid_range(offset_w, stride_w, out_w, width)
                        w = weight[m, c - group * group_in, kernel_h - 1 - rh, kernel_w - 1 - rw]
                        for oh in range(oh_lo, oh_hi):
                            ih = oh * stride_h + offset_h
                            for ow in range(ow_lo, ow_hi):
                                grad_input[n, c, ih, ow * stride_w + offset_w] += w * grad_out[n, m, oh, ow]


@njit(parallel=True, cache=True)
def full_conv_cols(grad_out, first_channel, cols, taps_h, taps_w, phase_h, phase_w, in_w,
                   stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w):
    """Columns of the full convolution for the input positions i ≡ phase (mod S), rotated taps r in taps:
    cols[n, (m·Th + t)·Tw + u, j·Jw + l] = Z[n, first_channel + m, i + P + r·D] at i = phase + j·S, with
    Z = dL/dO dilated by S and zero-padded by D·(K−1) (see conv2d_grad_input_direct). Only the taps whose
    dilated position can be non-zero for this phase are listed, so no multiply-add is spent on the zeros
    that dilating by S inserts. Thread owns cols[n].
    """
    batch, rows, positions = cols.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    n_taps_h, n_taps_w = taps_h.shape[0], taps_w.shape[0]
    count_w = (in_w - phase_w + stride_w - 1) // stride_w
    count_h = positions // count_w
    for n in prange(batch):
        for row in range(rows):
            m = row // (n_taps_h * n_taps_w)
            rh = taps_h[(row // n_taps_w) % n_taps_h]
            rw = taps_w[row % n_taps_w]
            for j in range(count_h):
                # exact division by construction of the taps: a ≡ 0 (mod S)
                oh = (phase_h + j * stride_h + pad_h + rh * dil_h - dil_h * (kernel_h - 1)) // stride_h
                start = j * count_w
                if oh < 0 or oh >= out_h:
                    cols[n, row, start:start + count_w] = 0
                    continue
                ow0 = (phase_w + pad_w + rw * dil_w - dil_w * (kernel_w - 1)) // stride_w
                for l in range(count_w):
                    ow = ow0 + l
                    cols[n, row, start + l] = grad_out[n, first_channel + m, oh, ow] if 0 <= ow < out_w else 0


# ----------------------------------------------------------------------------------------- grad weight

@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def conv2d_grad_weight_direct(x, grad_out, grad_weight, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dL/dW[m, c, kh, kw] = Σ_n Σ_oh,ow X_pad[n, c, oh·S + kh·D, ow·S + kw·D] · dL/dO[n, m, oh, ow]:
    the padded input correlated with dL/dO dilated by S. Thread owns dW[m]. (reassoc lets the sums vectorise.)
    """
    batch, _, height, width = x.shape
    out_channels, group_in, kernel_h, kernel_w = grad_weight.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    group_out = out_channels // groups
    for m in prange(out_channels):
        first_channel = (m // group_out) * group_in
        for c in range(group_in):
            for kh in range(kernel_h):
                oh_lo, oh_hi = _valid_range(kh * dil_h - pad_h, stride_h, out_h, height)
                for kw in range(kernel_w):
                    offset_w = kw * dil_w - pad_w
                    ow_lo, ow_hi = _valid_range(offset_w, stride_w, out_w, width)
                    total = grad_weight.dtype.type(0)
                    for n in range(batch):
                        for oh in range(oh_lo, oh_hi):
                            ih = oh * stride_h + kh * dil_h - pad_h
                            for ow in range(ow_lo, ow_hi):
                                total += x[n, first_channel + c, ih, ow * stride_w + offset_w] * grad_out[n, m, oh, ow]
                    grad_weight[m, c, kh, kw] = total


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def conv2d_grad_bias(grad_out):
    """dL/db[m] = Σ_n,oh,ow dL/dO[n, m, oh, ow]; thread owns db[m]."""
    batch, out_channels = grad_out.shape[0], grad_out.shape[1]
    grad_bias = np.empty(out_channels, grad_out.dtype)
    for m in prange(out_channels):
        total = grad_out.dtype.type(0)
        for n in range(batch):
            total += grad_out[n, m].sum()
        grad_bias[m] = total
    return grad_bias


# ----------------------------------------------------------------------------------------- dispatchers

_CHUNK_BYTES = 4 << 20  # columns per GEMM batch chunk: measured, see benchmarks/conv.py


def _chunk(batch: int, bytes_per_sample: int) -> int:
    return max(1, min(batch, _CHUNK_BYTES // max(1, bytes_per_sample)))


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, algorithm=None):
    """O = X ⋆ W + b as a fresh (N, M, OH, OW) array; `algorithm` forces 'direct' or 'gemm'."""
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch, channels, height, width = x.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    out_h = conv2d_output_size(height, kernel_h, stride_h, pad_h, dil_h)
    out_w = conv2d_output_size(width, kernel_w, stride_w, pad_w, dil_w)
    out = np.empty((batch, out_channels, out_h, out_w), x.dtype)
    if bias is None:
        bias = np.zeros(out_channels, x.dtype)
    if algorithm is None:
        algorithm = "gemm"
    if algorithm == "direct":
        conv2d_forward_direct(x, weight, bias, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
        return out
    group_out = out_channels // groups
    rows, positions = group_in * kernel_h * kernel_w, out_h * out_w
    weight_matrix = weight.reshape(out_channels, rows)
    out_matrix = out.reshape(batch, out_channels, positions)
    if kernel_h == kernel_w == stride_h == stride_w == 1 and pad_h == pad_w == 0 and groups == 1:
        # 1×1 conv: a plain GEMM per sample, H·W·N·M, no columns to build
        np.matmul(weight_matrix, x.reshape(batch, channels, positions), out=out_matrix)
    else:
        chunk = _chunk(batch, rows * positions * x.itemsize)
        buffer = workspace.get("im2col", (chunk, rows, positions), x.dtype)
        for start in range(0, batch, chunk):
            stop = min(batch, start + chunk)
            cols = buffer[:stop - start]
            for group in range(groups):
                im2col(x[start:stop], group * group_in, cols, kernel_h, kernel_w,
                       stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_w)
                members = slice(group * group_out, (group + 1) * group_out)
                np.matmul(weight_matrix[members], cols, out=out_matrix[start:stop, members])
    add_bias(out_matrix, bias)
    return out


def _rotated_taps(kernel, stride, padding, dilation, phase):
    """Rotated taps r whose dilated position can be non-zero for input positions ≡ phase (mod S)."""
    return np.array([r for r in range(kernel)
                     if (phase + padding + r * dilation - dilation * (kernel - 1)) % stride == 0], np.int64)


def conv2d_grad_input(grad_out, weight, input_shape, stride, padding, dilation, groups, algorithm=None):
    """dL/dX (fresh array of `input_shape`) by the full-convolution rule; `algorithm`: 'direct' or 'gemm'."""
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch, channels, height, width = input_shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    if algorithm is None:
        algorithm = "gemm"
    if algorithm == "direct":
        grad_input = np.empty(input_shape, grad_out.dtype)
        conv2d_grad_input_direct(grad_out, weight, grad_input, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
        return grad_input
    group_out = out_channels // groups
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    if kernel_h == kernel_w == stride_h == stride_w == 1 and pad_h == pad_w == 0 and groups == 1:
        # 1×1 conv: dX[n] = Wᵀ @ dO[n], one GEMM per sample
        grad_input = np.matmul(weight.reshape(out_channels, channels).T, grad_out.reshape(batch, out_channels, -1))
        return grad_input.reshape(input_shape)
    grad_input = np.empty(input_shape, grad_out.dtype) if stride_h == stride_w == 1 else np.zeros(input_shape, grad_out.dtype)
    rotated = weight[:, :, ::-1, ::-1]
    for phase_h in range(min(stride_h, height)):
        taps_h = _rotated_taps(kernel_h, stride_h, pad_h, dil_h, phase_h)
        for phase_w in range(min(stride_w, width)):
            taps_w = _rotated_taps(kernel_w, stride_w, pad_w, dil_w, phase_w)
            if len(taps_h) == 0 or len(taps_w) == 0:
                continue  # no tap reaches these input positions: their gradient stays zero
            count_h = len(range(phase_h, height, stride_h))
            count_w = len(range(phase_w, width, stride_w))
            rows, positions = group_out * len(taps_h) * len(taps_w), count_h * count_w
            # the rotated filter as a (C_in/groups) × (M/groups · taps) matrix per group, rows in cols' order
            filters = rotated[:, :, taps_h][:, :, :, taps_w].transpose(1, 0, 2, 3)
            chunk = _chunk(batch, rows * positions * grad_out.itemsize)
            buffer = workspace.get("full_conv_cols", (chunk, rows, positions), grad_out.dtype)
            for start in range(0, batch, chunk):
                stop = min(batch, start + chunk)
                cols = buffer[:stop - start]
                for group in range(groups):
                    full_conv_cols(grad_out[start:stop], group * group_out, cols, taps_h, taps_w, phase_h, phase_w,
                                   width, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w)
                    members = slice(group * group_in, (group + 1) * group_in)
                    matrix = filters[:, group * group_out:(group + 1) * group_out].reshape(group_in, rows)
                    block = grad_input[start:stop, members, phase_h::stride_h, phase_w::stride_w]
                    if stride_h == stride_w == 1 and groups == 1:
                        np.matmul(matrix, cols, out=block.reshape(stop - start, group_in, positions))
                    else:
                        block[...] = np.matmul(matrix, cols).reshape(block.shape)
    return grad_input


def conv2d_grad_weight(x, grad_out, weight_shape, stride, padding, dilation, groups, algorithm=None):
    """dL/dW = X ⋆ dL/dO (fresh array of `weight_shape`); `algorithm`: 'direct' or 'gemm'."""
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch, channels = x.shape[0], x.shape[1]
    out_channels, group_in, kernel_h, kernel_w = weight_shape
    grad_weight = np.empty(weight_shape, x.dtype)
    if algorithm is None:
        algorithm = "gemm"
    if algorithm == "direct":
        conv2d_grad_weight_direct(x, grad_out, grad_weight, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
        return grad_weight
    group_out = out_channels // groups
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    rows, positions = group_in * kernel_h * kernel_w, out_h * out_w
    grad_out_matrix = grad_out.reshape(batch, out_channels, positions)
    grad_weight_matrix = grad_weight.reshape(out_channels, rows)
    grad_weight_matrix[...] = 0
    chunk = _chunk(batch, rows * positions * x.itemsize)
    buffer = workspace.get("im2col", (chunk, rows, positions), x.dtype)
    for start in range(0, batch, chunk):
        stop = min(batch, start + chunk)
        cols = buffer[:stop - start]
        for group in range(groups):
            im2col(x[start:stop], group * group_in, cols, kernel_h, kernel_w,
                   stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_w)
            members = slice(group * group_out, (group + 1) * group_out)
            # Σ_n dO[n] @ cols[n]ᵀ: the correlation X ⋆ dL/dO as a GEMM over output positions
            grad_weight_matrix[members] += np.matmul(grad_out_matrix[start:stop, members], cols.transpose(0, 2, 1)).sum(0)
    return grad_weight
