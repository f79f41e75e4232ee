"""The elementwise kernels on plain arrays: ReLU and its gradient against the NumPy rule over random shapes and dtypes (zeros, negative
values and NaN included; sizes past SMALL_PASS, split over the threads in runs with a partial last one), and
ReLU through autograd on strided input and gradient."""
import numpy as np
from hypothesis import given, settings, strategies as st

from tinygrad_cnn import Tensor
from tinygrad_cnn.ops.kernels.elementwise import RUN, add, relu_backward, relu_forward
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
