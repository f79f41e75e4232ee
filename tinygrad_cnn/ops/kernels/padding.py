"""Zero padding, and the split of a padded input into its stride phases, for the GEMM, blocked and depthwise
convolutions and the direct dL/dW kernel."""
import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.geometry import valid_range
from tinygrad_cnn.ops.kernels.inner_loops import copy, copy_strided, fill
from tinygrad_cnn.runtime import workspace


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def split_phase(x_flat, x_start, height, width, stride_h, stride_w, pad_h, pad_w, phase_h, phase_w, out_flat,
                out_start, out_h, out_w):
    """out[i, j] = X_pad[i·S_h + phase_h, j·S_w + phase_w] for the out_h × out_w phase plane at out_flat[out_start],
    X_pad the height × width plane at x_flat[x_start] zero-padded by P (zero past its edge). Zeros are written only
    outside the copied rectangle (copy_phase_interior): at stride 1 a third less time than zeroing the whole plane
    first and copying with a step."""
    i_lo, i_hi, j_lo, j_hi = copy_phase_interior(x_flat, x_start, height, width, stride_h, stride_w, pad_h, pad_w,
                                                 phase_h, phase_w, out_flat, out_start, out_h, out_w, 1, 0, 0)
    if i_hi <= i_lo or j_hi <= j_lo:
        fill(out_flat, out_start, out_h * out_w, 0)
        return
    fill(out_flat, out_start, i_lo * out_w, 0)
    for i in range(i_lo, i_hi):
        row = out_start + i * out_w
        fill(out_flat, row, j_lo, 0)
        fill(out_flat, row + j_hi, out_w - j_hi, 0)
    fill(out_flat, out_start + i_hi * out_w, (out_h - i_hi) * out_w, 0)


@njit(cache=True, no_cfunc_wrapper=True)
def copy_phase_interior(x_flat, x_start, height, width, stride_h, stride_w, pad_h, pad_w, phase_h, phase_w, out_flat,
                        out_start, out_h, out_w, planes, x_step, out_step):
    """split_phase's copy without its zeros, for `planes` planes (x_step apart in x, out_step in out) of the
    same phase: the rows i_lo … i_hi−1, columns j_lo … j_hi−1 of each phase plane that come from X, returned as
    (i_lo, i_hi, j_lo, j_hi). The zeros around them are the same for every plane of a geometry, so a buffer that
    is refilled plane after plane needs them written once. The ranges are worked out once for all the planes: a
    call per plane, with its divisions, cost more than the copy of an 8×8 plane (64x8x8->64 at batch 32, one
    thread: the forward's padding 127 -> 48 us). A row of stride 1 is copied as a contiguous run (which
    vectorises; a copy with a step known only at run time does not)."""
    # rows i with 0 <= i·S + phase − P < height, columns likewise
    i_lo, i_hi = valid_range(phase_h - pad_h, stride_h, out_h, height)
    j_lo, j_hi = valid_range(phase_w - pad_w, stride_w, out_w, width)
    if i_hi > i_lo and j_hi > j_lo:
        first_source = x_start + (i_lo * stride_h + phase_h - pad_h) * width + j_lo * stride_w + phase_w - pad_w
        for plane in range(planes):
            for i in range(i_lo, i_hi):
                row = out_start + plane * out_step + i * out_w + j_lo
                source = first_source + plane * x_step + (i - i_lo) * stride_h * width
                if stride_w == 1:
                    copy(out_flat, row, x_flat, source, j_hi - j_lo)
                else:
                    copy_strided(out_flat, row, 1, x_flat, source, stride_w, j_hi - j_lo)
    return i_lo, i_hi, j_lo, j_hi


def _phase_planes(x, stride_h, stride_w, *rest):
    """pad_split's tasks: one per phase plane of every input plane."""
    return x.shape[0] * x.shape[1] * stride_h * stride_w


@parallel_kernel(tasks=_phase_planes, elements=lambda x, *geometry_and_out: geometry_and_out[-1].size)
def pad_split(x, stride_h, stride_w, pad_h, pad_w, out, start, stop):
    """out[n, (c·S_h + ph)·S_w + pw, i, j] = X_pad[n, c, i·S_h + ph, j·S_w + pw], X_pad = x zero-padded by P (zero
    past its edge). At stride 1 this is just the padded input. A task is one output plane."""
    batch, channels, height, width = x.shape
    phases, (out_h, out_w) = stride_h * stride_w, out.shape[2:]
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    for task in range(start, stop):
        phase = task % phases
        split_phase(x_flat, (task // phases) * height * width, height, width, stride_h, stride_w, pad_h, pad_w,
                    phase // stride_w, phase % stride_w, out_flat, task * out_h * out_w, out_h, out_w)


def phase_shape(input_shape, stride, padding):
    """(height, width) of the phase planes of an (N, C, H, W) input zero-padded by P and split by S:
    ⌈(H + 2P)/S⌉ per axis."""
    return tuple(-(-(input_shape[2 + i] + 2 * padding[i]) // stride[i]) for i in range(2))


def phase_planes(x, stride, padding):
    """`pad_split` into a workspace: (N, C·S_h·S_w, ⌈(H + 2P_h)/S_h⌉, ⌈(W + 2P_w)/S_w⌉); x itself at stride 1
    with no padding."""
    (stride_h, stride_w), (pad_h, pad_w) = stride, padding
    batch, channels = x.shape[:2]
    shape = (batch, channels * stride_h * stride_w, *phase_shape(x.shape, stride, padding))
    if shape == x.shape:  # stride 1, no padding
        return x
    out = workspace.get("phase_planes", shape, x.dtype)
    pad_split(x, stride_h, stride_w, pad_h, pad_w, out)
    return out
