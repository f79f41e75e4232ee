"""Depthwise convolution (C_in/groups = 1) at stride 1 with 'same' padding (2P = D·(K−1) on each axis, so the
output plane is the input plane's size: MobileNet's 3×3, padding 1), straight on NCHW planes: no copies at all.

Output position p = i·W + j of a plane reads input position p + (kh·D_h − P_h)·W + (kw·D_w − P_w) for tap (kh,
kw), the same flat shift for every position, so a chunk of LANES consecutive positions (across row ends) is one
vector load per tap; the lanes whose tap falls into the padding or past the plane's edge are masked off (a
table of bits per chunk and tap, built once per call). Each direction is then a few masked vector
multiply-adds per chunk and tap (vector_taps.masked_taps, masked_correlate). A task owns one plane written
(dL/dW: one output channel over all samples, in order): the same bits on any thread count.
"""
import functools

import numpy as np

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.vector_taps import LANES, masked_correlate, masked_taps


def fits(weight_shape, stride, padding, dilation):
    """Whether the output plane is the input plane's size at stride 1 (2P = D·(K−1) on both axes)."""
    return tuple(stride) == (1, 1) and all(2 * padding[i] == dilation[i] * (weight_shape[2 + i] - 1) for i in range(2))


def tap_masks(height, width, shift_h, shift_w):
    """(offsets, masks) for a height × width plane whose tap t reads position (i + shift_h[t], j + shift_w[t]) for
    output (i, j): offsets[t] = shift_h[t]·W + shift_w[t], and masks[c·(T + 1) + t] has bit l set where position
    c·LANES + l is inside the plane and its tap t reads inside the plane; masks[c·(T + 1) + T] marks the
    positions inside the plane."""
    chunks = -(-height * width // LANES)
    position = np.arange(chunks * LANES)
    i, j = position // width, position % width
    inside = position < height * width
    rows, columns = i[:, None] + shift_h[None, :], j[:, None] + shift_w[None, :]
    valid = inside[:, None] & (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
    bits = np.concatenate([valid, inside[:, None]], axis=1).reshape(chunks, LANES, -1)
    masks = (bits.astype(np.int64) << np.arange(LANES)[None, :, None]).sum(axis=1)
    return (shift_h * width + shift_w).astype(np.int64), np.ascontiguousarray(masks.reshape(-1), dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _taps(height, width, kernel_h, kernel_w, padding, dilation, sign):
    """tap_masks for taps reading sign·(kh·D_h − P_h), sign·(kw·D_w − P_w) away: remembered per geometry (the
    kernels only read them), since a layer asks for the same ones at every step, in each direction."""
    kh, kw = np.divmod(np.arange(kernel_h * kernel_w), kernel_w)
    return tap_masks(height, width, sign * (kh * dilation[0] - padding[0]), sign * (kw * dilation[1] - padding[1]))


def _geometry(plane_shape, weight_shape, padding, dilation, sign):
    return _taps(*plane_shape[2:], *weight_shape[2:], tuple(padding), tuple(dilation), sign)


def forward(x, weight, bias, out, padding, dilation):
    """O[n, m, i, j] = b[m] + Σ_kh,kw W[m, 0, kh, kw] · X_pad[n, m // R, i + kh·D_h, j + kw·D_w]."""
    offsets, masks = _geometry(x.shape, weight.shape, padding, dilation, 1)
    _forward(x, weight.reshape(weight.shape[0], -1), bias, out, offsets, masks)


@parallel_kernel(tasks=lambda x, weights, bias, out, *rest: out.shape[0] * out.shape[1])
def _forward(x, weights, bias, out, offsets, masks, start, stop):
    """`forward`; a task is one output plane."""
    channels, size, out_channels = x.shape[1], x.shape[2] * x.shape[3], out.shape[1]
    multiplier, taps, chunks = out_channels // channels, offsets.shape[0], masks.shape[0] // (offsets.shape[0] + 1)
    x_flat, out_flat, w_flat = x.reshape(x.size), out.reshape(out.size), weights.reshape(weights.size)
    for task in range(start, stop):
        n, m = task // out_channels, task % out_channels
        src = (n * channels + m // multiplier) * size
        for chunk in range(chunks):
            masked_taps(out_flat, task * size + chunk * LANES, 0, bias[m], x_flat, src + chunk * LANES, w_flat,
                        m * taps, offsets, masks, chunk * (taps + 1), taps)


def grad_input(grad_out, weight, grad_in, padding, dilation):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1)) with the 180°-rotated filter, cropped by P: with
    'same' padding that is dX[n, c, i, j] = Σ_r Σ_kh,kw W[cR + r, 0, kh, kw] · dL/dO[n, cR + r, i + P_h − kh·D_h,
    j + P_w − kw·D_w] (zero outside the plane), the R output channels of c summed in order."""
    offsets, masks = _geometry(grad_in.shape, weight.shape, padding, dilation, -1)
    _grad_input(grad_out, weight.reshape(weight.shape[0], -1), grad_in, offsets, masks)


@parallel_kernel(tasks=lambda grad_out, weights, grad_in, *rest: grad_in.shape[0] * grad_in.shape[1])
def _grad_input(grad_out, weights, grad_in, offsets, masks, start, stop):
    """`grad_input`; a task is one plane of dL/dX."""
    channels, size, out_channels = grad_in.shape[1], grad_in.shape[2] * grad_in.shape[3], grad_out.shape[1]
    multiplier, taps, chunks = out_channels // channels, offsets.shape[0], masks.shape[0] // (offsets.shape[0] + 1)
    grad_flat, grad_in_flat, w_flat = grad_out.reshape(grad_out.size), grad_in.reshape(grad_in.size), \
        weights.reshape(weights.size)
    zero = grad_in.dtype.type(0)
    for task in range(start, stop):
        n, c = task // channels, task % channels
        for chunk in range(chunks):
            for r in range(multiplier):
                m = c * multiplier + r
                masked_taps(grad_in_flat, task * size + chunk * LANES, r, zero, grad_flat,
                            (n * out_channels + m) * size + chunk * LANES, w_flat, m * taps, offsets, masks,
                            chunk * (taps + 1), taps)


def grad_weight(x, grad_out, grad_w, padding, dilation):
    """dL/dW[m, 0, kh, kw] = Σ_n,i,j X_pad[n, m // R, i + kh·D_h, j + kw·D_w] · dL/dO[n, m, i, j] (X ⋆ dL/dO): LANES
    partial sums per output channel and tap over all samples, then the lanes added."""
    offsets, masks = _geometry(x.shape, grad_w.shape, padding, dilation, 1)
    sums = np.zeros((grad_w.shape[0], offsets.shape[0], LANES), grad_w.dtype)
    _grad_weight(x, grad_out, sums, offsets, masks)
    grad_w.reshape(grad_w.shape[0], -1)[...] = sums.sum(axis=2)


@parallel_kernel(tasks=lambda x, grad_out, *rest: grad_out.shape[1])
def _grad_weight(x, grad_out, sums, offsets, masks, start, stop):
    """sums[m, t, l] = Σ over the samples and the chunks' lane l of `grad_weight`'s products; a task is one
    output channel."""
    batch, channels, size = x.shape[0], x.shape[1], x.shape[2] * x.shape[3]
    out_channels = grad_out.shape[1]
    multiplier, taps, chunks = out_channels // channels, offsets.shape[0], masks.shape[0] // (offsets.shape[0] + 1)
    x_flat, grad_flat, sums_flat = x.reshape(x.size), grad_out.reshape(grad_out.size), sums.reshape(sums.size)
    for m in range(start, stop):
        for n in range(batch):
            src, other = (n * channels + m // multiplier) * size, (n * out_channels + m) * size
            for chunk in range(chunks):
                masked_correlate(sums_flat, m * taps * LANES, x_flat, src + chunk * LANES, grad_flat,
                                 other + chunk * LANES, offsets, masks, chunk * (taps + 1), taps)
