"""Pool kernels alone, on plain arrays: forward and backward against the window-by-window reference, the
tie-breaking rule of max-pooling, and padding semantics (−∞ for max, counted zeros for average)."""
import numpy as np
import pytest

from reference import adaptive_avg_pool2d_reference, avg_pool2d_reference, max_pool2d_reference
from tinygrad_cnn.ops.kernels.pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward,
                                           avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                                           max_pool2d_forward)

# (batch, channels, H, W, kernel, stride, padding)
GRID = [
    (1, 1, 4, 4, (2, 2), (2, 2), (0, 0)),    # the usual 2×2
    (7, 3, 6, 5, (2, 2), (2, 2), (0, 0)),    # batch 7, odd width: the last column is dropped
    (2, 2, 7, 7, (3, 3), (2, 2), (1, 1)),    # overlapping windows with padding
    (2, 2, 7, 6, (3, 2), (1, 2), (1, 1)),    # rectangular kernel, stride and input
    (1, 3, 9, 9, (3, 3), (3, 3), (0, 0)),    # stride 3
    (2, 1, 5, 8, (5, 4), (1, 1), (2, 2)),    # large windows, padding 2
    (2, 2, 3, 3, (1, 1), (1, 1), (0, 0)),    # identity
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GRID, ids=str)
def test_max_pool_matches_reference(case, dtype):
    batch, channels, height, width, kernel, stride, padding = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    expected, reference_grad = max_pool2d_reference(x, kernel, stride, padding)
    out, winners = max_pool2d_forward(x, kernel, stride, padding)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(max_pool2d_backward(grad_out, winners, x.shape), reference_grad(grad_out),
                               rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GRID, ids=str)
def test_avg_pool_matches_reference(case, dtype):
    batch, channels, height, width, kernel, stride, padding = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    expected, reference_grad = avg_pool2d_reference(x, kernel, stride, padding)
    out = avg_pool2d_forward(x, kernel, stride, padding)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(avg_pool2d_backward(grad_out, x.shape, kernel, stride, padding),
                               reference_grad(grad_out), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, output_size", [((2, 3, 7, 5), (3, 2)), ((1, 2, 6, 6), (1, 1)),
                                                ((2, 1, 5, 4), (5, 4)), ((1, 2, 3, 5), (4, 7)),
                                                ((7, 1, 10, 9), (4, 3))], ids=str)
def test_adaptive_avg_pool_matches_reference(shape, output_size, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    expected, reference_grad = adaptive_avg_pool2d_reference(x, output_size)
    out = adaptive_avg_pool2d_forward(x, output_size)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(adaptive_avg_pool2d_backward(grad_out, shape), reference_grad(grad_out),
                               rtol=1e-5, atol=1e-6)


def test_adaptive_bins_follow_pytorch():
    """Bins [floor(i·H/out), ceil((i+1)·H/out)): for H = 5 and out = 3 the rows are {0,1}, {1,2,3}, {3,4}."""
    x = np.arange(5.0)[None, None, :, None]
    out = adaptive_avg_pool2d_forward(x, (3, 1))
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 2.0, 3.5])


def test_max_pool_ties_go_to_first_maximum_in_row_major_order():
    """Every window is all equal: PyTorch's rule gives the whole gradient to the window's top-left cell."""
    x = np.full((1, 1, 4, 4), 3.0)
    out, winners = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    grad_out = np.array([[[[1.5, -2.0], [0.25, 4.0]]]])
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, ::2, ::2] = grad_out[0, 0]
    np.testing.assert_array_equal(max_pool2d_backward(grad_out, winners, x.shape), expected)


def test_max_pool_tie_in_a_row_then_in_a_column():
    """Row-major order: in [[1, 5], [5, 5]] the winner is the 5 in the first row."""
    x = np.array([[1.0, 5.0], [5.0, 5.0]])[None, None]
    _, winners = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    grad = max_pool2d_backward(np.array([[[[0.7]]]]), winners, x.shape)
    np.testing.assert_array_equal(grad[0, 0], [[0, 0.7], [0, 0]])


def test_max_pool_overlapping_windows_accumulate_on_a_shared_winner():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0
    out, winners = max_pool2d_forward(x, (2, 2), (1, 1), (0, 0))
    grad_out = np.array([[[[0.5, -1.0], [2.0, 0.25]]]])
    grad = max_pool2d_backward(grad_out, winners, x.shape)
    assert grad[0, 0, 1, 1] == pytest.approx(1.75) and np.count_nonzero(grad) == 1


def test_max_pool_padding_counts_as_minus_infinity():
    """All inputs negative: a padded zero must never win."""
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    out, _ = max_pool2d_forward(x, (2, 2), (2, 2), (1, 1))
    np.testing.assert_array_equal(out[0, 0], [[-1, -2], [-4, -5]])


def test_max_pool_propagates_nan_like_pytorch():
    x = np.array([[1.0, np.nan], [3.0, 2.0]])[None, None]
    out, _ = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(out).all()


def test_avg_pool_counts_padding_zeros():
    """PyTorch's count_include_pad=True: a corner window of a 2×2 kernel with padding 1 sees one input value."""
    x = np.full((1, 1, 2, 2), 4.0)
    out = avg_pool2d_forward(x, (2, 2), (2, 2), (1, 1))
    np.testing.assert_array_equal(out[0, 0], [[1.0, 1.0], [1.0, 1.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_written_out_2x2_max_pool_agrees_with_the_general_loop(dtype):
    """2×2 at stride 2 runs its own kernel; the general one must give the same maxima and winners, NaNs (the
    first of a window), ties, −∞ windows and an odd edge included."""
    from tinygrad_cnn.ops.kernels.pool import _max_pool_forward, _max_pool_forward_2x2
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (40, 9, 7)).astype(dtype)   # few distinct values: many ties
    x[0, 0, 1] = x[1, 3, 3] = x[2, 4, 4] = x[2, 4, 5] = x[3, 5, 0] = x[3, 4, 1] = np.nan  # NaN in 4 windows
    x[4, :4, :4] = -np.inf
    out_2x2, winners_2x2 = np.empty((40, 4, 3), dtype), np.empty((40, 4, 3), np.int32)
    out, winners = np.empty_like(out_2x2), np.empty_like(winners_2x2)
    _max_pool_forward_2x2(x, out_2x2, winners_2x2)
    _max_pool_forward(x, 2, 2, 2, 2, 0, 0, out, winners)
    np.testing.assert_array_equal(out_2x2, out)
    np.testing.assert_array_equal(winners_2x2, winners)
    assert np.isnan(out[[0, 1, 2, 3]]).sum() == 4 and winners_2x2[3, 2, 0] == 4 * 7 + 1  # (4, 1) before (5, 0)


@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)), ((3, 2), (2, 1), (1, 1))])
def test_parallel_and_serial_builds_agree(kernel, stride, padding, monkeypatch):
    """Small pools run the kernels' serial builds (the launch path's SMALL_PASS rule); with the threshold at zero,
    the parallel builds give the same arrays, forward and backward."""
    from tinygrad_cnn.runtime import launch
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 9, 8))

    def run():
        out, winners = max_pool2d_forward(x, kernel, stride, padding)
        grad = rng.standard_normal(out.shape)
        average = avg_pool2d_forward(x, kernel, stride, padding)
        adaptive = adaptive_avg_pool2d_forward(x, (3, 2))
        return (out, winners, max_pool2d_backward(grad, winners, x.shape), average,
                avg_pool2d_backward(grad, x.shape, kernel, stride, padding), adaptive,
                adaptive_avg_pool2d_backward(rng.standard_normal(adaptive.shape), x.shape))

    serial = run()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 9, 8))
    monkeypatch.setattr(launch, "SMALL_PASS", 0)
    for ours, theirs in zip(run(), serial):
        np.testing.assert_array_equal(ours, theirs)
