"""Register-blocked direct convolution: O = X ⋆ W + b with a tile of outputs (positions × vectors of output
channels: PIXELS × BLOCKS, or VECTORS × 1 for layers of at most one vector of channels, or of half of one with
AVX-512) held in registers across
all C·K_h·K_w taps (register_tile.tile_taps), so each output is stored once, not once per few taps.

Weights are packed channel-blocked: packed[mb, t, l] = W[mb·V + l, t] for tap t = (c, kh, kw) and V = the tile's
output channels (register_tile.tile_width; zero past M), so a tap's weights for a tile are contiguous. With groups, each group's
M/groups output channels get blocks of their own, whose taps read only that group's C/groups input channels.
The input is zero-padded and split into its stride phases (padding.pad_split), as on the GEMM path: tap (c, kh, kw)
of output (oh, ow) reads phase plane (c, kh·D mod S_h, kw·D mod S_w) at shift ⌊kh·D/S_h⌋·pitch + ⌊kw·D/S_w⌋ +
oh·pitch + ow, so consecutive output positions of a row are consecutive inputs at any stride. A forward tile takes
its positions as consecutive outputs of the plane, across row ends, each at its own shift (output_shifts). A task owns
the outputs of one channel block for one sample or a few (sample_chunks), and every output is one sum in tap
order: the same bits on any thread count.
"""
import functools
import math

import numpy as np
from numba import njit

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.conv_gemm import tap_phases
from tinygrad_cnn.ops.kernels.geometry import plane_positions
from tinygrad_cnn.ops.kernels.inner_loops import (add_into, aligned_empty, copy_plus, copy_strided, fill,
                                                  scatter_plus)
from tinygrad_cnn.ops.kernels.padding import copy_phase_interior, phase_planes, phase_shape
from tinygrad_cnn.ops.kernels.register_tile import (VECTORS, lanes, tile_positions, tile_taps, tile_width,
                                                    transpose_rows)
from tinygrad_cnn.ops.kernels.vector_width import VECTOR_BYTES


def _tile_tasks(planes, sample_size, packed, bias, out, offsets, shifts, phases, targets, width, groups, chunks,
                geometry):
    return chunks * (packed.shape[0] // (offsets.shape[0] * width))


NO_TARGETS = np.zeros(0, np.int64)  # forward_tiles' targets when every phase writes its positions in order
RUN_BYTES = 1 << 14  # the scratch run of tiles summed before they are written out, plane by plane


@parallel_kernel(tasks=_tile_tasks)
def forward_tiles(planes, sample_size, packed, bias, out, offsets, shifts, phases, targets, width, groups, chunks,
                  geometry, start, stop):
    """O[n, m, q] = b[m] + Σ_t packed[block, t, lane] · planes[n·sample_size + g·sample_size/groups + offsets[t] +
    shifts[q]] for output position q = oh·OW + ow (shifts[q] = oh·pitch + ow) and output channel m = g·M/groups +
    j·width + lane of block = g·blocks/groups + j, tile by tile: tile_positions(width) consecutive output positions
    × width output channels. A task is one block for one of `chunks` runs of consecutive samples (sample_chunks).
    A run of tiles (RUN_BYTES) is summed into a scratch run (channel-major: each tile transposed in registers) and
    then written out one output plane at a time:
    storing each tile straight into its `width` planes wrote a few values into each of `width` lines that, with
    planes a multiple of 4 KiB apart, compete for the same few sets of the L1 cache (2.5× slower on 32×32).
    `planes` is the unpadded input: with geometry[0] set (_geometry), the input planes of a task's samples and
    group are padded and split into their phase planes (_pad_sample) in a scratch copy of the thread's own when
    its first task reaches them; the copy stays in cache, where padding the whole batch first wrote it to memory
    and read it back.
    Each row of `phases` is one such sum over taps of its own: (first tap in `offsets`, taps, first shift in
    `shifts`, positions, first target or −1, first packed weight); with a target, its position q is written at
    plane position targets[first target + q] instead of q. A forward has one row; dL/dX at a stride one per
    phase of the input (grad_input), a task writing all of them while its output planes are in cache."""
    batch, out_channels, out_h, out_w = out.shape
    blocks = packed.shape[0] // (offsets.shape[0] * width)
    per_group, group_out, group_size = blocks // groups, out_channels // groups, sample_size // groups
    fused = geometry[0] != 0
    padded = np.empty(-(-batch // chunks) * group_size if fused else 0, out.dtype)
    fill(padded, 0, padded.size, 0)  # the padding's zeros, written once (_pad_sample copies the rest)
    inputs = padded if fused else planes
    group_planes, padded_planes = geometry[1] // groups * geometry[4] * geometry[5], -1
    out_flat = out.reshape(out.size)
    vectors = width * out.itemsize // VECTOR_BYTES  # 0: the half tile
    pixels = VECTORS // max(1, vectors)
    plane, run = out_h * out_w, max(1, RUN_BYTES // (pixels * width * out.itemsize)) * pixels
    pitch = run + pixels  # room for a tile store's padding positions (register_tile: fewer than `pixels`)
    acc = np.empty(width * pitch, out.dtype)
    for task in range(start, stop):
        chunk, block = task // blocks, task % blocks
        first_n, last_n = chunk * batch // chunks, (chunk + 1) * batch // chunks
        group, part = block // per_group, block % per_group
        first_channel = group * group_out + part * width
        channels = min(width, group_out - part * width)
        if fused and first_n * groups + group != padded_planes:  # no literal arguments: each would compile it anew
            first_plane = group * group_planes
            for n in range(first_n, last_n):
                _pad_sample(planes, n, first_plane, first_plane + group_planes, geometry, padded,
                            (n - first_n) * group_size - first_plane * geometry[8] * geometry[9])
            padded_planes = first_n * groups + group
        for n in range(first_n, last_n):
            corner = (n * out_channels + first_channel) * plane  # output (n, first_channel, 0, 0)
            source = (n - first_n) * group_size if fused else n * sample_size + group * group_size
            for phase in range(phases.shape[0]):
                first_tap, taps, first_shift, count, first_target = phases[phase, :5]
                tap_offsets = offsets[first_tap:first_tap + taps]
                weights = phases[phase, 5] + block * taps * width
                for first in range(0, count, run):
                    positions = min(run, count - first)
                    for tile in range(0, positions, pixels):
                        tile_taps(acc[tile:], packed, weights, inputs, source, tap_offsets, taps, shifts,
                                  first_shift + first + tile, vectors, pitch)
                    for lane in range(channels):
                        if first_target < 0:
                            copy_plus(out_flat, corner + lane * plane + first, acc, lane * pitch, positions,
                                      bias[first_channel + lane])
                        else:
                            scatter_plus(out_flat, corner + lane * plane, targets, first_target + first, acc,
                                         lane * pitch, positions, bias[first_channel + lane])


@njit(cache=True, no_cfunc_wrapper=True)
def _pad_sample(x_flat, n, first, last, geometry, padded, start):
    """Input planes first … last−1 (channel·phases + phase; whole channels) of sample n of the unpadded input,
    zero-padded and split into their stride phases, into padded[start + plane·Q_h·Q_w], `geometry` as
    forward_tiles': only what comes from X is copied (padding.copy_phase_interior), onto a buffer whose padding
    is already zero. Writing the zeros again for every sample cost more than the copy on small planes (64x8x8->64,
    one thread: 20%)."""
    in_channels, height, width = geometry[1], geometry[2], geometry[3]
    stride_h, stride_w, pad_h, pad_w, q_h, q_w = geometry[4], geometry[5], geometry[6], geometry[7], geometry[8], geometry[9]
    phases = stride_h * stride_w
    for phase in range(phases):  # the planes of one phase at a time: its ranges are the same for every channel
        copy_phase_interior(x_flat, (n * in_channels + first // phases) * height * width, height, width, stride_h,
                            stride_w, pad_h, pad_w, phase // stride_w, phase % stride_w, padded,
                            start + (first + phase) * q_h * q_w, q_h, q_w, (last - first) // phases, height * width,
                            phases * q_h * q_w)


@functools.lru_cache(maxsize=64)
def _geometry(shape, stride, padding):
    """(geometry, sample size, phase-plane pitch) for kernels that pad each sample of an input of `shape`
    themselves: geometry = (pad?, C, H, W, S_h, S_w, P_h, P_w, Q_h, Q_w) with Q = ⌈(H + 2P)/S⌉ per axis, 'pad?' 0
    when the input is its own single phase plane (no padding, stride 1): then it is read in place. Remembered
    per geometry, as output_shifts (the kernels only read it)."""
    batch, channels, height, width = shape
    q_h, q_w = phase_shape(shape, stride, padding)
    fused = (tuple(stride), q_h, q_w) != ((1, 1), height, width)
    geometry = np.array([fused, channels, height, width, *stride, *padding, q_h, q_w], np.int64)
    return geometry, channels * stride[0] * stride[1] * q_h * q_w, q_w


@functools.lru_cache(maxsize=64)
def output_shifts(out_h, out_w, row_step, column_step=1):
    """shifts[q] = oh·row_step + ow·column_step for output position q = oh·OW + ow (on phase planes split by the
    stride: the pitch and 1), padded to whole tiles of either shape (VECTORS positions) with the last one's
    (computed again and dropped): each tile reads only outputs that exist. Remembered per geometry (the kernel only
    reads it), as conv_direct.tap_table: a conv calls it every step."""
    shifts = plane_positions(out_h, out_w, row_step, column_step)
    tiles = -(-shifts.size // VECTORS)
    return np.concatenate([shifts, np.full(tiles * VECTORS - shifts.size, shifts[-1])]).astype(np.int64)


def planes_stride(width, stride, itemsize):
    """The stride the forward splits its padded input by, for tiles of `width` output channels: the conv's own
    for narrow tiles (their 16 positions read through one address only when consecutive), else (1, 1): a wide
    tile reads the padded input itself at its strided positions, each with an address of its own, which beats
    splitting the input into phases in a pass of its own (stride 2, 16x32x32->32 and 32x16x16->64 at batch 64,
    one thread: 2.15-2.29 -> 1.50-1.58 ms, 1.81 -> 1.06-1.27 ms)."""
    return tuple(stride) if width <= lanes(itemsize) else (1, 1)


@functools.lru_cache(maxsize=64)
def _tap_offsets(weight_shape, stride, dilation, q_h, q_w):
    """The offset of each tap t = (c, kh, kw) of one group's C/groups input channels into its phase planes of
    q_h × q_w (see the module docstring). Remembered per geometry, as output_shifts (the kernels only read it)."""
    group_in, kernel_h, kernel_w = weight_shape[1:]
    tap_phase, tap_shift = tap_phases(kernel_h, kernel_w, stride, dilation, q_w)
    phases = stride[0] * stride[1]
    return ((np.arange(group_in)[:, None] * phases + tap_phase) * q_h * q_w + tap_shift).reshape(-1)


def _packed_weights(weight, groups, width, transposed, out=None, taps=None):
    """The weights packed for forward_tiles (packed[mb, t, l], module docstring, flat) by pack_weights, starting
    on a cache line (NumPy's arrays start on 16 bytes: 32x16x16->32 forward at batch 64, one thread, 2.08 -> 1.94
    ms). With `transposed`, the filter's 180° rotation transposed per group (what dL/dX convolves with). `taps`:
    the (kernel rows, kernel columns) of W to pack, in tap order; by default all of them, reversed when
    `transposed` (reversing a tap's rows and columns rotates it). Into `out` (flat, as long, aligned) when
    given."""
    kernel_h, kernel_w = weight.shape[2:]
    if taps is None:
        taps = (range(kernel_h - 1, -1, -1), range(kernel_w - 1, -1, -1)) if transposed else (range(kernel_h),
                                                                                              range(kernel_w))
    rows, columns = tuple(taps[0]), tuple(taps[1])
    if out is None:
        out = _aligned_empty(packed_size((*weight.shape[:2], len(rows), len(columns)), groups, width, transposed),
                             weight.dtype)
    pack_weights(np.ascontiguousarray(weight), _window_taps(kernel_w, rows, columns), groups, width, transposed, out)
    return out


@functools.lru_cache(maxsize=64)
def _window_taps(kernel_w, rows, columns):
    """Each tap's flat index r·K_w + c in its K_h × K_w window, for the kernel rows × columns given, in order.
    Remembered (the kernel only reads it), as output_shifts."""
    return (np.array(rows, np.int64)[:, None] * kernel_w + np.array(columns, np.int64)).reshape(-1)


def _pack_tasks(weight, window_taps, groups, width, transposed, out):
    return groups * -(-(weight.shape[1] if transposed else weight.shape[0] // groups) // width)


@parallel_kernel(tasks=_pack_tasks, elements=lambda weight, *rest: rest[-1].size)
def pack_weights(weight, window_taps, groups, width, transposed, out, start, stop):
    """out[((g·blocks + b)·T + t)·width + l] = W[g·M/groups + b·width + l, c, k_t] for tap t = (c, k) of group g's
    T = C/groups·|window_taps| (k_t = window_taps[k], a flat index into the K_h × K_w window), zero past the
    group's M/groups channels; a task is one block b of one group. With `transposed` the packed conv's output
    channels are W's input channels: output c = b·width + l of group g takes tap (m, k) = W[g·M/groups + m, c,
    window_taps[k]] (dL/dX's filter, straight from W). A whole block of all the window's taps in order goes in
    squares of one vector, transposed in registers (transpose_rows); other blocks one run of channels per tap.
    NumPy's copy through transposed views ran on one thread (2 threads, batch 32: 512x4x4->512 forward
    9.3-9.7 -> 8.6-8.9 ms, dL/dX 9.7-10.2 -> 9.0-9.6; 256x8x8->512 s2 forward 4.9-5.2 -> 4.7)."""
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    window, taps_per = kernel_h * kernel_w, window_taps.size
    group_out = out_channels // groups
    outputs, inputs = (group_in, group_out) if transposed else (group_out, group_in)
    taps, per_group = inputs * taps_per, -(-outputs // width)
    w = weight.reshape(weight.size)
    vector = VECTOR_BYTES // out.itemsize
    square = min(width, vector)  # half a vector for the half tile
    zero = out.dtype.type(0)
    in_order = taps_per == window
    for k in range(taps_per):
        in_order = in_order and window_taps[k] == k
    for task in range(start, stop):
        group, block = task // per_group, task % per_group
        channels = min(width, outputs - block * width)
        base = task * taps * width
        if not transposed and channels == width and in_order:  # rows of W are the taps in order
            first_row = (group * group_out + block * width) * taps  # W[block's first channel, 0, 0, 0]
            whole = taps - taps % square
            for t in range(0, whole, square):
                for lane in range(0, width, square):
                    transpose_rows(out, base + t * width + lane, width, w, first_row + lane * taps + t, taps,
                                   square < vector)
            for lane in range(width):
                copy_strided(out, base + whole * width + lane, width, w, first_row + lane * taps + whole, 1,
                             taps - whole)
            continue
        first = block * width  # of the packed conv's outputs in the group
        step = window if transposed else group_in * window  # from one of its channels to the next in W
        for i in range(inputs):
            corner = ((group * group_out + i) * group_in + first if transposed else
                      (group * group_out + first) * group_in + i) * window
            for k in range(taps_per):
                target = base + (i * taps_per + k) * width
                copy_strided(out, target, 1, w, corner + window_taps[k], step, channels)
                fill(out, target + channels, width - channels, zero)


def packed_size(weight_shape, groups, width, transposed):
    """The length of _packed_weights' array for a filter of `weight_shape`."""
    outputs = weight_shape[1] if transposed else weight_shape[0] // groups
    return groups * -(-outputs // width) * width * math.prod(weight_shape) // (groups * outputs)


def _aligned_empty(count, dtype):
    """An uninitialised flat array of `count` elements starting on a cache line (64 bytes)."""
    flat = np.empty(count + 64 // np.dtype(dtype).itemsize, dtype)
    skip = (-flat.ctypes.data % 64) // flat.itemsize
    return flat[skip:skip + count]


def forward(x, weight, bias, out, stride, padding, dilation, groups=1, transposed=False):
    """O = X ⋆ W + b into `out`: the packing in NumPy, the sums in forward_tiles, which pads each sample itself
    (x is read in place when it needs no padding and no split). With `transposed`, `weight` is the (M, C/groups,
    K_h, K_w) filter of a conv whose dL/dX this is, and the forward convolves with its rotation transposed per
    group ((C, M/groups, K_h, K_w): _packed_weights)."""
    width, geometry, sample_size, offsets, shifts, phases, chunks = _forward_plan(
        x.shape, weight.shape, out.shape, tuple(stride), tuple(padding), tuple(dilation), groups, transposed,
        x.itemsize)
    forward_tiles(x.reshape(-1), sample_size, _packed_weights(weight, groups, width, transposed),
                  np.zeros(out.shape[1], x.dtype) if bias is None else bias, out, offsets, shifts, phases, NO_TARGETS,
                  width, groups, chunks, geometry)


@functools.lru_cache(maxsize=64)
def _forward_plan(x_shape, weight_shape, out_shape, stride, padding, dilation, groups, transposed, itemsize):
    """What forward takes from the geometry alone: (tile width, geometry, sample size, offsets, shifts, phases,
    sample chunks). Remembered per geometry, as output_shifts (the kernel only reads it)."""
    if transposed:
        weight_shape = (groups * weight_shape[1], weight_shape[0] // groups, *weight_shape[2:])
    width = tile_width(weight_shape[0] // groups, itemsize, stride != (1, 1))
    split = planes_stride(width, stride, itemsize)
    geometry, sample_size, pitch = _geometry(x_shape, split, padding)
    offsets = _tap_offsets(weight_shape, split, dilation, int(geometry[8]), int(pitch))
    shifts = output_shifts(*out_shape[2:], pitch * (stride[0] // split[0]), stride[1] // split[1])
    plane = out_shape[2] * out_shape[3]
    phases = np.array([[0, offsets.size, 0, plane, -1, 0]], np.int64)
    return width, geometry, sample_size, offsets, shifts, phases, sample_chunks(plane, out_shape[0])


def _phase_taps(phase, stride, padding, dilation, kernel):
    """The taps k of one axis that reach the input positions i = S·a + phase, each with the shift d of the dL/dO
    position it comes from: i = o·S − P + k·D (the forward's rule) gives o = a + d for d = (phase + P − k·D)/S
    when S divides phase + P − k·D, and no o otherwise."""
    taps = [k for k in range(kernel) if (phase + padding - k * dilation) % stride == 0]
    return taps, [(phase + padding - k * dilation) // stride for k in taps]


def grad_input(grad_out, weight, grad_in, stride, padding, dilation, groups=1):
    """dL/dX at a stride S > 1 into `grad_in`, one input phase (positions (S·a + r_h, S·b + r_w)) at a time: the
    full convolution of dL/dO dilated by S meets the rotated filter at a phase's positions only through the taps
    _phase_taps finds, so each phase is a stride-1 sum of dL/dO itself over those taps, without the dilation's
    zeros (3×3 at stride 2: 1, 2, 2 and 4 taps per input channel of dL/dO against 9). forward_tiles sums every
    phase of a task (a row of `phases` each) into its output planes, each position at its place; a phase
    without taps is zero."""
    plan = _grad_input_plan(grad_out.shape, weight.shape, grad_in.shape[1:], tuple(stride), tuple(padding),
                            tuple(dilation), groups, grad_out.itemsize)
    geometry, sample_size, tile, empty_phases, taps_of_phases, weight_starts, size, tables, chunks = plan
    for r_h, r_w in empty_phases:
        grad_in[:, :, r_h::stride[0], r_w::stride[1]] = 0
    if not taps_of_phases:
        return
    packed = _aligned_empty(size, grad_out.dtype)
    ends = [*weight_starts[1:], size]
    for taps, first, last in zip(taps_of_phases, weight_starts, ends):
        _packed_weights(weight, groups, tile, True, packed[first:last], taps)
    offsets, shifts, phases, targets = tables
    forward_tiles(grad_out.reshape(-1), sample_size, packed, np.zeros(grad_in.shape[1], grad_out.dtype), grad_in,
                  offsets, shifts, phases, targets, tile, groups, chunks, geometry)


@functools.lru_cache(maxsize=64)
def _grad_input_plan(grad_shape, weight_shape, input_chw, stride, padding, dilation, groups, itemsize):
    """What grad_input's sums take from the geometry alone: (geometry, sample size, tile width, the phases
    without taps, each other phase's (rows, columns) of W, where its packed weights start, their total size,
    forward_tiles' (offsets, shifts, phases, targets), sample chunks). Remembered per geometry, as output_shifts
    (the kernels only read it): built anew, its tables cost a third of a small layer's dL/dX (32x16x16->64 s2 at
    batch 32: 0.29 of 1.14 ms)."""
    batch, out_channels, out_h, out_w = grad_shape
    channels, height, width = input_chw
    axes = [[_phase_taps(r, stride[i], padding[i], dilation[i], weight_shape[2 + i]) for r in range(stride[i])]
            for i in range(2)]
    counts = [[-(-(size - r) // stride[i]) for r in range(stride[i])] for i, size in enumerate((height, width))]
    pads = [max([0] + [max(-d, count - 1 + d - (size - 1)) for (_, shifts), count in zip(axes[i], counts[i])
                       for d in shifts]) for i, size in enumerate((out_h, out_w))]  # every phase reads inside
    geometry, sample_size, pitch = _geometry(grad_shape, (1, 1), tuple(pads))
    plane = int(geometry[8]) * pitch
    group_out = out_channels // groups
    tile = tile_width(channels // groups, itemsize)
    offsets, shifts, targets, taps_of_phases, counts_of_positions, empty_phases = [], [], [], [], [], []
    for r_h, ((taps_h, d_h), count_h) in enumerate(zip(axes[0], counts[0])):
        for r_w, ((taps_w, d_w), count_w) in enumerate(zip(axes[1], counts[1])):
            if count_h <= 0 or count_w <= 0:
                continue
            if not taps_h or not taps_w:
                empty_phases.append((r_h, r_w))
                continue
            taps_of_phases.append((tuple(taps_h), tuple(taps_w)))  # the phase's taps of W, in its offsets' order
            offsets.append((np.arange(group_out)[:, None, None] * plane + (np.array(d_h)[:, None] + pads[0]) * pitch
                            + np.array(d_w) + pads[1]).reshape(-1))
            shifts.append(output_shifts(count_h, count_w, pitch))
            targets.append(((r_h + stride[0] * np.arange(count_h))[:, None] * width + r_w
                            + stride[1] * np.arange(count_w)).reshape(-1))
            counts_of_positions.append(count_h * count_w)
    if not taps_of_phases:
        return geometry, sample_size, tile, tuple(empty_phases), (), (), 0, None, 0
    sizes = [packed_size((*weight_shape[:2], len(rows), len(columns)), groups, tile, True)
             for rows, columns in taps_of_phases]
    starts = [np.cumsum([0] + [len(a) for a in arrays[:-1]]) for arrays in (offsets, shifts, targets)]
    weight_starts = [int(start) for start in np.cumsum([0] + sizes[:-1])]
    phases = np.array([[tap, len(tap_offsets), shift, count, target, first] for tap, tap_offsets, shift, count, target,
                       first in zip(starts[0], offsets, starts[1], counts_of_positions, starts[2], weight_starts)],
                      np.int64)
    tables = (np.concatenate(offsets), np.concatenate(shifts), phases, np.concatenate(targets))
    return (geometry, sample_size, tile, tuple(empty_phases), tuple(taps_of_phases), tuple(weight_starts),
            sum(sizes), tables, sample_chunks(min(counts_of_positions), batch))


def sample_chunks(plane, batch):
    """How many runs of consecutive samples the batch is split into, a forward task taking one run for its block
    of output channels; the runs are as even as the batch allows (sizes differ by one at most) and hold enough
    samples for 256 positions (up to 8) each, so that a block's weights (all C·K² taps × the tile's channels:
    295 KB for 256x4x4->512) are read from the L2 cache for that many positions once they are there; one
    sample's 16 positions of a 4×4 plane used them twice per trip from memory. 256x4x4->512 at batch 32, 2
    threads: 5.2 -> 4.0 ms; 256x8x8->256 6.9 -> 6.6; at 16×16 and more, one sample a run. Runs of 5 samples and a
    last one of 3 (7×7 planes at batch 8) left one of two threads 5/8 of the work (512x7x7->512 at batch 8:
    forward 10.9-11.5 -> 9.8-10.0 ms, dL/dX 11.1-11.5 -> 9.9-10.1)."""
    samples = max(1, min(8, 256 // plane, batch))
    return -(-batch // samples)


PARTS = 4  # dL/dW sums each block's samples in this many parts, then adds the parts in order
TASKS = 4  # dL/dW's tasks at least (parts × sets of blocks) where the blocks allow
GROUP_BYTES = 1 << 16  # dL/dW sums the positions of samples together up to this much of dL/dO (it stays in cache)
PADDED_BYTES = 1 << 20  # dL/dW pads a group's input in a task when it is at most this large (in L2), else first


def _weight_tasks(planes, sample_size, grad_out, positions, shifts, out, groups, block_sets, geometry):
    return out.shape[0] * block_sets


@parallel_kernel(tasks=_weight_tasks)
def grad_weight_tiles(planes, sample_size, grad_out, positions, shifts, out, groups, block_sets, geometry, start,
                      stop):
    """out[part, block, l, tile, p] = Σ_n Σ_q dL/dO[n, m_l, q] · planes[n·sample_size + g·sample_size/groups +
    shifts[tile, p] + oh·pitch + ow] over the samples n of `part` and the output positions q = (oh, ow), m_l the
    l-th output channel of `block` and g its group (blocks/groups blocks per group): dL/dW of tile_positions(width)
    taps × one block of `width` output channels per tile, summed over the positions of a group of samples at
    once (positions[j·OH·OW + q] = j·sample_size + oh·pitch + ow for sample j of a group: only the outputs, none
    of the padding columns between them; tiles with the taps as the positions of register_tile, the output
    positions as its taps). A task is one part and one of `block_sets` runs of blocks: the part's samples in
    groups, for each group every tile of each of its blocks while the group's dL/dO and planes are in cache, so
    each sample is read once per task (tasks that split the taps instead each read the whole batch: twice the
    memory traffic on two threads). For each group the task pads the group's input planes once for all its
    blocks (_pad_sample, as in forward_tiles) and copies each block's dL/dO channel-blocked (_pack_grads), into
    scratch copies of its own: no pass over memory before it. A task per (part, block) padded each sample once
    per block (batch 64, 2 threads: 64x8x8->64 1.40 -> 1.21 ms, 32x16x16->64 s2 1.22 -> 1.02); padding the
    whole input first wrote it to memory and read it back, which grad_weight still does when a group's padded
    input would not fit in L2 (PADDED_BYTES: 512x4x4->512 at batch 32, 32 samples a group, 14.4 -> 10 ms).
    The parts are fixed by the batch, not by the thread count, so the sums are the same bits on any thread
    count. Each tile is stored channel-major (register_tile's transposed store), so `out` holds each output
    channel's taps in a row: the layout of dL/dW itself."""
    parts, blocks, width, tiles, pixels = out.shape
    batch, out_channels, out_h, out_w = grad_out.shape
    span = out_h * out_w
    group, per_group, group_out = positions.shape[0] // span, blocks // groups, out_channels // groups
    groups_of_samples = -(-batch // group)
    grad_flat, shifts_flat = grad_out.reshape(grad_out.size), shifts.reshape(shifts.size)
    out_flat = out.reshape(out.size)
    pitch = 2 * pixels  # channel-major, room for the store's padding positions
    acc = np.empty(width * pitch, out.dtype)
    packed = aligned_empty(group * span * width, out)
    vectors = width * out.itemsize // VECTOR_BYTES  # 0: the half tile
    fused = geometry[0] != 0
    padded = np.empty(group * sample_size if fused else 0, out.dtype)
    fill(padded, 0, padded.size, 0)  # the padding's zeros, written once (_pad_sample copies the rest)
    inputs = padded if fused else planes
    group_planes = geometry[1] // groups * geometry[4] * geometry[5]  # input planes of one group of channels
    for task in range(start, stop):
        part, block_set = task // block_sets, task % block_sets
        first_block, last_block = block_set * blocks // block_sets, (block_set + 1) * blocks // block_sets
        first_group, last_group = part * groups_of_samples // parts, (part + 1) * groups_of_samples // parts
        block_size = width * tiles * pixels
        fill(out_flat, (part * blocks + first_block) * block_size, (last_block - first_block) * block_size, 0)
        for n in range(first_group * group, min(batch, last_group * group), group):
            count = min(group, batch - n)
            if fused:  # the planes of every channel group its blocks read
                first_plane = first_block // per_group * group_planes
                last_plane = ((last_block - 1) // per_group + 1) * group_planes
                for j in range(count):
                    _pad_sample(planes, n + j, first_plane, last_plane, geometry, padded, j * sample_size)
            for block in range(first_block, last_block):
                corner = (part * blocks + block) * block_size  # out[part, block, 0, 0, 0]
                channel_group, in_group = block // per_group, block % per_group
                first_channel = channel_group * group_out + in_group * width
                _pack_grads(grad_flat, n, count, first_channel, min(width, group_out - in_group * width),
                            grad_out.shape, width, packed)
                source = (0 if fused else n * sample_size) + channel_group * (sample_size // groups)
                for tile in range(tiles):
                    tile_taps(acc, packed, 0, inputs, source, positions, count * span, shifts_flat, tile * pixels,
                              vectors, pitch)
                    for lane in range(width):
                        add_into(out_flat, corner + lane * tiles * pixels + tile * pixels, acc, lane * pitch, pixels)


PACK_RUN = 4096  # elements of packed dL/dO that _pack_grads fills one channel at a time (16 KiB of float32: L1)


@njit(cache=True, no_cfunc_wrapper=True)
def _pack_grads(grad_flat, n, count, first_channel, channels, shape, width, packed):
    """packed[(j·OH·OW + q)·width + l] = dL/dO[n + j, first_channel + l, q] for j < count, output position q and
    l < channels, zero for channels ≤ l < width: one block of dL/dO channel-blocked. A whole block goes in
    squares of one vector of channels × as many positions, transposed in registers (transpose_rows), the
    positions past the last square value by value. Storing one value per position and channel wrote each into
    a line of its own (batch 64, 2 threads, dL/dW: 16x32x32->16 1.42 -> 1.32 ms, 32x16x16->32 1.13 -> 1.01,
    3x32x32->16 0.57 -> 0.43, 256x4x4->512 10.1 -> 9.0). A partial block is written a run of rows at a time
    (PACK_RUN), one channel's part of the run after the other: each channel's rows are read whole while the
    packed run stays in L1 (gathering the channels of one position at a time read `width` planes in step,
    which, 4 KiB apart on 32×32, thrash the few L1 sets they share)."""
    out_channels, out_h, out_w = shape[1], shape[2], shape[3]
    plane = out_h * out_w
    vector = VECTOR_BYTES // packed.itemsize
    block = min(width, vector)  # half a vector for the half tile
    if channels == width:  # squares of block × block values transposed in registers, then the last positions
        whole = plane - plane % block
        for j in range(count):
            for q in range(0, whole, block):
                for first in range(0, width, block):
                    transpose_rows(packed, (j * plane + q) * width + first, width, grad_flat,
                                   ((n + j) * out_channels + first_channel + first) * plane + q, plane,
                                   block < vector)
            for lane in range(width):
                source = ((n + j) * out_channels + first_channel + lane) * plane + whole
                copy_strided(packed, (j * plane + whole) * width + lane, width, grad_flat, source, 1, plane - whole)
        return
    rows = max(1, min(out_h, PACK_RUN // (out_w * width)))
    zero = packed.dtype.type(0)
    for j in range(count):
        for first_row in range(0, out_h, rows):
            run = min(rows, out_h - first_row) * out_w
            start = (j * plane + first_row * out_w) * width
            for lane in range(width):
                source = ((n + j) * out_channels + first_channel + lane) * plane + first_row * out_w
                if lane < channels:
                    copy_strided(packed, start + lane, width, grad_flat, source, 1, run)
                else:
                    for q in range(run):
                        packed[start + q * width + lane] = zero


def grad_weight(x, grad_out, grad_w, stride, padding, dilation, groups=1):
    """dL/dW = X ⋆ dL/dO into `grad_w`: every tap t of group g as dW[m, t] = Σ_n,q dL/dO[n, m, q] · planes[n,
    g·sample_size/groups + offsets[t] + oh·pitch + ow] over the output positions q = (oh, ow), the planes X's
    zero-padded phase planes (grad_weight_tiles pads them and copies dL/dO channel-blocked)."""
    geometry, sample_size, positions, shifts, shape, block_sets, pad_first = _grad_weight_plan(
        x.shape, grad_out.shape, grad_w.shape, tuple(stride), tuple(padding), tuple(dilation), groups, x.itemsize)
    out = np.empty(shape, x.dtype)
    planes = x
    if pad_first:
        planes, geometry = phase_planes(x, stride, padding), geometry.copy()
        geometry[0] = 0  # read in place
    grad_weight_tiles(planes.reshape(-1), sample_size, grad_out, positions, shifts, out, groups, block_sets,
                      geometry)
    summed = out[0]
    for part in out[1:]:
        summed += part
    group_out = grad_w.shape[0] // groups
    by_channel = summed.reshape(groups, -1, shape[3] * shape[4])
    grad_w.reshape(groups, group_out, -1)[...] = by_channel[:, :group_out, :grad_w[0].size]


@functools.lru_cache(maxsize=64)
def _grad_weight_plan(x_shape, grad_shape, weight_shape, stride, padding, dilation, groups, itemsize):
    """What grad_weight takes from the geometry alone: (geometry, sample size, positions, shifts, the shape of
    grad_weight_tiles' `out`, block sets, whether the input is padded first). Remembered per geometry, as
    output_shifts (the kernel only reads it)."""
    batch, out_channels, out_h, out_w = grad_shape
    geometry, sample_size, pitch = _geometry(x_shape, stride, padding)
    offsets = _tap_offsets(weight_shape, stride, dilation, int(geometry[8]), int(pitch))
    width = tile_width(out_channels // groups, itemsize)
    pixels = tile_positions(width, itemsize)
    blocks = groups * -(-(out_channels // groups) // width)
    tiles = -(-offsets.size // pixels)
    shifts = np.zeros(tiles * pixels, np.int64)  # the taps past the last are tap 0 again, and dropped
    shifts[:offsets.size] = offsets
    group = max(1, min(batch, GROUP_BYTES // (out_h * out_w * width * itemsize)))
    parts = min(PARTS, -(-batch // group))
    on_planes = plane_positions(out_h, out_w, int(pitch))  # oh·pitch + ow
    positions = (np.arange(group)[:, None] * sample_size + on_planes).reshape(-1)
    block_sets = max(1, min(blocks, -(-TASKS // parts)))
    pad_first = bool(geometry[0]) and group * sample_size * itemsize > PADDED_BYTES
    return geometry, sample_size, positions, shifts, (parts, blocks, width, tiles, pixels), block_sets, pad_first
