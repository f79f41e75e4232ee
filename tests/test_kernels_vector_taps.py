"""The depthwise kernels' register-level building blocks on their own, against NumPy: transpose_block, the
channels-last moves built on it (conv_depthwise.move_block), and strip_taps' sums."""
import numpy as np
from hypothesis import given, settings, strategies as st
from numba import njit

from tinygrad_cnn.ops.kernels.conv_depthwise import BLOCK, move_block
from tinygrad_cnn.ops.kernels.vector_taps import LANES, strip_outputs, strip_taps, transpose_block, vector_elements

DTYPES = st.sampled_from([np.float32, np.float64])


@njit
def _transpose(dst, dst_at, dst_step, src, src_at, src_step):
    transpose_block(dst, dst_at, dst_step, src, src_at, src_step)


@njit
def _strip(acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets, count):
    strip_taps(acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets, count)


@settings(max_examples=30, deadline=None)
@given(DTYPES, st.integers(0, 7), st.integers(0, 7), st.integers(0, 5), st.integers(0, 5))
def test_transpose_block_moves_element_r_c_to_c_r(dtype, src_at, dst_at, src_gap, dst_gap):
    width = vector_elements(np.dtype(dtype).itemsize)
    src_step, dst_step = width + src_gap, width + dst_gap
    src = np.random.default_rng(src_at).standard_normal(src_at + width * src_step).astype(dtype)
    dst = np.full(dst_at + width * dst_step, -1.0, dtype)
    _transpose(dst, dst_at, dst_step, src, src_at, src_step)
    expected = np.full_like(dst, -1.0)
    rows = np.lib.stride_tricks.as_strided(src[src_at:], (width, width), (src_step * src.itemsize, src.itemsize))
    for c in range(width):
        expected[dst_at + c * dst_step: dst_at + c * dst_step + width] = rows[:, c]
    np.testing.assert_array_equal(dst, expected)


@settings(max_examples=40, deadline=None)
@given(DTYPES, st.integers(1, BLOCK), st.integers(1, 3), st.integers(0, 3), st.integers(1, 6), st.integers(1, 40),
       st.integers(0, 2), st.integers(0, 2), st.integers(0, 2**16))
def test_move_block_round_trip_against_numpy(dtype, count, step, plane, height, width, pad_h, pad_w, seed):
    """Into the zero-padded channels-last buffer and back: whole transposed blocks, partial ones at the row's end
    and in the last planes, and the padding left untouched."""
    planes = plane + (count - 1) * step + 1
    flat = np.random.default_rng(seed).standard_normal(planes * height * width).astype(dtype)
    pitch = width + 2 * pad_w
    buf = np.zeros((height + 2 * pad_h) * pitch * BLOCK, dtype)
    move_block(flat, plane, step, count, height, width, buf, pitch, pad_h, pad_w, True)
    chosen = flat.reshape(planes, height, width)[plane::step][:count]
    expected = np.zeros((height + 2 * pad_h, pitch, BLOCK), dtype)
    expected[pad_h:pad_h + height, pad_w:pad_w + width, :count] = chosen.transpose(1, 2, 0)
    np.testing.assert_array_equal(buf, expected.reshape(-1))

    back = np.zeros_like(flat)
    move_block(back, plane, step, count, height, width, buf, pitch, pad_h, pad_w, False)
    expected_back = np.zeros((planes, height, width), dtype)
    expected_back[plane::step][:count] = chosen
    np.testing.assert_array_equal(back.reshape(planes, height, width), expected_back)


@settings(max_examples=30, deadline=None)
@given(DTYPES, st.integers(0, 6), st.integers(0, 2), st.lists(st.integers(0, 5), min_size=4, max_size=4),
       st.integers(0, 2**16))
def test_strip_taps_sums_against_numpy(dtype, count, init_step_lanes, shift_lanes, seed):
    """acc[o] = init[o·init_step] + Σ_s a[s] · b[shifts[o] + offsets[s]], LANES wide, for every sum of the strip."""
    rng = np.random.default_rng(seed)
    outputs = strip_outputs(np.dtype(dtype).itemsize)
    offsets = rng.integers(0, 6, count) * LANES
    shifts = np.array(shift_lanes[:outputs], np.int64) * LANES
    a = rng.standard_normal(max(count, 1) * LANES).astype(dtype)
    b = rng.standard_normal(12 * LANES).astype(dtype)
    init = rng.standard_normal((outputs * init_step_lanes + 1) * LANES).astype(dtype)
    acc = np.full((outputs + 1) * LANES, 7.0, dtype)
    _strip(acc, LANES, LANES, init, 0, init_step_lanes * LANES, a, 0, b, 0, shifts, offsets, count)
    expected = np.full_like(acc, 7.0)
    for o in range(outputs):
        total = init[o * init_step_lanes * LANES: o * init_step_lanes * LANES + LANES].astype(np.float64)
        for s in range(count):
            start = shifts[o] + offsets[s]
            total = total + a[s * LANES:(s + 1) * LANES].astype(np.float64) * b[start:start + LANES]
        expected[(o + 1) * LANES:(o + 2) * LANES] = total
    np.testing.assert_allclose(acc, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
