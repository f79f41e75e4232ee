"""Convolution as BLAS GEMMs on channel-major columns, one GEMM per chunk of samples and group.

Columns are laid out channel-major, (rows, samples·positions), so that a whole chunk of samples is ONE large
GEMM. Chunks hold up to 64 MiB of columns, a whole batch of 64 for the benchmark shapes: fewer, larger GEMMs
run faster (figures in benchmarks/RESULTS.md). The column kernels are parallel over the stretches they write;
the GEMMs are split over threads by gemm.py.

"Wide rows" (forward and dL/dW): the input is zero-padded and split into its S_h·S_w stride phases,
Q[c, ph, pw][i, j] = X_pad[c, i·S_h + ph, j·S_w + pw] (at stride 1 just the padded planes). Tap (kh, kw) then
reads, for every output (oh, ow), Q[c, kh·D mod S_h, kw·D mod S_w] at (oh + ⌊kh·D/S_h⌋, ow + ⌊kw·D/S_w⌋): if the
output keeps the phase planes' row pitch Wq, a tap's column is one phase plane shifted by a constant, so it is
built by ONE long copy per tap and sample instead of one short (and, at S > 1, strided) copy per output row. The
GEMM also produces the few positions that straddle a row end; they are never read (forward) or meet zeros
(dL/dW).
"""
import numpy as np

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.gemm import gemm
from tinygrad_cnn.ops.kernels.geometry import plane_positions, valid_range
from tinygrad_cnn.ops.kernels.inner_loops import axpy_strided, copy_strided, fill
from tinygrad_cnn.ops.kernels.padding import phase_planes
from tinygrad_cnn.runtime import workspace

CHUNK_BYTES = 64 << 20


def _chunks(batch: int, bytes_per_sample: int) -> list:
    """Sample ranges [start, stop) whose columns take at most CHUNK_BYTES (at least one sample)."""
    step = max(1, min(batch, CHUNK_BYTES // max(1, bytes_per_sample)))
    return [(start, min(batch, start + step)) for start in range(0, batch, step)]


@parallel_kernel(tasks=lambda cols, out, first_channel, kernel_h, kernel_w, *rest: cols.shape[0] // (kernel_h * kernel_w) * out.shape[0])
def col2im(cols, out, first_channel, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
           out_h, out_w, start, stop):
    """The adjoint of unfolding an input into columns (im2col): out[s, first_channel + c, oh·S + kh·D − P,
    ow·S + kw·D − P] = the sum of cols[(c·KH + kh)·KW + kw, s·OH·OW + oh·OW + ow] over the (kh, kw, oh, ow) that
    land there, zero where none does. A task owns one plane out[s, first_channel + c]."""
    batch, in_channels, height, width = out.shape
    channels, positions = cols.shape[0] // (kernel_h * kernel_w), out_h * out_w
    cols_flat, out_flat = cols.reshape(cols.size), out.reshape(out.size)
    one = out.dtype.type(1)
    for task in range(start, stop):
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


@parallel_kernel(tasks=lambda array, first_channel, matrix: matrix.shape[0] * array.shape[0])
def batch_to_channel_major(array, first_channel, matrix, start, stop):
    """matrix[c, s·P + p] = array[s, first_channel + c, p] for a (samples, channels, P) array.
    A task owns one (c, s) stretch."""
    batch, channels, positions = array.shape
    array_flat, matrix_flat = array.reshape(array.size), matrix.reshape(matrix.size)
    for task in range(start, stop):
        c, s = task // batch, task % batch
        copy_strided(matrix_flat, task * positions, 1, array_flat, (s * channels + first_channel + c) * positions, 1,
                     positions)


def tap_phases(kernel_h, kernel_w, stride, dilation, pitch):
    """For each tap (kh, kw): its phase plane (ph·S_w + pw) and its shift (⌊kh·D/S_h⌋·pitch + ⌊kw·D/S_w⌋)."""
    (stride_h, stride_w), (dil_h, dil_w) = stride, dilation
    phase, shift = np.empty(kernel_h * kernel_w, np.int64), np.empty(kernel_h * kernel_w, np.int64)
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            phase[kh * kernel_w + kw] = (kh * dil_h % stride_h) * stride_w + kw * dil_w % stride_w
            shift[kh * kernel_w + kw] = (kh * dil_h // stride_h) * pitch + kw * dil_w // stride_w
    return phase, shift


@parallel_kernel(tasks=lambda planes, *rest: rest[-1].shape[0] * planes.shape[0])
def shifted_planes(planes, first_channel, channels, phases, tap_phase, tap_shift, positions, cols, start, stop):
    """cols[c·T + t, s·L + i] = planes[s, (first_channel + c)·phases + tap_phase[t]].flat[tap_shift[t] + p_i] for
    i < L (L = columns per sample, T taps), p_i = i (wide rows: `positions` empty, one contiguous copy) or
    positions[i] (the outputs only); a row past the taps (the bias row) is all ones. A task owns a (row,
    sample) stretch."""
    batch, all_planes, height, width = planes.shape
    rows, span, taps = cols.shape[0], cols.shape[1] // batch, tap_phase.shape[0]
    planes_flat, cols_flat = planes.reshape(planes.size), cols.reshape(cols.size)
    for task in range(start, stop):
        row, s = task // batch, task % batch
        if row >= channels * taps:
            fill(cols_flat, task * span, span, 1)
            continue
        c, t = row // taps, row % taps
        source = (s * all_planes + (first_channel + c) * phases + tap_phase[t]) * height * width + tap_shift[t]
        if positions.shape[0] == 0:
            copy_strided(cols_flat, task * span, 1, planes_flat, source, 1, span)
        else:
            target = np.uint64(task * span)
            for i in range(np.uint64(span)):
                cols_flat[target + i] = planes_flat[np.uint64(source + positions[i])]


EXACT_WASTE = 1.15  # columns for the outputs only once wide rows would hold this many times as many


def column_positions(out_h, out_w, pitch):
    """(columns per sample, positions) for the columns of an OH × OW output on phase planes of row `pitch`: wide
    rows ((OH − 1)·pitch + OW columns, positions empty) unless they hold EXACT_WASTE times the outputs or more
    (small planes: 4×4 with a padding of 1 holds 22 for 16), then one column per output at positions[q] =
    oh·pitch + ow. The GEMM's time follows its columns; gathering exact ones costs less than that waste."""
    span = (out_h - 1) * pitch + out_w
    if span < EXACT_WASTE * out_h * out_w:
        return span, np.zeros(0, np.int64)
    return out_h * out_w, plane_positions(out_h, out_w, int(pitch))


@parallel_kernel(tasks=lambda matrix, out, *rest: out.shape[0])
def wide_to_batch(matrix, out, first_channel, pitch, start, stop):
    """out[s, first_channel + c, i, j] = matrix[c, s·L + i·pitch + j]; a task owns out[s]."""
    batch, channels, height, width = out.shape
    span = matrix.shape[1] // batch
    matrix_flat, out_flat = matrix.reshape(matrix.size), out.reshape(out.size)
    for s in range(start, stop):
        for c in range(matrix.shape[0]):
            for i in range(height):
                copy_strided(out_flat, ((s * channels + first_channel + c) * height + i) * width, 1,
                             matrix_flat, (c * batch + s) * span + i * pitch, 1, width)


@parallel_kernel(tasks=lambda array, first_channel, pitch, matrix: matrix.shape[0] * array.shape[0])
def batch_to_wide(array, first_channel, pitch, matrix, start, stop):
    """matrix[c, s·L + i·pitch + j] = array[s, first_channel + c, i, j], zero for j ≥ the array's width."""
    batch, channels, height, width = array.shape
    span = matrix.shape[1] // batch
    array_flat, matrix_flat = array.reshape(array.size), matrix.reshape(matrix.size)
    for task in range(start, stop):
        c, s = task // batch, task % batch
        fill(matrix_flat, task * span, span, 0)
        for i in range(height):
            copy_strided(matrix_flat, task * span + i * pitch, 1,
                         array_flat, ((s * channels + first_channel + c) * height + i) * width, 1, width)


def forward(x, weight, bias, out, stride, padding, dilation, groups):
    """O = X ⋆ W + b: [W | b] @ [shifted phase planes; 1] per chunk of samples and group, the wide rows cropped."""
    batch, (out_h, out_w) = x.shape[0], out.shape[2:]
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out = out_channels // groups
    planes = phase_planes(x, stride, padding)
    pitch, phases = planes.shape[3], stride[0] * stride[1]
    tap_phase, tap_shift = tap_phases(kernel_h, kernel_w, stride, dilation, pitch)
    weight_matrix = weight.reshape(out_channels, -1)
    if bias is not None:  # bias fused into the GEMM: an extra column of W against a row of ones
        weight_matrix = np.concatenate([weight_matrix, bias[:, None]], axis=1)
    rows, (span, positions) = weight_matrix.shape[1], column_positions(out_h, out_w, pitch)
    out_pitch = pitch if positions.size == 0 else out_w
    for start, stop in _chunks(batch, rows * span * x.itemsize):
        cols = workspace.get("columns", (rows, (stop - start) * span), x.dtype)
        product = workspace.get("product", (group_out, (stop - start) * span), x.dtype)
        for group in range(groups):
            shifted_planes(planes[start:stop], group * group_in, group_in, phases, tap_phase, tap_shift, positions,
                           cols)
            gemm(weight_matrix[group * group_out:(group + 1) * group_out], cols, product)
            wide_to_batch(product, out[start:stop], group * group_out, out_pitch)


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
    weight_t = weight.reshape(groups, group_out, rows).transpose(0, 2, 1)  # Wᵀ per group, a view: BLAS transposes
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
    """dL/dW = X ⋆ dL/dO: dL/dO laid out on the phase planes' row pitch (zero elsewhere) @ shifted phase planesᵀ,
    summed over chunks of samples."""
    batch, (out_h, out_w) = x.shape[0], grad_out.shape[2:]
    out_channels, group_in, kernel_h, kernel_w = grad_w.shape
    group_out = out_channels // groups
    planes = phase_planes(x, stride, padding)
    pitch, phases = planes.shape[3], stride[0] * stride[1]
    tap_phase, tap_shift = tap_phases(kernel_h, kernel_w, stride, dilation, pitch)
    rows, (span, positions) = group_in * kernel_h * kernel_w, column_positions(out_h, out_w, pitch)
    out_pitch = pitch if positions.size == 0 else out_w
    grad_matrix = grad_w.reshape(out_channels, rows)
    for index, (start, stop) in enumerate(_chunks(batch, rows * span * x.itemsize)):
        cols = workspace.get("columns", (rows, (stop - start) * span), x.dtype)
        grad_wide = workspace.get("grad_channel_major", (group_out, (stop - start) * span), x.dtype)
        partial = workspace.get("product", (group_out, rows), x.dtype)
        for group in range(groups):
            shifted_planes(planes[start:stop], group * group_in, group_in, phases, tap_phase, tap_shift, positions,
                           cols)
            batch_to_wide(grad_out[start:stop], group * group_out, out_pitch, grad_wide)
            members = grad_matrix[group * group_out:(group + 1) * group_out]
            # Σ over samples and output positions of dL/dO · X_pad: the correlation as one GEMM
            gemm(grad_wide, cols.T, members if index == 0 else partial)
            if index > 0:
                members += partial
