"""Convolution by direct loops that follow each rule literally: padding and dilation are materialised as
zeros, then every tap is one long multiply-add over a whole plane.

"Wide rows": a plane of pitch Wp is treated as one flat vector, so for tap offset t the correlation
out[i] += w · in[i + t] runs over all output rows at once (the few results that straddle a row end are
never read). Rows of 20-30 elements one by one cost a loop start each and ran ~10× slower. Work grows by
S² for stride S (every stride-1 position is computed), so the dispatcher sends S > 1 to the GEMM path.
Each task (a sample, or a pair of output channels) owns the slice of the output it writes.
"""
import functools

import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.inner_loops import (accumulate_taps_2rows, accumulate_taps_4rows, copy_strided,
                                                   correlate_taps_2rows, fill)


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def dilate_pad_sample(x_flat, start, channels, height, width, stride_h, stride_w, pad_h, pad_w, out_h, out_w, out_flat,
                      out_start):
    """One sample: out[c, pad_h + i·S_h, pad_w + j·S_w] = x[c, i, j] and zero elsewhere, for the `channels` planes
    of height × width starting at x_flat[start] and of out_h × out_w starting at out_flat[out_start]."""
    fill(out_flat, out_start, channels * out_h * out_w, 0)
    for c in range(channels):
        for i in range(height):
            copy_strided(out_flat, out_start + (c * out_h + pad_h + i * stride_h) * out_w + pad_w, stride_w,
                         x_flat, start + (c * height + i) * width, 1, width)


@functools.lru_cache(maxsize=64)
def tap_table(planes_apart, height, width, kernel_h, kernel_w, dil_h, dil_w):
    """Flat offsets of the taps (p, kh, kw), p < planes_apart, into consecutive planes of height × width,
    padded with offset 0 to a multiple of four (see accumulate_taps). Built in NumPy (it compiles nothing) and
    remembered per geometry (the kernels only read it): a network repeats a few geometries every step."""
    p, kh, kw = np.meshgrid(np.arange(planes_apart), np.arange(kernel_h), np.arange(kernel_w), indexing="ij")
    offsets = (p * height * width + kh * dil_h * width + kw * dil_w).reshape(-1)
    return np.concatenate([offsets, np.zeros(-offsets.size % 4, np.int64)]).astype(np.int64)


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def accumulate_block(acc, spare, span, src, base, rows_per_group, group_stride, offsets, weights, first, rows):
    """acc[r·span + k] += Σ_t weights[first + r, t] · src[plane_r + offsets[t] + k] for the `rows` (≤ 4) rows of a
    block, where row r reads the planes of its group, plane_r = base + ((first + r) // rows_per_group)·
    group_stride. Four rows of one group in one pass, else pairs of one group, else one row at a time (by the
    pair loop, its twin sums going to `spare`, `span` long). Inlined, as the other helpers here without fastmath
    flags: typed inside its caller, with no module of its own to compile and then optimise again in the caller
    (an inlined body takes its caller's flags, so the multiply-add loops stay calls)."""
    if rows == 4 and first // rows_per_group == (first + 3) // rows_per_group:
        accumulate_taps_4rows(acc, span, src, base + (first // rows_per_group) * group_stride, offsets, weights, first)
        return
    r = 0
    while r < rows:
        plane = base + ((first + r) // rows_per_group) * group_stride
        if r + 1 < rows and (first + r) // rows_per_group == (first + r + 1) // rows_per_group:
            accumulate_taps_2rows(acc[r * span:], acc[(r + 1) * span:], span, src, plane, offsets, weights, first + r,
                                  first + r + 1)
            r += 2
        else:
            accumulate_taps_2rows(acc[r * span:], spare, span, src, plane, offsets, weights, first + r, first + r)
            r += 1


def tap_weights(weight, taps):
    """W[m] as a row per output channel in tap order, zero-padded to `taps` columns (see tap_table)."""
    rows = weight.reshape(weight.shape[0], -1)
    return np.ascontiguousarray(np.pad(rows, ((0, 0), (0, taps - rows.shape[1]))))


def rotated_tap_weights(weight, channels, taps):
    """rotated[c, (m, rh, rw)] = W[g·M_g + m, c − g·C_g, K−1−rh, K−1−rw] for input channel c of group g: the filter
    rotated by 180°, one row per input channel in tap order, zero-padded to `taps` columns."""
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    groups = channels // group_in
    flipped = weight[:, :, ::-1, ::-1].reshape(groups, out_channels // groups, group_in, kernel_h * kernel_w)
    rows = flipped.transpose(0, 2, 1, 3).reshape(channels, -1)  # (g, c, m, r) -> row g·C_g + c
    return np.ascontiguousarray(np.pad(rows, ((0, 0), (0, taps - rows.shape[1]))))


def forward(x, weight, bias, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """O[n, m, oh, ow] = b[m] + Σ_c,kh,kw W[m, c, kh, kw] · X_pad[n, c, oh·S + kh·D, ow·S + kw·D], X_pad the input
    zero-padded by P. A task owns O[n] (forward_samples)."""
    height, width = x.shape[2] + 2 * pad_h, x.shape[3] + 2 * pad_w  # padded sizes
    offsets = tap_table(weight.shape[1], height, width, weight.shape[2], weight.shape[3], dil_h, dil_w)
    forward_samples(x, bias, out, offsets, tap_weights(weight, offsets.shape[0]), stride_h, stride_w, pad_h, pad_w,
                    groups)


@parallel_kernel(tasks=lambda x, *rest: x.shape[0])
def forward_samples(x, bias, out, offsets, weights, stride_h, stride_w, pad_h, pad_w, groups, start, stop):
    """`forward`'s O[n] for the samples of its tasks, each sample padded into a buffer of the call's own. One
    function, not a loop over a per-sample function: Numba optimises a callee again inside every caller, so
    each level of calls adds its whole tree to the cold-start compile."""
    _, channels, in_h, in_w = x.shape
    height, width = in_h + 2 * pad_h, in_w + 2 * pad_w
    out_channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    group_in, group_out = channels // groups, out_channels // groups
    span = ((out_h - 1) * stride_h) * width + (out_w - 1) * stride_w + 1  # the wide stride-1 result
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    padded = pad_h > 0 or pad_w > 0
    src = np.empty(channels * height * width if padded else 0, x.dtype)
    wide = np.empty(4 * span, out.dtype)  # four output channels at a time when they share a group
    spare = np.empty(span, out.dtype)
    fill(spare, 0, span, 0)  # it only ever receives sums that are never read
    for n in range(start, stop):
        if padded:
            one = np.int64(1)  # not the literal 1: each literal argument would compile dilate_pad_sample anew
            dilate_pad_sample(x_flat, n * channels * in_h * in_w, channels, in_h, in_w, one, one, pad_h, pad_w,
                              height, width, src, 0)
        for first in range(0, out_channels, 4):
            rows = min(4, out_channels - first)
            for r in range(rows):
                fill(wide, r * span, span, bias[first + r])
            plane = 0 if padded else n * channels * height * width
            accumulate_block(wide, spare, span, src if padded else x_flat, plane, group_out, group_in * height * width,
                             offsets, weights, first, rows)  # one call: each call site is inlined anew
            for r in range(rows):
                for oh in range(out_h):
                    copy_strided(out_flat, ((n * out_channels + first + r) * out_h + oh) * out_w, 1,
                                 wide, r * span + oh * stride_h * width, stride_w, out_w)


def grad_input(grad_out, weight, grad_in, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dL/dX = full convolution of Z with the 180°-rotated filter, cropped by the forward padding P, where
    Z = dL/dO dilated by S and zero-padded by D·(K−1) (each thread makes Z for its own sample, in a buffer of its
    own). A task owns dX[n] (grad_input_samples).

    With r = K−1−k the rotated tap, full[u] = Σ_r W[K−1−r] · Z[u + r·D] and dX[i] = full[i + P]; input rows
    past the last window (when S does not divide evenly) receive no gradient.
    """
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    z_h = (grad_out.shape[2] - 1) * stride_h + 1 + 2 * dil_h * (kernel_h - 1)
    z_w = (grad_out.shape[3] - 1) * stride_w + 1 + 2 * dil_w * (kernel_w - 1)
    offsets = tap_table(out_channels // groups, z_h, z_w, kernel_h, kernel_w, dil_h, dil_w)  # taps (m, rh, rw)
    rotated = rotated_tap_weights(weight, grad_in.shape[1], offsets.shape[0])  # rotated[c, (m, r)] = W[m, c, K−1−r]
    grad_input_samples(grad_out, grad_in, offsets, rotated, group_in, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                       pad_w, dil_h, dil_w, groups)


@parallel_kernel(tasks=lambda grad_out, grad_in, *rest: grad_in.shape[0])
def grad_input_samples(grad_out, grad_in, offsets, rotated, group_in, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                       pad_w, dil_h, dil_w, groups, start, stop):
    """`grad_input`'s dX[n] for the samples of its tasks, each sample's Z in a buffer of the call's own (one
    function: see forward_samples)."""
    channels, height, width = grad_in.shape[1], grad_in.shape[2], grad_in.shape[3]
    out_channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    z_h = (out_h - 1) * stride_h + 1 + 2 * dil_h * (kernel_h - 1)
    z_w = (out_w - 1) * stride_w + 1 + 2 * dil_w * (kernel_w - 1)
    full_h, full_w = z_h - dil_h * (kernel_h - 1), z_w - dil_w * (kernel_w - 1)
    span = (full_h - 1) * z_w + full_w
    group_out = out_channels // groups
    grad_flat, grad_in_flat = grad_out.reshape(grad_out.size), grad_in.reshape(grad_in.size)
    z_flat = np.empty(out_channels * z_h * z_w, grad_in.dtype)
    full = np.empty(4 * span, grad_in.dtype)  # four input channels at a time when they share a group
    spare = np.empty(span, grad_in.dtype)
    fill(spare, 0, span, 0)  # it only ever receives sums that are never read
    for n in range(start, stop):
        dilate_pad_sample(grad_flat, n * out_channels * out_h * out_w, out_channels, out_h, out_w, stride_h,
                          stride_w, dil_h * (kernel_h - 1), dil_w * (kernel_w - 1), z_h, z_w, z_flat, 0)
        for first in range(0, channels, 4):
            rows = min(4, channels - first)
            fill(full, 0, rows * span, 0)
            accumulate_block(full, spare, span, z_flat, np.int64(0), group_in, group_out * z_h * z_w, offsets,
                             rotated, first, rows)  # an int64 base, as forward_samples': a literal 0 compiles anew
            for r in range(rows):
                in_plane = (n * channels + first + r) * height * width
                for i in range(height):
                    if i + pad_h < full_h:  # crop: dX[i, j] = full[i + P_h, j + P_w]
                        count = max(0, min(width, full_w - pad_w))
                        copy_strided(grad_in_flat, in_plane + i * width, 1,
                                     full, r * span + (i + pad_h) * z_w + pad_w, 1, count)
                        fill(grad_in_flat, in_plane + i * width + count, width - count, 0)
                    else:
                        fill(grad_in_flat, in_plane + i * width, width, 0)


def grad_weight(x_pad, grad_out, grad_w, stride_h, stride_w, dil_h, dil_w, groups):
    """dL/dW[m, c, kh, kw] = Σ_n,a,b X_pad[n, c, a + kh·D, b + kw·D] · G[n, m, a, b]: the padded input correlated
    with G = dL/dO dilated by S, laid out on the input's row pitch (zero on the right). A task owns dW[m] for a
    pair of m (grad_weight_pairs)."""
    _, group_in, kernel_h, kernel_w = grad_w.shape
    height, width = x_pad.shape[2], x_pad.shape[3]
    offsets = tap_table(group_in, height, width, kernel_h, kernel_w, dil_h, dil_w)
    grad_weight_pairs(x_pad, grad_out, grad_w, offsets, stride_h, stride_w, dil_h, dil_w, groups)


@parallel_kernel(tasks=lambda x_pad, grad_out, grad_w, *rest: (grad_w.shape[0] + 1) // 2)
def grad_weight_pairs(x_pad, grad_out, grad_w, offsets, stride_h, stride_w, dil_h, dil_w, groups, start, stop):
    """`grad_weight`'s dW[2p] and dW[2p + 1] for the pairs p of its tasks (both at once when they share a group),
    building their G one sample at a time in a buffer of the call's own (one function: see forward_samples)."""
    batch, channels, height, width = x_pad.shape
    out_channels, group_in, kernel_h, kernel_w = grad_w.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    g_h = (out_h - 1) * stride_h + 1
    group_out = out_channels // groups
    # G is zero past the last window of the last tap, so the sums stop where that tap would leave the plane
    count = min(g_h * width, height * width - (kernel_h - 1) * dil_h * width - (kernel_w - 1) * dil_w)
    x_flat, grad_flat = x_pad.reshape(x_pad.size), grad_out.reshape(grad_out.size)
    totals = np.empty((2, offsets.shape[0]), grad_w.dtype)
    spare = np.empty(offsets.shape[0], grad_w.dtype)  # the twin sums of a lone row (see correlate_taps_2rows)
    fill(spare, 0, offsets.shape[0], 0)
    g = np.empty(2 * g_h * width, grad_w.dtype)
    for pair in range(start, stop):
        first = 2 * pair
        rows = min(2, out_channels - first)
        fill(totals[0], 0, offsets.shape[0], 0)
        fill(totals[1], 0, offsets.shape[0], 0)
        for n in range(batch):
            dilate_pad_sample(grad_flat, (n * out_channels + first) * out_h * out_w, rows, out_h, out_w,
                              stride_h, stride_w, np.int64(0), np.int64(0), g_h, width, g, 0)  # int64: see forward
            if rows == 2 and first // group_out == (first + 1) // group_out:
                correlate_taps_2rows(totals[0], totals[1], x_flat,
                                     (n * channels + (first // group_out) * group_in) * height * width,
                                     offsets, g, np.int64(0), g_h * width, count)  # int64, as the lone rows
            else:
                for r in range(rows):
                    plane = (n * channels + ((first + r) // group_out) * group_in) * height * width
                    row = r * g_h * width
                    correlate_taps_2rows(totals[r], spare, x_flat, plane, offsets, g, row, row, count)
        for r in range(rows):  # element loops: a slice assignment pulls in Numba's generic setitem (seconds)
            for c in range(group_in):
                for kh in range(kernel_h):
                    for kw in range(kernel_w):
                        grad_w[first + r, c, kh, kw] = totals[r, (c * kernel_h + kh) * kernel_w + kw]


def grad_bias(grad_out, grad_b):
    """dL/db[m] = Σ_n,oh,ow dL/dO[n, m, oh, ow], by NumPy's einsum: as fast as the serial kernel it replaced on the
    MNIST models' planes (a parallel one was slower still: the sum is memory-bound), closer to a float64 sum (its
    several partial sums), and nothing to compile on a cold start."""
    batch, out_channels = grad_out.shape[:2]
    np.einsum("nmk->m", grad_out.reshape(batch, out_channels, -1), out=grad_b)
