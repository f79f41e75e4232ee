"""Convolution by direct loops that follow each rule literally: padding and dilation are materialised as
zeros, then every tap is one long multiply-add over a whole plane.

"Wide rows": a plane of pitch Wp is treated as one flat vector, so for tap offset t the correlation
out[i] += w · in[i + t] runs over all output rows at once (the few results that straddle a row end are
never read). Rows of 20-30 elements one by one cost a loop start each and ran ~10× slower. Work grows by
S² for stride S (every stride-1 position is computed), so the dispatcher sends S > 1 to the GEMM path.
Each parallel iteration owns the slice of the output it writes.
"""
import numpy as np
from numba import njit, prange

from tinygrad_cnn.ops.kernels.workspace import axpy_strided, copy_strided, dot_strided, fill, sum_range


@njit(parallel=True, cache=True)
def dilate_pad(x, stride_h, stride_w, pad_h, pad_w, out):
    """out[n, c, pad_h + i·S_h, pad_w + j·S_w] = x[n, c, i, j], zero elsewhere. Thread owns out[n]."""
    batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    for n in prange(batch):
        fill(out_flat, n * channels * out_h * out_w, channels * out_h * out_w, 0)
        for c in range(channels):
            for i in range(height):
                copy_strided(out_flat, ((n * channels + c) * out_h + pad_h + i * stride_h) * out_w + pad_w, stride_w,
                             x_flat, ((n * channels + c) * height + i) * width, 1, width)


@njit(parallel=True, cache=True)
def forward(x_pad, weight, bias, out, stride_h, stride_w, dil_h, dil_w, groups):
    """O[n, m, oh, ow] = b[m] + Σ_c,kh,kw W[m, c, kh, kw] · X_pad[n, c, oh·S + kh·D, ow·S + kw·D], from the padded
    input. Thread owns O[n]."""
    batch, channels, height, width = x_pad.shape  # padded sizes
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    out_h, out_w = out.shape[2], out.shape[3]
    group_out = out_channels // groups
    span = ((out_h - 1) * stride_h) * width + (out_w - 1) * stride_w + 1  # the wide stride-1 result
    x_flat, out_flat = x_pad.reshape(x_pad.size), out.reshape(out.size)
    for n in prange(batch):
        wide = np.empty(span, out.dtype)
        for m in range(out_channels):
            fill(wide, 0, span, bias[m])
            for c in range(group_in):
                plane = (n * channels + (m // group_out) * group_in + c) * height * width
                for kh in range(kernel_h):
                    for kw in range(kernel_w):
                        axpy_strided(wide, 0, 1, x_flat, plane + kh * dil_h * width + kw * dil_w, 1, span,
                                     weight[m, c, kh, kw])
            for oh in range(out_h):
                copy_strided(out_flat, ((n * out_channels + m) * out_h + oh) * out_w, 1,
                             wide, oh * stride_h * width, stride_w, out_w)


@njit(parallel=True, cache=True)
def grad_input(grad_padded, weight, grad_in, pad_h, pad_w, dil_h, dil_w, groups):
    """dL/dX = full convolution of Z with the 180°-rotated filter, cropped by the forward padding P, where
    Z = dL/dO dilated by S and zero-padded by D·(K−1) (made by `dilate_pad`). Thread owns dX[n].

    With r = K−1−k the rotated tap, full[u] = Σ_r W[K−1−r] · Z[u + r·D] and dX[i] = full[i + P]; input rows
    past the last window (when S does not divide evenly) receive no gradient.
    """
    batch, channels, height, width = grad_in.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    z_h, z_w = grad_padded.shape[2], grad_padded.shape[3]
    full_h, full_w = z_h - dil_h * (kernel_h - 1), z_w - dil_w * (kernel_w - 1)
    span = (full_h - 1) * z_w + full_w
    group_out = out_channels // groups
    z_flat, grad_in_flat = grad_padded.reshape(grad_padded.size), grad_in.reshape(grad_in.size)
    for n in prange(batch):
        full = np.empty(span, grad_in.dtype)
        for c in range(channels):
            fill(full, 0, span, 0)
            group = c // group_in
            for m in range(group * group_out, (group + 1) * group_out):
                plane = (n * out_channels + m) * z_h * z_w
                for rh in range(kernel_h):
                    for rw in range(kernel_w):
                        axpy_strided(full, 0, 1, z_flat, plane + rh * dil_h * z_w + rw * dil_w, 1, span,
                                     weight[m, c - group * group_in, kernel_h - 1 - rh, kernel_w - 1 - rw])
            in_plane = (n * channels + c) * height * width
            for i in range(height):
                if i + pad_h < full_h:  # crop: dX[i, j] = full[i + P_h, j + P_w]
                    count = max(0, min(width, full_w - pad_w))
                    copy_strided(grad_in_flat, in_plane + i * width, 1, full, (i + pad_h) * z_w + pad_w, 1, count)
                    fill(grad_in_flat, in_plane + i * width + count, width - count, 0)
                else:
                    fill(grad_in_flat, in_plane + i * width, width, 0)


@njit(parallel=True, cache=True)
def grad_weight(x_pad, grad_dilated, grad_w, dil_h, dil_w, groups):
    """dL/dW[m, c, kh, kw] = Σ_n,a,b X_pad[n, c, a + kh·D, b + kw·D] · G[n, m, a, b]: the padded input correlated
    with G = dL/dO dilated by S (made by `dilate_pad`, zero-padded on the right to the input's pitch).
    Thread owns dW[m]."""
    batch, channels, height, width = x_pad.shape
    out_channels, group_in, kernel_h, kernel_w = grad_w.shape
    g_h, g_w = grad_dilated.shape[2], grad_dilated.shape[3]  # g_w == width
    span = g_h * g_w
    group_out = out_channels // groups
    x_flat, g_flat = x_pad.reshape(x_pad.size), grad_dilated.reshape(grad_dilated.size)
    for m in prange(out_channels):
        grad_w[m] = 0
        for n in range(batch):
            g_plane = (n * out_channels + m) * span
            for c in range(group_in):
                x_plane = (n * channels + (m // group_out) * group_in + c) * height * width
                for kh in range(kernel_h):
                    for kw in range(kernel_w):
                        offset = kh * dil_h * width + kw * dil_w
                        count = min(span, height * width - offset)  # G is zero where the window runs off X_pad
                        grad_w[m, c, kh, kw] = dot_strided(x_flat, x_plane + offset, 1, g_flat, g_plane, count,
                                                           grad_w[m, c, kh, kw])


@njit(parallel=True, cache=True)
def grad_bias(grad_out, grad_b):
    """dL/db[m] = Σ_n,oh,ow dL/dO[n, m, oh, ow]. Thread owns db[m]."""
    batch, out_channels, out_h, out_w = grad_out.shape
    grad_flat = grad_out.reshape(grad_out.size)
    for m in prange(out_channels):
        grad_b[m] = 0
        for n in range(batch):
            grad_b[m] = sum_range(grad_flat, (n * out_channels + m) * out_h * out_w, out_h * out_w, grad_b[m])
