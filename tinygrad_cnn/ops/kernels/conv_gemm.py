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
from tinygrad_cnn.ops.kernels.workspace import copy_strided, fill, workspace

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
def full_conv_cols(grad_out, first_channel, cols, taps_h, taps_w, phase_h, phase_w, in_h, in_w,
                   stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w):
    """Columns of the full convolution behind dL/dX, for input positions i ≡ phase (mod S) and rotated taps r:
    cols[(m·Th + t)·Tw + u, s·Jh·Jw + j·Jw + l] = Z[s, first_channel + m, i + P + r·D] at i = phase + j·S,
    where Z = dL/dO dilated by S and zero-padded by D·(K−1), so Z[a] = dL/dO[(a − D·(K−1)) / S].

    Only the taps whose dilated position can be non-zero for this phase are listed (see `rotated_taps`), so
    no multiply-add is spent on the zeros that dilating by S inserts. Thread owns one (row, sample) stretch.
    """
    batch, channels, out_h, out_w = grad_out.shape
    rows = cols.shape[0]
    n_taps_h, n_taps_w = taps_h.shape[0], taps_w.shape[0]
    count_h = (in_h - phase_h + stride_h - 1) // stride_h
    count_w = (in_w - phase_w + stride_w - 1) // stride_w
    positions = count_h * count_w
    grad_flat, cols_flat = grad_out.reshape(grad_out.size), cols.reshape(cols.size)
    for task in prange(rows * batch):
        row, s = task // batch, task % batch
        m = row // (n_taps_h * n_taps_w)
        rh, rw = taps_h[(row // n_taps_w) % n_taps_h], taps_w[row % n_taps_w]
        start = (row * batch + s) * positions
        # a − D·(K−1) = o·S exactly (the taps were chosen so), so o = (i + P + r·D − D·(K−1)) / S
        ow_first = (phase_w + pad_w + rw * dil_w - dil_w * (kernel_w - 1)) // stride_w
        l_lo, l_hi = valid_range(ow_first, 1, count_w, out_w)
        plane = (s * channels + first_channel + m) * out_h * out_w
        for j in range(count_h):
            oh = (phase_h + j * stride_h + pad_h + rh * dil_h - dil_h * (kernel_h - 1)) // stride_h
            line = start + j * count_w
            if oh < 0 or oh >= out_h:
                fill(cols_flat, line, count_w, 0)
                continue
            fill(cols_flat, line, l_lo, 0)
            copy_strided(cols_flat, line + l_lo, 1, grad_flat, plane + oh * out_w + ow_first + l_lo, 1, l_hi - l_lo)
            fill(cols_flat, line + l_hi, count_w - l_hi, 0)


@njit(parallel=True, cache=True)
def channel_major_to_batch(matrix, out, first_channel, phase_h, phase_w, stride_h, stride_w):
    """out[s, first_channel + c, phase_h + j·S, phase_w + l·S] = matrix[c, s·Jh·Jw + j·Jw + l].
    Thread owns out[s]."""
    batch, channels, height, width = out.shape
    count_h = (height - phase_h + stride_h - 1) // stride_h
    count_w = (width - phase_w + stride_w - 1) // stride_w
    positions = count_h * count_w
    matrix_flat, out_flat = matrix.reshape(matrix.size), out.reshape(out.size)
    for s in prange(batch):
        for c in range(matrix.shape[0]):
            plane = (s * channels + first_channel + c) * height * width
            for j in range(count_h):
                copy_strided(out_flat, plane + (phase_h + j * stride_h) * width + phase_w, stride_w,
                             matrix_flat, (c * batch + s) * positions + j * count_w, 1, count_w)


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


def rotated_taps(kernel: int, stride: int, padding: int, dilation: int, phase: int) -> np.ndarray:
    """Rotated taps r (r = K−1−k) whose dilated position can be non-zero for input positions ≡ phase (mod S):
    those with (phase + P + r·D − D·(K−1)) divisible by S."""
    return np.array([r for r in range(kernel)
                     if (phase + padding + r * dilation - dilation * (kernel - 1)) % stride == 0], np.int64)


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
            channel_major_to_batch(product, out[start:stop], group * group_out, 0, 0, 1, 1)


def grad_input(grad_out, weight, grad_in, stride, padding, dilation, groups):
    """dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated filter,
    cropped by the forward padding, written into `grad_in`.

    Input positions are split by phase (i mod S); for each phase, the rotated taps that meet non-zero entries
    of the dilated dL/dO form a smaller full convolution, done as rotated-filter matrix @ full_conv_cols.
    """
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch, _, height, width = grad_in.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out = out_channels // groups
    rotated = weight[:, :, ::-1, ::-1]  # the filter rotated by 180°
    for phase_h in range(min(stride_h, height)):
        taps_h = rotated_taps(kernel_h, stride_h, pad_h, dil_h, phase_h)
        for phase_w in range(min(stride_w, width)):
            taps_w = rotated_taps(kernel_w, stride_w, pad_w, dil_w, phase_w)
            if len(taps_h) == 0 or len(taps_w) == 0:
                grad_in[:, :, phase_h::stride_h, phase_w::stride_w] = 0  # no tap reaches these positions
                continue
            rows = group_out * len(taps_h) * len(taps_w)
            positions = len(range(phase_h, height, stride_h)) * len(range(phase_w, width, stride_w))
            # rotated filter as a (C_in/groups) × (M·Th·Tw) matrix, columns in the order of the cols' rows
            filters = np.ascontiguousarray(rotated[:, :, taps_h][:, :, :, taps_w].transpose(1, 0, 2, 3)).reshape(
                group_in, out_channels * len(taps_h) * len(taps_w))
            chunks = _chunks(batch, rows * positions * grad_out.itemsize)
            for start, stop in chunks:
                cols = workspace.get("columns", (rows, (stop - start) * positions), grad_out.dtype)
                product = workspace.get("product", (group_in, (stop - start) * positions), grad_out.dtype)
                for group in range(groups):
                    full_conv_cols(grad_out[start:stop], group * group_out, cols, taps_h, taps_w, phase_h, phase_w,
                                   height, width, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, kernel_h, kernel_w)
                    gemm(filters[:, group * rows:(group + 1) * rows], cols, product)
                    channel_major_to_batch(product, grad_in[start:stop], group * group_in,
                                           phase_h, phase_w, stride_h, stride_w)


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


def grad_input_wide(grad_padded, weight, grad_in, padding, dilation, groups):
    """Stride-1 dL/dX = full convolution of dL/dO zero-padded by D·(K−1) (`grad_padded`) with the 180°-rotated
    filter, cropped by the forward padding: rotated-filter matrix @ shifted planes of the padded gradient."""
    batch, _, z_h, z_w = grad_padded.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out = out_channels // groups
    # rotated filter as a (C_in/groups) × (M·KH·KW) matrix, columns in the order of shifted_planes' rows
    rotated = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(group_in, -1)
    rows, span = group_out * kernel_h * kernel_w, _span(z_h, z_w, kernel_h, kernel_w, *dilation)
    chunks = _chunks(batch, rows * span * grad_padded.itemsize)
    for start, stop in chunks:
        cols = workspace.get("columns", (rows, (stop - start) * span), grad_padded.dtype)
        product = workspace.get("product", (group_in, (stop - start) * span), grad_padded.dtype)
        for group in range(groups):
            shifted_planes(grad_padded[start:stop], group * group_out, group_out, kernel_h, kernel_w, *dilation, cols)
            gemm(rotated[:, group * rows:(group + 1) * rows], cols, product)
            # crop: dX[i, j] = full[i + P_h, j + P_w]
            wide_to_batch(product, grad_in[start:stop], group * group_in, z_w, padding[0] * z_w + padding[1])


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
