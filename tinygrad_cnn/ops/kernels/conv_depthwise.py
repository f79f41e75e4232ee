"""Depthwise convolution (one input channel per group, C_in/groups = 1): output channel m = c·R + r (R = M/C, the
channel multiplier) reads only input channel c, so there is no channel sum to hand to a GEMM, and the planes
(4×4 to 32×32) are too small for vector loops along a row.

So the vector runs across channels: a task copies BLOCK input channels of one sample into a channels-last
buffer, zero-padded by P (position-major, the BLOCK channels contiguous), and every tap of every output
position is then one BLOCK-wide multiply-add against the tap's BLOCK weights, at any stride, padding and
dilation (a tap of output (i, j) reads padded position (i·S_h + kh·D_h, j·S_w + kw·D_w)). BLOCK is a constant,
so that inner loop compiles to whole vector instructions. The buffers stay in the L1/L2 cache; the arrays
themselves are read and written once each, in NCHW. Every task owns what it writes (dL/dW: one block of
channels over a fixed chunk of samples, the chunks added in order afterwards), so the results are the same
bits on any number of threads.
"""
import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.vector_taps import (LANES as BLOCK, dot_taps, strip_outputs, strip_taps,
                                                  transpose_block, vector_elements)


@njit(cache=True)
def move_block(flat, plane, step, count, height, width, buf, pitch, off_h, off_w, into_buffer):
    """Between the `count` height × width planes (plane + k·step) of the flat NCHW array and the channels-last
    buffer: buf[((r + off_h)·pitch + q + off_w)·BLOCK + k] = plane[r, q] when into_buffer, else the reverse.
    V planes (one vector's width, vector_elements) at a time, row by row, each row of V planes moved in V × V
    blocks transposed in registers (transpose_block); the positions and planes short of a whole block one
    element at a time (unsigned indices, see inner_loops.copy_strided). The V planes' row is read whole before
    the next: planes a multiple of 4 KiB apart share a few L1 cache sets, and reading more planes at a time
    would evict lines still to be read."""
    size, lanes, w = np.uint64(height * width), np.uint64(BLOCK), np.uint64(width)
    first, gap = np.uint64(plane) * size, np.uint64(step) * size
    vector = np.uint64(vector_elements(flat.itemsize))
    whole_planes, whole_columns = np.uint64(count) // vector * vector, w // vector * vector
    for k0 in range(np.uint64(0), np.uint64(count), vector):
        planes = min(vector, np.uint64(count) - k0)
        for r in range(np.uint64(height)):
            row = (np.uint64(off_h) + r) * np.uint64(pitch) + np.uint64(off_w)
            at = first + k0 * gap + r * w
            columns = whole_columns if k0 < whole_planes else np.uint64(0)
            for q in range(np.uint64(0), columns, vector):
                if into_buffer:
                    transpose_block(buf, (row + q) * lanes + k0, lanes, flat, at + q, gap)
                else:
                    transpose_block(flat, at + q, gap, buf, (row + q) * lanes + k0, lanes)
            for k in range(planes):
                for q in range(columns, w):
                    if into_buffer:
                        buf[(row + q) * lanes + k0 + k] = flat[at + k * gap + q]
                    else:
                        flat[at + k * gap + q] = buf[(row + q) * lanes + k0 + k]


@njit(cache=True)
def tap_offsets(kernel_h, kernel_w, dil_h, dil_w, pitch):
    """Where tap (kh, kw) reads in the padded channels-last buffer, relative to its output position's first tap:
    ((kh·D_h)·pitch + kw·D_w)·BLOCK."""
    offsets = np.empty(kernel_h * kernel_w, np.int64)
    for t in range(kernel_h * kernel_w):
        offsets[t] = ((t // kernel_w) * dil_h * pitch + (t % kernel_w) * dil_w) * BLOCK
    return offsets


@njit(cache=True)
def _blocks(channels):
    """Blocks of BLOCK channels that cover `channels` (the last one partly)."""
    return (channels + BLOCK - 1) // BLOCK


def blocked(values, channels):
    """values (M, T), M = C·R, regrouped as (blocks, R, T, BLOCK), flat: entry (b, r, t, k) is values[(b·BLOCK + k)·R
    + r, t], zero past the last input channel. The kernels' layout of weights, biases and dL/dW."""
    out_channels, terms = values.shape
    grouped = np.zeros((_blocks(channels) * BLOCK, out_channels // channels, terms), values.dtype)
    grouped[:channels] = values.reshape(channels, -1, terms)
    return np.ascontiguousarray(grouped.reshape(-1, BLOCK, *grouped.shape[1:]).transpose(0, 2, 3, 1)).reshape(-1)


def forward(x, weight, bias, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """O[n, m, i, j] = b[m] + Σ_kh,kw W[m, 0, kh, kw] · X_pad[n, m // R, i·S_h + kh·D_h, j·S_w + kw·D_w]."""
    channels, out_channels = x.shape[1], weight.shape[0]
    _forward(x, blocked(weight.reshape(out_channels, -1), channels), blocked(bias.reshape(-1, 1), channels), out,
             stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, weight.shape[2], weight.shape[3])


@parallel_kernel(tasks=lambda x, *rest: x.shape[0] * _blocks(x.shape[1]))
def _forward(x, weights, biases, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w, start,
             stop):
    """`forward` on blocked weights and biases. A task is one sample and one block of input channels, and owns
    their R·BLOCK output planes."""
    batch, channels, height, width = x.shape
    out_channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    multiplier, blocks, taps = out_channels // channels, _blocks(channels), kernel_h * kernel_w
    pitch = width + 2 * pad_w
    padded = np.zeros((height + 2 * pad_h) * pitch * BLOCK, x.dtype)
    result = np.empty(out_h * out_w * BLOCK, out.dtype)
    offsets = tap_offsets(kernel_h, kernel_w, dil_h, dil_w, pitch)
    strip = strip_outputs(x.itemsize)
    neighbours = np.arange(strip) * (stride_w * BLOCK)  # where each output of a strip starts reading
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    for task in range(start, stop):
        n, block = task // blocks, task % blocks
        first = block * BLOCK
        count = min(BLOCK, channels - first)
        move_block(x_flat, n * channels + first, 1, count, height, width, padded, pitch, pad_h, pad_w, True)
        for r in range(multiplier):
            w_at, b_at = (block * multiplier + r) * taps * BLOCK, (block * multiplier + r) * BLOCK
            for i in range(out_h):
                for j in range(0, out_w - strip + 1, strip):
                    strip_taps(result, (i * out_w + j) * BLOCK, BLOCK, biases, b_at, 0, weights, w_at, padded,
                               (i * stride_h * pitch + j * stride_w) * BLOCK, neighbours, offsets, taps)
                for j in range(out_w - out_w % strip, out_w):
                    dot_taps(result, (i * out_w + j) * BLOCK, biases, b_at, weights, w_at, padded,
                             (i * stride_h * pitch + j * stride_w) * BLOCK, offsets, taps)
            move_block(out_flat, n * out_channels + first * multiplier + r, multiplier, count, out_h, out_w, result,
                       out_w, 0, 0, False)


def grad_input(grad_out, weight, grad_in, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated filter,
    cropped by the forward padding. With Z that padded, dilated dL/dO and u = K−1−k, dX[q] = Σ_u W[K−1−u]·
    Z[q + P + u·D] = Σ_k W[k]·dL/dO[o] over the taps k and outputs o with o·S + k·D − P = q (Z is zero
    elsewhere): each tap adds W[m, k]·dL/dO[n, m, o] where the forward read, into a padded buffer whose interior
    is dX[n, c], summed over the R output channels of c in order. No multiply-add meets the zeros that padding
    and dilating insert.

    At stride 1 with one output channel per input channel (R = 1) and P ≤ D·(K−1) that full convolution is
    `forward` itself, run on dL/dO zero-padded by D·(K−1)−P with the rotated filter: each output's sum held in
    registers over its taps, where the scatter above loads and stores dX once per tap."""
    kernel_h, kernel_w = weight.shape[2], weight.shape[3]
    full_h, full_w = dil_h * (kernel_h - 1) - pad_h, dil_w * (kernel_w - 1) - pad_w
    if (stride_h, stride_w) == (1, 1) and weight.shape[0] == grad_in.shape[1] and min(full_h, full_w) >= 0:
        forward(grad_out, weight[:, :, ::-1, ::-1], np.zeros(weight.shape[0], grad_in.dtype), grad_in, 1, 1, full_h,
                full_w, dil_h, dil_w)
        return
    _grad_input(grad_out, blocked(weight.reshape(weight.shape[0], -1), grad_in.shape[1]), grad_in, stride_h,
                stride_w, pad_h, pad_w, dil_h, dil_w, weight.shape[2], weight.shape[3])


@parallel_kernel(tasks=lambda grad_out, weights, grad_in, *rest: grad_in.shape[0] * _blocks(grad_in.shape[1]))
def _grad_input(grad_out, weights, grad_in, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w,
                start, stop):
    """`grad_input` on blocked weights. A task is one sample and one block of input channels."""
    batch, channels, height, width = grad_in.shape
    out_channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    multiplier, blocks, taps = out_channels // channels, _blocks(channels), kernel_h * kernel_w
    pitch, padded_size = width + 2 * pad_w, (height + 2 * pad_h) * (width + 2 * pad_w) * BLOCK
    padded = np.empty(padded_size, grad_in.dtype)
    grad = np.empty(out_h * out_w * BLOCK, grad_in.dtype)
    offsets, no_offset = tap_offsets(kernel_h, kernel_w, dil_h, dil_w, pitch), np.zeros(1, np.int64)
    grad_flat, grad_in_flat = grad_out.reshape(grad_out.size), grad_in.reshape(grad_in.size)
    for task in range(start, stop):
        n, block = task // blocks, task % blocks
        first = block * BLOCK
        count = min(BLOCK, channels - first)
        for k in range(padded_size):
            padded[k] = 0
        for r in range(multiplier):
            w_at = (block * multiplier + r) * taps * BLOCK
            move_block(grad_flat, n * out_channels + first * multiplier + r, multiplier, count, out_h, out_w, grad,
                       out_w, 0, 0, True)
            for i in range(out_h):
                for j in range(out_w):
                    at, first_tap = (i * out_w + j) * BLOCK, (i * stride_h * pitch + j * stride_w) * BLOCK
                    for t in range(taps):
                        to = first_tap + offsets[t]
                        dot_taps(padded, to, padded, to, weights, w_at + t * BLOCK, grad, at, no_offset, 1)
        move_block(grad_in_flat, n * channels + first, 1, count, height, width, padded, pitch, pad_h, pad_w, False)


def grad_weight(x, grad_out, grad_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dL/dW[m, 0, kh, kw] = Σ_n,i,j X_pad[n, m // R, i·S_h + kh·D_h, j·S_w + kw·D_w] · dL/dO[n, m, i, j] (X ⋆ dL/dO,
    dL/dO dilated by S): one task per block of input channels and chunk of samples, the chunks then added in
    order. The chunk count depends on the shape alone (enough tasks for a few threads), not on the threads."""
    batch, channels = x.shape[:2]
    out_channels, taps = grad_w.shape[0], grad_w.shape[2] * grad_w.shape[3]
    chunks = max(1, min(batch, -(-8 // _blocks(channels))))
    partial = np.zeros((chunks, _blocks(channels), out_channels // channels, taps, BLOCK), grad_w.dtype)
    _grad_weight(x, grad_out, partial, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, grad_w.shape[2],
                 grad_w.shape[3])
    total = partial[0]
    for chunk in range(1, chunks):
        total += partial[chunk]
    grad_w.reshape(channels, -1)[...] = total.transpose(0, 3, 1, 2).reshape(-1, out_channels // channels * taps)[
        :channels]


@parallel_kernel(tasks=lambda x, grad_out, partial, *rest: partial.shape[0] * partial.shape[1])
def _grad_weight(x, grad_out, partial, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w, start,
                 stop):
    """partial[s] = dL/dW, blocked, over the samples of chunk s. A task is one chunk and one block of input
    channels."""
    batch, channels, height, width = x.shape
    out_channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    multiplier, blocks, taps = out_channels // channels, _blocks(channels), kernel_h * kernel_w
    chunks = partial.shape[0]
    pitch = width + 2 * pad_w
    padded = np.zeros((height + 2 * pad_h) * pitch * BLOCK, x.dtype)
    grad = np.empty(out_h * out_w * BLOCK, x.dtype)
    offsets, positions = tap_offsets(kernel_h, kernel_w, dil_h, dil_w, pitch), np.empty(out_h * out_w, np.int64)
    strip = strip_outputs(x.itemsize)
    for p in range(out_h * out_w):  # where output position p's first tap reads
        positions[p] = ((p // out_w) * stride_h * pitch + (p % out_w) * stride_w) * BLOCK
    x_flat, grad_flat, sums = x.reshape(x.size), grad_out.reshape(grad_out.size), partial.reshape(partial.size)
    for task in range(start, stop):
        chunk, block = task // blocks, task % blocks
        first = block * BLOCK
        count = min(BLOCK, channels - first)
        for n in range(batch * chunk // chunks, batch * (chunk + 1) // chunks):
            move_block(x_flat, n * channels + first, 1, count, height, width, padded, pitch, pad_h, pad_w, True)
            for r in range(multiplier):
                move_block(grad_flat, n * out_channels + first * multiplier + r, multiplier, count, out_h, out_w,
                           grad, out_w, 0, 0, True)
                at = (task * multiplier + r) * taps * BLOCK
                for t in range(0, taps - strip + 1, strip):  # `strip` taps at a time, dL/dO loaded once for them
                    strip_taps(sums, at + t * BLOCK, BLOCK, sums, at + t * BLOCK, BLOCK, grad, 0, padded, 0,
                               offsets[t:], positions, out_h * out_w)
                for t in range(taps - taps % strip, taps):
                    dot_taps(sums, at + t * BLOCK, sums, at + t * BLOCK, grad, 0, padded, offsets[t], positions,
                             out_h * out_w)
