"""Convolution as BLAS GEMMs on channel-major columns, one GEMM per chunk of samples and group.

Columns are laid out channel-major, (rows, samples·positions), so that a whole chunk of samples is ONE large
GEMM (measured 130-160 GFLOP/s for (64 × 288) @ (288 × 8·576) on a quiet machine). Chunks hold up to 16 MiB
of columns: 1-2 MiB chunks ran up to 1.5× slower on 64×16×16→128, larger ones gained nothing and hold more
memory. The column kernels are parallel over the stretches they write; the GEMMs are split over threads by gemm.py.
"""
import numpy as np
from numba import njit, prange

from tinygrad_cnn.ops.kernels.gemm import gemm
from tinygrad_cnn.ops.kernels.geometry import valid_range
from tinygrad_cnn.ops.kernels.workspace import axpy_strided, copy_strided, fill, workspace

CHUNK_BYTES = 16 << 20


def _chunks(batch: int, bytes_per_sample: int) -> list:
    """Sample ranges [start, stop) whose columns take at most CHUNK_BYTES (at least one sample)."""
    step = max(1, min(batch, CHUNK_BYTES // max(1, bytes_per_sample)))
    return [(start, min(batch, start + step)) for start in range(0, batch, step)]


@njit(parallel=True, cache=True)
def im2col(x, first_channel, channels, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
           out_h, out_w):
    """cols[(c·KH + kh)·KW + kw, s·OH·OW + oh·OW + ow] = X_pad[s, first_channel + c, oh·S + kh·D, ow·S + kw·D].

    Unfolds `channels` channels; a row beyond them (the bias row) is all ones. Thread owns one (row, sample)
    stretch of cols.
    """
    batch, in_channels, height, width = x.shape
    rows, taps = cols.shape[0], channels * kernel_h * kernel_w
    positions = out_h * out_w
    x_flat, cols_flat = x.reshape(x.size), cols.reshape(cols.size)
    for task in prange(rows * batch):
        row, s = task // batch, task % batch
        start = (row * batch + s) * positions
        if row >= taps:
            fill(cols_flat, start, positions, 1)
            continue
        c, kh, kw = row // (kernel_h * kernel_w), (row // kernel_w) % kernel_h, row % kernel_w
        offset_w = kw * dil_w - pad_w
        ow_lo, ow_hi = valid_range(offset_w, stride_w, out_w, width)
        plane = (s * in_channels + first_channel + c) * height * width
        for oh in range(out_h):
            ih = oh * stride_h + kh * dil_h - pad_h
            line = start + oh * out_w
            if ih < 0 or ih >= height:
                fill(cols_flat, line, out_w, 0)
                continue
            fill(cols_flat, line, ow_lo, 0)
            copy_strided(cols_flat, line + ow_lo, 1, x_flat, plane + ih * width + ow_lo * stride_w + offset_w, stride_w,
                         ow_hi - ow_lo)
            fill(cols_flat, line + ow_hi, out_w - ow_hi, 0)


@njit(parallel=True, cache=True)
def col2im(cols, out, first_channel, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
           out_h, out_w):
    """The adjoint of `im2col`: out[s, first_channel + c, oh·S + kh·D − P, ow·S + kw·D − P] = the sum of
    cols[(c·KH + kh)·KW + kw, s·OH·OW + oh·OW + ow] over the (kh, kw, oh, ow) that land there, zero where none
    does. Thread owns one plane out[s, first_channel + c]."""
    batch, in_channels, height, width = out.shape
    channels, positions = cols.shape[0] // (kernel_h * kernel_w), out_h * out_w
    cols_flat, out_flat = cols.reshape(cols.size), out.reshape(out.size)
    one = out.dtype.type(1)
    for task in prange(channels * batch):
        c, s = task // batch, task % batch
        plane = (s * in_channels + first_channel + c) * height * width
        fill(out_flat, plane, height * width, 0)
        for kh in range(kernel_h):
            oh_lo, oh_hi = valid_range(kh * dil_h - pad_h, stride_h, out_h, height)
            for kw in range(kernel_w):
                offset_w = kw * dil_w - pad_w
                ow_lo, ow_hi = valid_range(offset_w, stride_w, out_w, width)
                start = (((c * kernel_h + kh) * kernel_w + kw) * batch + s) * positions
                for oh in range(oh_lo, oh_hi):
                    axpy_strided(out_flat, plane + (oh * stride_h + kh * dil_h - pad_h) * width + ow_lo * stride_w
                                 + offset_w, stride_w, cols_flat, start + oh * out_w + ow_lo, 1, ow_hi - ow_lo, one)


@njit(parallel=True, cache=True)
def channel_major_to_batch(matrix, out, first_channel):
    """out[s, first_channel + c, p] = matrix[c, s·P + p] for P positions per plane (the inverse of
    `batch_to_channel_major`). Thread owns out[s]."""
    batch, channels, height, width = out.shape
    positions = height * width
    matrix_flat, out_flat = matrix.reshape(matrix.size), out.reshape(out.size)
    for s in prange(batch):
        for c in range(matrix.shape[0]):
            copy_strided(out_flat, (s * channels + first_channel + c) * positions, 1,
                         matrix_flat, (c * batch + s) * positions, 1, positions)


@njit(parallel=True, cache=True)
def batch_to_channel_major(array, first_channel, matrix):
    """matrix[c, s·P + p] = array[s, first_channel + c, p] for a (samples, channels, P) array.
    Thread owns one (c, s) stretch."""
    batch, channels, positions = array.shape
    array_flat, matrix_flat = array.reshape(array.size), matrix.reshape(matrix.size)
    for task in prange(matrix.shape[0] * batch):
        c, s = task // batch, task % batch
        copy_strided(matrix_flat, task * positions, 1, array_flat, (s * channels + first_channel + c) * positions, 1,
                     positions)


def forward(x, weight, bias, out, stride, padding, dilation, groups):
    """O = X ⋆ W + b: per chunk and group, [W | b] @ [cols; 1] with cols = im2col(X), written into `out`."""
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch = x.shape[0]
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out, (out_h, out_w) = out_channels // groups, out.shape[2:]
    weight_matrix = weight.reshape(out_channels, -1)
    if bias is not None:  # bias fused into the GEMM: an extra column of W against a row of ones in the columns
        weight_matrix = np.concatenate([weight_matrix, bias[:, None]], axis=1)
    rows, positions = weight_matrix.shape[1], out_h * out_w
    chunks = _chunks(batch, rows * positions * x.itemsize)
    for start, stop in chunks:
        cols = workspace.get("columns", (rows, (stop - start) * positions), x.dtype)
        product = workspace.get("product", (group_out, (stop - start) * positions), x.dtype)
        for group in range(groups):
            im2col(x[start:stop], group * group_in, group_in, cols, kernel_h, kernel_w,
                   stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)
            gemm(weight_matrix[group * group_out:(group + 1) * group_out], cols, product)
            channel_major_to_batch(product, out[start:stop], group * group_out)


def grad_input(grad_out, weight, grad_in, stride, padding, dilation, groups):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated filter,
    cropped by the forward padding, written into `grad_in`.

    Evaluated tap by tap. With Z the padded, dilated dL/dO and r = K−1−k, dX[i] = Σ_r W[K−1−r]·Z[i + P + r·D]
    = Σ_k W[k]·dL/dO[o] over the taps k and outputs o with o·S + k·D − P = i (Z is zero elsewhere): the
    channel sums Wᵀ @ dL/dO of all taps are one GEMM, and `col2im` adds each tap's plane into dX at its
    shift. No multiply-add meets the zeros that padding and dilating insert.
    """
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch = grad_in.shape[0]
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out, (out_h, out_w) = out_channels // groups, grad_out.shape[2:]
    rows, positions = group_in * kernel_h * kernel_w, out_h * out_w
    weight_t = np.ascontiguousarray(weight.reshape(groups, group_out, rows).transpose(0, 2, 1))  # Wᵀ per group
    grad_out_3d = grad_out.reshape(batch, out_channels, positions)
    for start, stop in _chunks(batch, rows * positions * grad_out.itemsize):
        grad_cm = workspace.get("grad_channel_major", (group_out, (stop - start) * positions), grad_out.dtype)
        cols = workspace.get("columns", (rows, (stop - start) * positions), grad_out.dtype)
        for group in range(groups):
            batch_to_channel_major(grad_out_3d[start:stop], group * group_out, grad_cm)
            gemm(weight_t[group], grad_cm, cols)
            col2im(cols, grad_in[start:stop], group * group_in, kernel_h, kernel_w, stride_h, stride_w,
                   pad_h, pad_w, dil_h, dil_w, out_h, out_w)


def grad_weight(x, grad_out, grad_w, stride, padding, dilation, groups):
    """dL/dW = X ⋆ dL/dO: per chunk and group, dL/dO (channel-major) @ im2col(X)ᵀ, summed into `grad_w`."""
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch = x.shape[0]
    out_channels, group_in, kernel_h, kernel_w = grad_w.shape
    group_out, (out_h, out_w) = out_channels // groups, grad_out.shape[2:]
    rows, positions = group_in * kernel_h * kernel_w, out_h * out_w
    grad_out_3d = grad_out.reshape(batch, out_channels, positions)
    grad_matrix = grad_w.reshape(out_channels, rows)
    chunks = _chunks(batch, rows * positions * x.itemsize)
    for index, (start, stop) in enumerate(chunks):
        cols = workspace.get("columns", (rows, (stop - start) * positions), x.dtype)
        grad_cm = workspace.get("grad_channel_major", (group_out, (stop - start) * positions), x.dtype)
        partial = workspace.get("product", (group_out, rows), x.dtype)
        for group in range(groups):
            im2col(x[start:stop], group * group_in, group_in, cols, kernel_h, kernel_w,
                   stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)
            batch_to_channel_major(grad_out_3d[start:stop], group * group_out, grad_cm)
            members = grad_matrix[group * group_out:(group + 1) * group_out]
            # Σ over samples and output positions of dL/dO · X_pad: the correlation as one GEMM
            gemm(grad_cm, cols.T, members if index == 0 else partial)
            if index > 0:
                members += partial


# ---- stride 1: "wide rows" --------------------------------------------------------------------------
# At stride 1 the column of tap (kh, kw) is the padded plane itself, shifted by kh·D·W + kw·D, if the output
# keeps the plane's row pitch W ("wide rows", as in conv_direct): one long copy per tap and sample instead of
# one short copy per output row. The GEMM then also produces the few positions that straddle a row end; they
# are never read (forward, dX) or meet zeros (dW). Measured: building the columns of 32×26×26→64 k3 took
# 5.9 ms row by row.

@njit(parallel=True, cache=True)
def shifted_planes(planes, first_channel, channels, kernel_h, kernel_w, dil_h, dil_w, cols):
    """cols[(c·KH + kh)·KW + kw, s·L + i] = planes[s, first_channel + c].flat[kh·D·W + kw·D + i] for i < L
    (L = columns per sample); a row past the taps (the bias row) is all ones. Thread owns a (row, sample) stretch."""
    batch, all_channels, height, width = planes.shape
    rows, span = cols.shape[0], cols.shape[1] // batch
    planes_flat, cols_flat = planes.reshape(planes.size), cols.reshape(cols.size)
    for task in prange(rows * batch):
        row, s = task // batch, task % batch
        if row >= channels * kernel_h * kernel_w:
            fill(cols_flat, task * span, span, 1)
            continue
        c, kh, kw = row // (kernel_h * kernel_w), (row // kernel_w) % kernel_h, row % kernel_w
        copy_strided(cols_flat, task * span, 1, planes_flat,
                     (s * all_channels + first_channel + c) * height * width + kh * dil_h * width + kw * dil_w, 1, span)


@njit(parallel=True, cache=True)
def wide_to_batch(matrix, out, first_channel, pitch, offset):
    """out[s, first_channel + c, i, j] = matrix[c, s·L + offset + i·pitch + j]; thread owns out[s]."""
    batch, channels, height, width = out.shape
    span = matrix.shape[1] // batch
    matrix_flat, out_flat = matrix.reshape(matrix.size), out.reshape(out.size)
    for s in prange(batch):
        for c in range(matrix.shape[0]):
            for i in range(height):
                copy_strided(out_flat, ((s * channels + first_channel + c) * height + i) * width, 1,
                             matrix_flat, (c * batch + s) * span + offset + i * pitch, 1, width)


@njit(parallel=True, cache=True)
def batch_to_wide(array, first_channel, pitch, matrix):
    """matrix[c, s·L + i·pitch + j] = array[s, first_channel + c, i, j], zero for j ≥ the array's width."""
    batch, channels, height, width = array.shape
    span = matrix.shape[1] // batch
    array_flat, matrix_flat = array.reshape(array.size), matrix.reshape(matrix.size)
    for task in prange(matrix.shape[0] * batch):
        c, s = task // batch, task % batch
        fill(matrix_flat, task * span, span, 0)
        for i in range(height):
            copy_strided(matrix_flat, task * span + i * pitch, 1,
                         array_flat, ((s * channels + first_channel + c) * height + i) * width, 1, width)


def _span(plane_h, plane_w, kernel_h, kernel_w, dil_h, dil_w):
    """Wide positions per sample: (OH − 1)·W + OW for the stride-1 output of a kernel over a padded plane."""
    return (plane_h - dil_h * (kernel_h - 1) - 1) * plane_w + plane_w - dil_w * (kernel_w - 1)


def forward_wide(x_pad, weight, bias, out, dilation, groups):
    """Stride-1 O = X ⋆ W + b from the padded input: [W | b] @ [shifted planes; 1], the wide rows cropped."""
    batch, _, height, width = x_pad.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out = out_channels // groups
    weight_matrix = weight.reshape(out_channels, -1)
    if bias is not None:  # bias fused into the GEMM: an extra column of W against a row of ones
        weight_matrix = np.concatenate([weight_matrix, bias[:, None]], axis=1)
    rows, span = weight_matrix.shape[1], _span(height, width, kernel_h, kernel_w, *dilation)
    chunks = _chunks(batch, rows * span * x_pad.itemsize)
    for start, stop in chunks:
        cols = workspace.get("columns", (rows, (stop - start) * span), x_pad.dtype)
        product = workspace.get("product", (group_out, (stop - start) * span), x_pad.dtype)
        for group in range(groups):
            shifted_planes(x_pad[start:stop], group * group_in, group_in, kernel_h, kernel_w, *dilation, cols)
            gemm(weight_matrix[group * group_out:(group + 1) * group_out], cols, product)
            wide_to_batch(product, out[start:stop], group * group_out, width, 0)


def grad_weight_wide(x_pad, grad_out, grad_w, dilation, groups):
    """Stride-1 dL/dW = X ⋆ dL/dO: dL/dO laid out on the padded input's row pitch @ shifted planesᵀ."""
    batch, _, height, width = x_pad.shape
    out_channels, group_in, kernel_h, kernel_w = grad_w.shape
    group_out = out_channels // groups
    rows, span = group_in * kernel_h * kernel_w, _span(height, width, kernel_h, kernel_w, *dilation)
    grad_matrix = grad_w.reshape(out_channels, rows)
    chunks = _chunks(batch, rows * span * x_pad.itemsize)
    for index, (start, stop) in enumerate(chunks):
        cols = workspace.get("columns", (rows, (stop - start) * span), x_pad.dtype)
        grad_wide = workspace.get("grad_channel_major", (group_out, (stop - start) * span), x_pad.dtype)
        partial = workspace.get("product", (group_out, rows), x_pad.dtype)
        for group in range(groups):
            shifted_planes(x_pad[start:stop], group * group_in, group_in, kernel_h, kernel_w, *dilation, cols)
            batch_to_wide(grad_out[start:stop], group * group_out, width, grad_wide)
            members = grad_matrix[group * group_out:(group + 1) * group_out]
            gemm(grad_wide, cols.T, members if index == 0 else partial)
            if index > 0:
                members += partial
