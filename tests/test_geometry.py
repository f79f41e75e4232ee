"""The shape arithmetic of windowed ops (ops/kernels/geometry.py) against brute-force counts."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygrad_cnn.ops.kernels.geometry import conv2d_output_size, kernel_span, output_hw, pair, same_padding, \
    valid_range


def _windows(size, kernel, stride, padding, dilation):
    """The start positions of the windows whose every tap lies inside the padded input, counted one by one."""
    span = (kernel - 1) * dilation + 1
    return [start for start in range(0, size + 2 * padding, stride) if start + span <= size + 2 * padding]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
def test_output_size_counts_the_windows_that_fit(size, kernel, stride, padding, dilation):
    windows = _windows(size, kernel, stride, padding, dilation)
    size_rule = conv2d_output_size(size, kernel, stride, padding, dilation)
    assert size_rule == len(windows) if windows else size_rule < 1  # below 1: the wrappers refuse the layer


def test_output_hw_and_kernel_span():
    assert kernel_span(3) == 3 and kernel_span(3, 2) == 5 and kernel_span(1, 4) == 1
    assert output_hw((28, 20), (5, 3), (1, 2), (2, 0)) == (28, 9)
    assert output_hw((9, 9), (3, 3), (1, 1), (0, 0), (2, 4)) == (5, 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(1, 7), st.integers(1, 3))
def test_same_padding_keeps_the_size_with_the_odd_row_at_the_end(size, kernel, dilation):
    padding, extra = same_padding(kernel, dilation)
    assert 0 <= extra <= 1 and 2 * padding + extra == dilation * (kernel - 1)
    assert conv2d_output_size(size + extra, kernel, 1, padding, dilation) == size


def test_pair_accepts_ints_and_pairs_and_names_the_op_otherwise():
    assert pair(3, "stride", "op") == (3, 3)
    assert pair([2, np.int64(1)], "stride", "op") == (2, 1)
    assert all(type(v) is int for v in pair(np.int32(2), "stride", "op"))
    for bad in (1.5, (1, 2, 3), (True, 1), "2", None, (1, 2.0)):
        with pytest.raises(TypeError, match=r"conv2d: padding must be an int or a pair of ints, got"):
            pair(bad, "padding", "conv2d")


@settings(max_examples=200, deadline=None)
@given(st.integers(-8, 8), st.integers(1, 4), st.integers(0, 10), st.integers(0, 12))
def test_valid_range_is_the_outputs_whose_input_lies_inside(offset, stride, out_size, in_size):
    inside = [o for o in range(out_size) if 0 <= o * stride + offset < in_size]
    lo, hi = valid_range(offset, stride, out_size, in_size)
    assert list(range(lo, hi)) == inside and 0 <= lo <= hi <= out_size
