"""The inner loops the conv and pool kernels are built from: strided copies and multiply-adds, tap
correlations and fills, on flat arrays. Compiled without a C callback wrapper, as the kernels
(runtime.launch.parallel_kernel)."""
import numpy as np
from numba import njit


@njit(cache=True, no_cfunc_wrapper=True)
def copy_strided(dst, dst_start, dst_step, src, src_start, src_step, count):
    """dst[dst_start + k·dst_step] = src[src_start + k·src_step] for k < count, on flat arrays.

    Unsigned indices throughout these helpers: with signed ones Numba adds a negative-index wraparound test to
    every access, which stops LLVM from vectorising the loop.
    """
    d, d_step = np.uint64(dst_start), np.uint64(dst_step)
    s, s_step = np.uint64(src_start), np.uint64(src_step)
    for k in range(np.uint64(count)):
        dst[d + k * d_step] = src[s + k * s_step]


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def copy(dst, dst_start, src, src_start, count):
    """dst[dst_start + k] = src[src_start + k] for k < count, on flat arrays (a contiguous run: it vectorises)."""
    d, s = np.uint64(dst_start), np.uint64(src_start)
    for k in range(np.uint64(count)):
        dst[d + k] = src[s + k]


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def copy_plus(dst, dst_start, src, src_start, count, value):
    """dst[dst_start + k] = src[src_start + k] + value for k < count, on flat arrays (a contiguous run: it
    vectorises)."""
    d, s = np.uint64(dst_start), np.uint64(src_start)
    for k in range(np.uint64(count)):
        dst[d + k] = src[s + k] + value


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def scatter_plus(dst, dst_start, targets, targets_start, src, src_start, count, value):
    """dst[dst_start + targets[targets_start + k]] = src[src_start + k] + value for k < count, on flat arrays."""
    d, t, s = np.uint64(dst_start), np.uint64(targets_start), np.uint64(src_start)
    for k in range(np.uint64(count)):
        dst[d + np.uint64(targets[t + k])] = src[s + k] + value


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def add_into(dst, dst_start, src, src_start, count):
    """dst[dst_start + k] += src[src_start + k] for k < count, on flat arrays (a contiguous run: it vectorises)."""
    d, s = np.uint64(dst_start), np.uint64(src_start)
    for k in range(np.uint64(count)):
        dst[d + k] += src[s + k]


@njit(cache=True, no_cfunc_wrapper=True, inline="always", fastmath={"contract"})
def axpy_strided(dst, dst_start, dst_step, src, src_start, src_step, count, alpha):
    """dst[dst_start + k·dst_step] += alpha · src[src_start + k·src_step] for k < count, on flat arrays."""
    d, d_step = np.uint64(dst_start), np.uint64(dst_step)
    s, s_step = np.uint64(src_start), np.uint64(src_step)
    for k in range(np.uint64(count)):
        dst[d + k * d_step] += alpha * src[s + k * s_step]


@njit(cache=True, no_cfunc_wrapper=True, fastmath={"contract"})
def accumulate_taps(acc, count, src, base, offsets, weights):
    """acc[k] += Σ_t weights[t] · src[base + offsets[t] + k] for k < count: a correlation over a list of taps
    (offsets into a flat plane). Four taps per pass, so acc is loaded and stored once per four multiply-adds;
    pad the tap lists with zero weights to a multiple of four."""
    n = np.uint64(count)
    for t in range(0, offsets.shape[0], 4):
        o0, o1 = np.uint64(base + offsets[t]), np.uint64(base + offsets[t + 1])
        o2, o3 = np.uint64(base + offsets[t + 2]), np.uint64(base + offsets[t + 3])
        w0, w1, w2, w3 = weights[t], weights[t + 1], weights[t + 2], weights[t + 3]
        for k in range(n):
            acc[k] += w0 * src[o0 + k] + w1 * src[o1 + k] + w2 * src[o2 + k] + w3 * src[o3 + k]


@njit(cache=True, no_cfunc_wrapper=True, fastmath={"contract"})
def accumulate_taps_4rows(acc, count, src, base, offsets, weights, first_row):
    """`accumulate_taps` for four rows at once: acc[r·count + k] += Σ_t weights[first_row + r, t] · src[base +
    offsets[t] + k], r < 4. Each loaded src value feeds four rows (16 multiply-adds per 4 src loads and
    4 acc loads/stores, against 4 per 4 + 1)."""
    n = np.uint64(count)
    n2, n3 = n + n, n + n + n
    for t in range(0, offsets.shape[0], 4):
        o0, o1 = np.uint64(base + offsets[t]), np.uint64(base + offsets[t + 1])
        o2, o3 = np.uint64(base + offsets[t + 2]), np.uint64(base + offsets[t + 3])
        w = weights[first_row:first_row + 4, t:t + 4]
        w00, w01, w02, w03 = w[0, 0], w[0, 1], w[0, 2], w[0, 3]
        w10, w11, w12, w13 = w[1, 0], w[1, 1], w[1, 2], w[1, 3]
        w20, w21, w22, w23 = w[2, 0], w[2, 1], w[2, 2], w[2, 3]
        w30, w31, w32, w33 = w[3, 0], w[3, 1], w[3, 2], w[3, 3]
        for k in range(n):
            s0, s1, s2, s3 = src[o0 + k], src[o1 + k], src[o2 + k], src[o3 + k]
            acc[k] += w00 * s0 + w01 * s1 + w02 * s2 + w03 * s3
            acc[n + k] += w10 * s0 + w11 * s1 + w12 * s2 + w13 * s3
            acc[n2 + k] += w20 * s0 + w21 * s1 + w22 * s2 + w23 * s3
            acc[n3 + k] += w30 * s0 + w31 * s1 + w32 * s2 + w33 * s3


@njit(cache=True, no_cfunc_wrapper=True, fastmath={"contract"})
def accumulate_taps_2rows(acc, other_acc, count, src, base, offsets, weights, row, other_row):
    """`accumulate_taps` for two rows of `weights` at once, each into an accumulator of its own (8 multiply-adds per
    4 src loads and 2 acc loads/stores, against 4 per 4 + 1): the channels left over after the blocks of four of
    `accumulate_taps_4rows`. A lone row passes itself twice and a spare accumulator, so that a conv kernel
    compiles no one-row loop beside this one."""
    n = np.uint64(count)
    first, second = weights[row], weights[other_row]
    for t in range(0, offsets.shape[0], 4):
        o0, o1 = np.uint64(base + offsets[t]), np.uint64(base + offsets[t + 1])
        o2, o3 = np.uint64(base + offsets[t + 2]), np.uint64(base + offsets[t + 3])
        w00, w01, w02, w03 = first[t], first[t + 1], first[t + 2], first[t + 3]
        w10, w11, w12, w13 = second[t], second[t + 1], second[t + 2], second[t + 3]
        for k in range(n):
            s0, s1, s2, s3 = src[o0 + k], src[o1 + k], src[o2 + k], src[o3 + k]
            acc[k] += w00 * s0 + w01 * s1 + w02 * s2 + w03 * s3
            other_acc[k] += w10 * s0 + w11 * s1 + w12 * s2 + w13 * s3


@njit(cache=True, no_cfunc_wrapper=True, fastmath={"reassoc", "contract"})
def correlate_taps(totals, src, base, offsets, other, other_start, count):
    """totals[t] += Σ_k src[base + offsets[t] + k] · other[other_start + k] for every tap t, four taps per pass
    so each element of `other` is loaded once per four products (reassoc lets the sums vectorise)."""
    n, b = np.uint64(count), np.uint64(other_start)
    for t in range(0, offsets.shape[0], 4):
        o0, o1 = np.uint64(base + offsets[t]), np.uint64(base + offsets[t + 1])
        o2, o3 = np.uint64(base + offsets[t + 2]), np.uint64(base + offsets[t + 3])
        s0 = s1 = s2 = s3 = totals.dtype.type(0)
        for k in range(n):
            g = other[b + k]
            s0 += src[o0 + k] * g
            s1 += src[o1 + k] * g
            s2 += src[o2 + k] * g
            s3 += src[o3 + k] * g
        totals[t] += s0
        totals[t + 1] += s1
        totals[t + 2] += s2
        totals[t + 3] += s3


@njit(cache=True, no_cfunc_wrapper=True, fastmath={"reassoc", "contract"})
def correlate_taps_2rows(totals, other_totals, src, base, offsets, other, first_start, second_start, count):
    """`correlate_taps` for two rows of `other` at once, each into totals of its own: totals[t] += Σ_k src[base +
    offsets[t] + k] · other[first_start + k], other_totals[t] likewise from second_start, so each loaded src
    value feeds two products (8 per 4 src and 2 other loads). A lone row passes its start twice and spare
    totals (no one-row loop to compile beside this one)."""
    n, b0, b1 = np.uint64(count), np.uint64(first_start), np.uint64(second_start)
    for t in range(0, offsets.shape[0], 4):
        o0, o1 = np.uint64(base + offsets[t]), np.uint64(base + offsets[t + 1])
        o2, o3 = np.uint64(base + offsets[t + 2]), np.uint64(base + offsets[t + 3])
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = totals.dtype.type(0)
        for k in range(n):
            g0, g1 = other[b0 + k], other[b1 + k]
            x0, x1, x2, x3 = src[o0 + k], src[o1 + k], src[o2 + k], src[o3 + k]
            s00 += x0 * g0
            s01 += x1 * g0
            s02 += x2 * g0
            s03 += x3 * g0
            s10 += x0 * g1
            s11 += x1 * g1
            s12 += x2 * g1
            s13 += x3 * g1
        totals[t] += s00
        totals[t + 1] += s01
        totals[t + 2] += s02
        totals[t + 3] += s03
        other_totals[t] += s10
        other_totals[t + 1] += s11
        other_totals[t + 2] += s12
        other_totals[t + 3] += s13


@njit(cache=True, no_cfunc_wrapper=True, fastmath={"reassoc"})
def sum_range(a, start, count, total):
    """total + Σ_k a[start + k] on a flat array."""
    first = np.uint64(start)
    for k in range(np.uint64(count)):
        total += a[first + k]
    return total


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def aligned_empty(count, like):
    """An uninitialised flat array of `count` elements of like's dtype starting on a 64-byte boundary (a cache
    line): a vector load that spans two lines costs two, and Numba's own arrays start on 32 bytes."""
    spare = 64 // like.itemsize
    buffer = np.empty(count + spare, like.dtype)
    skip = (-buffer.ctypes.data % 64) // like.itemsize
    return buffer[skip:skip + count]


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def fill(dst, start, count, value):
    """dst[start : start + count] = value on a flat array."""
    first = np.uint64(start)
    for k in range(np.uint64(count)):
        dst[first + k] = value
