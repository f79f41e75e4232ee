"""Depthwise convolution (C_in/groups = 1) plane by plane, for planes whose rows are long enough for vector loops
along them (the pick with AVX-512 on planes of 32×32 and more at stride 1, where 'depthwise_same' does not fit).

Same "wide rows" as the GEMM path (conv_gemm.py): each input plane is zero-padded and split into its stride
phases Q (padding.split_phase, in a buffer of the thread's own); tap t reads phase plane tap_phase[t] shifted by
tap_shift[t], so on a plane laid out on the phase planes' pitch every tap is one contiguous multiply-add over
the whole plane, whatever the stride and dilation. The few wide positions that straddle a row end are never
read (forward) or are zero in dL/dO (both backward directions). A task owns one sample (for dL/dW one input
channel) and every sum runs in one fixed order: the same bits on any thread count.
"""
import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.inner_loops import accumulate_taps, axpy_strided, copy_strided, correlate_taps, fill
from tinygrad_cnn.ops.kernels.padding import split_phase


@njit(cache=True)
def tap_offsets(tap_phase, tap_shift, phase_size):
    """Each tap's flat offset into a plane's phase planes (tap_phase[t]·|Q plane| + tap_shift[t]), padded with
    offset 0 to a multiple of four (see accumulate_taps)."""
    offsets = np.zeros((tap_phase.shape[0] + 3) // 4 * 4, np.int64)
    for t in range(tap_phase.shape[0]):
        offsets[t] = tap_phase[t] * phase_size + tap_shift[t]
    return offsets


@njit(cache=True)
def split_plane(x_flat, start, height, width, stride_h, stride_w, pad_h, pad_w, q, q_h, q_w):
    """All S_h·S_w phase planes of one zero-padded input plane into q."""
    for phase in range(stride_h * stride_w):
        split_phase(x_flat, start, height, width, stride_h, stride_w, pad_h, pad_w, phase // stride_w,
                    phase % stride_w, q, phase * q_h * q_w, q_h, q_w)


@njit(cache=True)
def spread_rows(src, start, rows, width, dst, pitch):
    """dst[i·pitch + j] = src[start + i·width + j] for j < width, zero for width <= j < pitch: one plane of dL/dO
    laid out on the wide rows."""
    fill(dst, 0, dst.shape[0], 0)
    for i in range(rows):
        copy_strided(dst, i * pitch, 1, src, start + i * width, 1, width)


@parallel_kernel(tasks=lambda x, *rest: x.shape[0])
def forward(x, weight, bias, out, stride_h, stride_w, pad_h, pad_w, tap_phase, tap_shift, q_h, q_w, start, stop):
    """O[n, m, i, j] = b[m] + Σ_kh,kw W[m, 0, kh, kw] · X_pad[n, c, i·S + kh·D, j·S + kw·D], c = m // (M/C), read as
    Q[c, tap_phase[t]].flat[tap_shift[t] + i·pitch + j]. A task owns O[n]."""
    batch, channels, height, width = x.shape
    out_channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    multiplier, taps = out_channels // channels, tap_phase.shape[0]
    span = (out_h - 1) * q_w + out_w
    offsets = tap_offsets(tap_phase, tap_shift, q_h * q_w)
    weights = np.zeros((out_channels, offsets.shape[0]), out.dtype)
    for m in range(out_channels):
        for t in range(taps):
            weights[m, t] = weight[m, 0, t // weight.shape[3], t % weight.shape[3]]
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    for n in range(start, stop):
        q = np.empty(stride_h * stride_w * q_h * q_w, x.dtype)
        wide = np.empty(span, out.dtype)
        for c in range(channels):
            split_plane(x_flat, (n * channels + c) * height * width, height, width, stride_h, stride_w, pad_h, pad_w,
                        q, q_h, q_w)
            for m in range(c * multiplier, (c + 1) * multiplier):
                fill(wide, 0, span, bias[m])
                accumulate_taps(wide, span, q, 0, offsets, weights[m])
                for i in range(out_h):
                    copy_strided(out_flat, ((n * out_channels + m) * out_h + i) * out_w, 1, wide, i * q_w, 1, out_w)


@parallel_kernel(tasks=lambda grad_out, weight, grad_in, *rest: grad_in.shape[0])
def grad_input(grad_out, weight, grad_in, stride_h, stride_w, pad_h, pad_w, tap_phase, tap_shift, q_h, q_w, start, stop):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated filter,
    cropped by the forward padding. With Z that padded, dilated dL/dO and r = K−1−k, dX[i] = Σ_r W[K−1−r]·
    Z[i + P + r·D] = Σ_k W[k]·dL/dO[o] over the taps k and outputs o with o·S + k·D − P = i (Z is zero
    elsewhere): each tap adds W[m, k]·dL/dO[n, m] into the phase plane it read in the forward, dQ, and dX is
    dQ without its padding. No multiply-add meets the zeros that padding and dilating insert. A task owns dX[n]
    and sums the M/C output channels of each group in order."""
    batch, channels, height, width = grad_in.shape
    out_channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    multiplier, taps = out_channels // channels, tap_phase.shape[0]
    phase_size, span = q_h * q_w, (out_h - 1) * q_w + out_w
    grad_flat, grad_in_flat = grad_out.reshape(grad_out.size), grad_in.reshape(grad_in.size)
    w_flat = weight.reshape(weight.size)
    for n in range(start, stop):
        grad_q = np.empty(stride_h * stride_w * phase_size, grad_in.dtype)
        wide = np.empty(span, grad_in.dtype)
        for c in range(channels):
            fill(grad_q, 0, grad_q.shape[0], 0)
            for m in range(c * multiplier, (c + 1) * multiplier):
                spread_rows(grad_flat, (n * out_channels + m) * out_h * out_w, out_h, out_w, wide, q_w)
                for t in range(taps):
                    axpy_strided(grad_q, tap_phase[t] * phase_size + tap_shift[t], 1, wide, 0, 1, span,
                                 w_flat[m * taps + t])
            # dX[i, j] = dQ[phase of (i + P_h, j + P_w)] at ((i + P_h) // S_h, (j + P_w) // S_w)
            plane = (n * channels + c) * height * width
            for i in range(height):
                row = i + pad_h
                for phase_w in range(stride_w):
                    first = (phase_w - pad_w) % stride_w  # the first column j of this phase
                    if first < width:
                        copy_strided(grad_in_flat, plane + i * width + first, stride_w, grad_q,
                                     ((row % stride_h) * stride_w + phase_w) * phase_size + (row // stride_h) * q_w
                                     + (first + pad_w) // stride_w, 1, (width - first + stride_w - 1) // stride_w)


@parallel_kernel(tasks=lambda x, *rest: x.shape[1])
def grad_weight(x, grad_out, grad_w, stride_h, stride_w, pad_h, pad_w, tap_phase, tap_shift, q_h, q_w, start, stop):
    """dL/dW[m, 0, kh, kw] = Σ_n,i,j X_pad[n, c, i·S + kh·D, j·S + kw·D] · dL/dO[n, m, i, j] (X ⋆ dL/dO, dL/dO dilated
    by S), read from the phase planes as in the forward. A task owns the dW[m] of one input channel c and sums
    the samples in order."""
    batch, channels, height, width = x.shape
    out_channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    multiplier, taps = out_channels // channels, tap_phase.shape[0]
    span = (out_h - 1) * q_w + out_w
    offsets = tap_offsets(tap_phase, tap_shift, q_h * q_w)
    x_flat, grad_flat, grad_w_flat = x.reshape(x.size), grad_out.reshape(grad_out.size), grad_w.reshape(grad_w.size)
    for c in range(start, stop):
        totals = np.zeros((multiplier, offsets.shape[0]), grad_w.dtype)
        q = np.empty(stride_h * stride_w * q_h * q_w, x.dtype)
        wide = np.empty(span, grad_w.dtype)
        for n in range(batch):
            split_plane(x_flat, (n * channels + c) * height * width, height, width, stride_h, stride_w, pad_h, pad_w,
                        q, q_h, q_w)
            for r in range(multiplier):
                spread_rows(grad_flat, (n * out_channels + c * multiplier + r) * out_h * out_w, out_h, out_w, wide, q_w)
                correlate_taps(totals[r], q, 0, offsets, wide, 0, span)
        for r in range(multiplier):
            for t in range(taps):
                grad_w_flat[(c * multiplier + r) * taps + t] = totals[r, t]
