"""The elementwise kernels on plain arrays against NumPy rules over random sizes and dtypes (zeros, negative
values and NaN included; sizes past SMALL_PASS, split over the threads in runs with a partial last one): ReLU
and its gradient, the sum of two arrays, dropout's mask against the documented draws (tests/reference.py);
Dropout's gradient; ReLU and Add through autograd."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tinygrad_cnn as tc
from reference import dropout_uniform_reference
from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.elementwise import Dropout, ReLU
from tinygrad_cnn.ops.kernels.elementwise import RUN, add, dropout, relu_backward, relu_forward
from tinygrad_cnn.runtime import SMALL_PASS

SIZES = st.one_of(st.integers(0, 300), st.integers(SMALL_PASS - 3, SMALL_PASS + 2 * RUN + 3))


@settings(max_examples=40, deadline=None)
@given(SIZES, st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16))
def test_relu_forward_is_the_maximum_with_zero_keeping_nan(size, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size).astype(dtype)
    x[rng.random(size) < 0.1] = np.nan
    x[rng.random(size) < 0.1] = 0.0
    out = np.empty_like(x)
    relu_forward(x, dtype(0), out)
    np.testing.assert_array_equal(out, np.where(np.isnan(x), x, np.where(x > 0, x, 0)))


@settings(max_examples=40, deadline=None)
@given(SIZES, st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16))
def test_relu_backward_keeps_the_gradient_where_the_output_is_positive(size, dtype, seed):
    rng = np.random.default_rng(seed)
    out = np.maximum(rng.standard_normal(size), 0).astype(dtype)
    out[rng.random(size) < 0.1] = np.nan  # a NaN input has a NaN output and no gradient, as x > 0 is False
    grad = rng.standard_normal(size).astype(dtype)
    grad_in = np.empty_like(grad)
    relu_backward(grad, out, dtype(0), grad_in)
    expected = np.where(out > 0, grad, 0)
    np.testing.assert_array_equal(grad_in, expected)


@settings(max_examples=20, deadline=None)
@given(SIZES, st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16))
def test_add_is_numpys_sum_bit_for_bit(size, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    a[rng.random(size) < 0.05] = np.inf
    out = np.empty_like(a)
    add(a, b, out)
    np.testing.assert_array_equal(out, a + b)


def test_tensor_sum_of_large_activations_through_the_kernel_and_its_gradient():
    """Add takes the kernel for two C-contiguous float arrays of one shape from SMALL_PASS elements on, NumPy
    otherwise (broadcasting, mixed dtypes); the value is a + b either way, each gradient the incoming one."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16, 64, 65)).astype(np.float32)
    y = rng.standard_normal((4, 16, 64, 65)).astype(np.float32)
    a, b = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
    out = a + b
    np.testing.assert_array_equal(out.numpy(), x + y)
    out.backward(np.ones_like(x))
    np.testing.assert_array_equal(a.grad.numpy(), np.ones_like(x))
    np.testing.assert_array_equal((a + Tensor(y[0])).numpy(), x + y[0])
    assert (a + Tensor(y.astype(np.float64))).dtype == np.float64


@settings(max_examples=15, deadline=None)
@given(SIZES, st.sampled_from([np.float32, np.float64]), st.floats(0, 1), st.integers(0, 2 ** 63 - 1))
def test_dropout_keeps_the_elements_whose_draw_reaches_p_and_scales_them(size, dtype, p, seed):
    x = np.random.default_rng(seed % 1000).standard_normal(size).astype(dtype)
    scale = dtype(0.0 if p == 1 else 1 / (1 - p))
    out = np.empty_like(x)
    dropout(x, np.uint64(seed), p, scale, out)
    keep = dropout_uniform_reference(np.uint64(seed), size) >= p
    np.testing.assert_array_equal(out, np.where(keep, x * scale, 0).astype(dtype))


def test_dropout_function_gradcheck_and_its_backward_mask_is_the_forwards():
    """With its seed fixed, Dropout is a fixed linear map: gradcheck in float64, and in float32 the gradient is
    the incoming one through the forward's mask, scaled by 1/(1 − p)."""
    x = tc.tensor(np.random.default_rng(3).standard_normal((3, 5, 7)), requires_grad=True)
    assert tc.gradcheck(lambda t: Dropout.apply(t, 0.4, 12345), [x])
    y = tc.tensor(np.random.default_rng(4).standard_normal((64, 700)).astype(np.float32), requires_grad=True)
    out = Dropout.apply(y, 0.25, 99)
    g = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    kept = out.numpy() != 0
    assert 0.74 < kept.mean() < 0.76  # 44 800 draws: standard error 0.002
    np.testing.assert_array_equal(y.grad.numpy(), np.where(kept, g * np.float32(1 / 0.75), 0))


def test_relu_on_strided_input_and_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    x[0, 0, 0] = 0.0  # the gradient at 0 is 0
    inp = Tensor(x.transpose(2, 0, 1), requires_grad=True)
    out = inp.relu()
    g = rng.standard_normal((6, 4, 5)).astype(np.float32).transpose(2, 1, 0)  # (5, 4, 6), strided
    out.backward(g)
    np.testing.assert_array_equal(out.numpy(), np.maximum(x.transpose(2, 0, 1), 0))
    np.testing.assert_array_equal(inp.grad.numpy(), np.where(x.transpose(2, 0, 1) > 0, g, 0))


@settings(max_examples=20, deadline=None)
@given(st.integers(-3, 3), st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16))
def test_relu_gives_the_same_bits_below_and_from_the_kernels_size(offset, dtype, seed):
    """Below ReLU.KERNEL_FROM elements the op calls np.maximum, from it the kernel: -0 becomes +0, NaN stays."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(ReLU.KERNEL_FROM + offset).astype(dtype)
    x[rng.random(x.size) < 0.1] = np.nan
    x[rng.random(x.size) < 0.1] = -0.0
    out = Tensor(x, dtype=dtype).relu().numpy()
    expected = np.where(np.isnan(x), x, np.where(x > 0, x, 0))
    np.testing.assert_array_equal(out, expected)
    assert not np.signbit(out[~np.isnan(out)]).any()


def test_dropout_drops_an_infinite_or_nan_element_to_nan_as_x_times_the_mask():
    """PyTorch's dropout is x·mask·scale, so a dropped inf or NaN becomes NaN (inf·0) and a dropped -2 becomes -0."""
    x = np.array([np.inf, -np.inf, np.nan, -2.0, 3.0], np.float32)
    out = np.empty_like(x)
    dropout(x, np.uint64(7), 1.0, np.float32(0), out)  # p = 1: every draw is below it
    np.testing.assert_array_equal(out, x * np.float32(0))
    assert np.signbit(out[3])
