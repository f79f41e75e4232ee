"""Depthwise convolution (one input channel per group, C_in/groups = 1): output channel m reads only input
channel c = m // (M/C), so there is no channel sum to hand to a GEMM (a GEMM per group would be a product of
one row) and the planes are too small (4×4 to 32×32) for a loop per plane to pay its start-up costs.

So each thread takes one sample and lays it out channels-last, position-major with the M output channels
contiguous (input channel c copied to each of its M/C output channels), zero-padded and split into its stride
phases as in conv_gemm.py (Q[ph, pw][a, b] = X_pad[a·S_h + ph, b·S_w + pw]). Tap (kh, kw) then reads, for a
whole output row i, the contiguous run of OW·M values of phase plane (kh·D_h mod S_h, kw·D_w mod S_w) from
position (i + ⌊kh·D_h/S_h⌋, ⌊kw·D_w/S_w⌋) on: each tap and row is one long multiply-add against the tap's
weights repeated OW times, whatever the stride, padding and dilation. Results go back to NCHW at the end. A a task owns
everything it writes (one sample; for dL/dW one sample's partial sums, added over the samples in order
afterwards), so the results are the same bits on any number of threads.
"""
import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.inner_loops import copy_strided, fill


@njit(cache=True, fastmath={"contract"})
def multiply_add(acc, acc_start, a, a_start, b, b_start, count):
    """acc[acc_start + k] += a[a_start + k] · b[b_start + k] for k < count, on flat arrays (unsigned indices, see
    copy_strided)."""
    d, s, t = np.uint64(acc_start), np.uint64(a_start), np.uint64(b_start)
    for k in range(np.uint64(count)):
        acc[d + k] += a[s + k] * b[t + k]


@njit(cache=True)
def channels_last(src, start, channels, height, width, multiplier, stride_h, stride_w, pad_h, pad_w, q_h, q_w,
                  dst):
    """dst[((phase·q_h + ⌊r/S_h⌋)·q_w + ⌊q/S_w⌋)·M + m] = X_pad[m // multiplier, r, q] with phase = (r mod S_h)·S_w +
    q mod S_w, X_pad the `channels` planes of height × width at src[start] zero-padded by P, M = channels·multiplier:
    the padded planes split into their stride phases, channels last."""
    out_channels = channels * multiplier
    fill(dst, 0, stride_h * stride_w * q_h * q_w * out_channels, 0)
    columns = np.empty(width, np.int64)  # the column part of phase_position, per input column
    for j in range(width):
        columns[j] = ((j + pad_w) % stride_w) * q_h * q_w + (j + pad_w) // stride_w
    for i in range(height):  # row by row, so the rows written stay in the L1 cache while every channel fills them
        r = i + pad_h
        row = ((r % stride_h) * stride_w * q_h + r // stride_h) * q_w
        for c in range(channels):
            for k in range(multiplier):
                m = c * multiplier + k
                for j in range(width):
                    dst[(row + columns[j]) * out_channels + m] = src[start + (c * height + i) * width + j]


@njit(cache=True)
def phase_position(r, q, stride_h, stride_w, q_h, q_w):
    """The position of X_pad[r, q] among the phase planes: (phase·q_h + ⌊r/S_h⌋)·q_w + ⌊q/S_w⌋."""
    return (((r % stride_h) * stride_w + q % stride_w) * q_h + r // stride_h) * q_w + q // stride_w


@njit(cache=True)
def tap_start(kh, kw, i, stride_h, stride_w, dil_h, dil_w, q_h, q_w, out_channels):
    """Where, in a channels_last layout, tap (kh, kw) of output row i begins reading."""
    phase = ((kh * dil_h) % stride_h) * stride_w + (kw * dil_w) % stride_w
    return ((phase * q_h + i + kh * dil_h // stride_h) * q_w + kw * dil_w // stride_w) * out_channels


@njit(cache=True)
def row_weights(weight, out_w):
    """weights[(t·OW + j)·M + m] = W[m, 0, kh, kw] for tap t = kh·K_w + kw and j < OW: each tap's weights
    contiguous over channels, repeated for the OW positions of an output row."""
    out_channels, taps = weight.shape[0], weight.shape[2] * weight.shape[3]
    weights = np.empty(taps * out_w * out_channels, weight.dtype)
    for t in range(taps):
        for j in range(out_w):
            for m in range(out_channels):
                weights[(t * out_w + j) * out_channels + m] = weight[m, 0, t // weight.shape[3], t % weight.shape[3]]
    return weights


@njit(cache=True)
def to_planes(result, out_flat, start, out_channels, out_h, out_w):
    """out_flat[start + m·OH·OW + i·OW + j] = result[(i·OW + j)·M + m]: channels-last back to NCHW, row by row (a
    row of the result, OW·M values, stays in the L1 cache while every channel reads it)."""
    for i in range(out_h):
        for m in range(out_channels):
            copy_strided(out_flat, start + m * out_h * out_w + i * out_w, 1, result, i * out_w * out_channels + m,
                         out_channels, out_w)


@parallel_kernel(tasks=lambda x, *rest: x.shape[0])
def forward(x, weight, bias, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, q_h, q_w, start, stop):
    """O[n, m, i, j] = b[m] + Σ_kh,kw W[m, 0, kh, kw] · X_pad[n, m // (M/C), i·S_h + kh·D_h, j·S_w + kw·D_w].
    A task owns O[n]."""
    batch, channels, height, width = x.shape
    out_channels, kernel_h, kernel_w = weight.shape[0], weight.shape[2], weight.shape[3]
    out_h, out_w = out.shape[2], out.shape[3]
    row = out_w * out_channels
    weights = row_weights(weight, out_w)
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    for n in range(start, stop):
        planes = np.empty(stride_h * stride_w * q_h * q_w * out_channels, x.dtype)
        channels_last(x_flat, n * channels * height * width, channels, height, width, out_channels // channels,
                      stride_h, stride_w, pad_h, pad_w, q_h, q_w, planes)
        result = np.empty(out_h * row, out.dtype)
        for i in range(out_h):
            for j in range(out_w):
                copy_strided(result, (i * out_w + j) * out_channels, 1, bias, 0, 1, out_channels)
            for kh in range(kernel_h):
                for kw in range(kernel_w):
                    multiply_add(result, i * row, weights, (kh * kernel_w + kw) * row, planes,
                                 tap_start(kh, kw, i, stride_h, stride_w, dil_h, dil_w, q_h, q_w, out_channels), row)
        to_planes(result, out_flat, n * out_channels * out_h * out_w, out_channels, out_h, out_w)


@parallel_kernel(tasks=lambda grad_out, weight, grad_in, *rest: grad_in.shape[0])
def grad_input(grad_out, weight, grad_in, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, q_h, q_w, start, stop):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated filter,
    cropped by the forward padding. With Z that padded, dilated dL/dO and r = K−1−k, dX[i] = Σ_r W[K−1−r]·
    Z[i + P + r·D] = Σ_k W[k]·dL/dO[o] over the taps k and outputs o with o·S + k·D − P = i (Z is zero
    elsewhere): each tap adds W[m, k]·dL/dO[n, m, o] where it read in the forward, and dX[n, c] is the sum of
    its M/C channels without the padding. No multiply-add meets the zeros that padding and dilating insert.
    A task owns dX[n]."""
    batch, channels, height, width = grad_in.shape
    out_channels, kernel_h, kernel_w = weight.shape[0], weight.shape[2], weight.shape[3]
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    multiplier, row = out_channels // channels, out_w * out_channels
    weights = row_weights(weight, out_w)
    grad_flat, grad_in_flat = grad_out.reshape(grad_out.size), grad_in.reshape(grad_in.size)
    for n in range(start, stop):
        grad = np.empty(out_h * row, grad_out.dtype)
        channels_last(grad_flat, n * out_channels * out_h * out_w, out_channels, out_h, out_w, 1, 1, 1, 0, 0, out_h,
                      out_w, grad)
        planes = np.zeros(stride_h * stride_w * q_h * q_w * out_channels, grad_in.dtype)
        for i in range(out_h):
            for kh in range(kernel_h):
                for kw in range(kernel_w):
                    multiply_add(planes, tap_start(kh, kw, i, stride_h, stride_w, dil_h, dil_w, q_h, q_w, out_channels),
                                 weights, (kh * kernel_w + kw) * row, grad, i * row, row)
        for i in range(height):
            for j in range(width):
                at = phase_position(i + pad_h, j + pad_w, stride_h, stride_w, q_h, q_w) * out_channels
                for c in range(channels):
                    total = planes[at + c * multiplier]
                    for k in range(1, multiplier):
                        total += planes[at + c * multiplier + k]
                    grad_in_flat[((n * channels + c) * height + i) * width + j] = total


def grad_weight(x, grad_out, grad_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, q_h, q_w):
    """dL/dW[m, 0, kh, kw] = Σ_n,i,j X_pad[n, m // (M/C), i·S_h + kh·D_h, j·S_w + kw·D_w] · dL/dO[n, m, i, j]
    (X ⋆ dL/dO, dL/dO dilated by S): one task per sample's partial sums, then the samples added in order."""
    taps = grad_w.shape[2] * grad_w.shape[3]
    partial = np.empty((x.shape[0], taps * grad_w.shape[0]), grad_w.dtype)
    sample_grad_weights(x, grad_out, partial, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, q_h, q_w,
                        grad_w.shape[2], grad_w.shape[3])
    grad_w[...] = partial.sum(axis=0, dtype=grad_w.dtype).reshape(taps, -1).T.reshape(grad_w.shape)


@parallel_kernel(tasks=lambda x, *rest: x.shape[0])
def sample_grad_weights(x, grad_out, partial, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, q_h, q_w, kernel_h,
                        kernel_w, start, stop):
    """partial[n, t·M + m] = Σ_i,j X_pad[n, m // (M/C), i·S_h + kh·D_h, j·S_w + kw·D_w] · dL/dO[n, m, i, j] for
    tap t = (kh, kw): sample n's share of dL/dW. A task owns one sample."""
    batch, channels, height, width = x.shape
    out_channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    row, taps = out_w * out_channels, kernel_h * kernel_w
    x_flat, grad_flat = x.reshape(x.size), grad_out.reshape(grad_out.size)
    for n in range(start, stop):
        planes = np.empty(stride_h * stride_w * q_h * q_w * out_channels, x.dtype)
        channels_last(x_flat, n * channels * height * width, channels, height, width, out_channels // channels,
                      stride_h, stride_w, pad_h, pad_w, q_h, q_w, planes)
        grad = np.empty(out_h * row, grad_out.dtype)
        channels_last(grad_flat, n * out_channels * out_h * out_w, out_channels, out_h, out_w, 1, 1, 1, 0, 0, out_h,
                      out_w, grad)
        sums = np.zeros(taps * row, partial.dtype)
        for i in range(out_h):
            for kh in range(kernel_h):
                for kw in range(kernel_w):
                    multiply_add(sums, (kh * kernel_w + kw) * row, planes,
                                 tap_start(kh, kw, i, stride_h, stride_w, dil_h, dil_w, q_h, q_w, out_channels),
                                 grad, i * row, row)
        for t in range(taps):  # the OW positions of each tap folded, in order
            copy_strided(partial[n], t * out_channels, 1, sums, t * row, 1, out_channels)
            for j in range(1, out_w):
                multiply_add_one(partial[n], t * out_channels, sums, (t * out_w + j) * out_channels, out_channels)


@njit(cache=True)
def multiply_add_one(acc, acc_start, a, a_start, count):
    """acc[acc_start + k] += a[a_start + k] for k < count, on flat arrays."""
    d, s = np.uint64(acc_start), np.uint64(a_start)
    for k in range(np.uint64(count)):
        acc[d + k] += a[s + k]
