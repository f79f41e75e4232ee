"""max_pool2d, avg_pool2d and adaptive_avg_pool2d through their Functions: gradcheck in float64, stride
defaults and the errors for bad arguments."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from reference import max_pool2d_reference
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn.functional import adaptive_avg_pool2d, avg_pool2d, max_pool2d


def _input(shape, seed=0):
    # distinct values, so that no max-pool window has a tie that a finite difference could flip
    rng = np.random.default_rng(seed)
    values = rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) + rng.uniform(0, 1e-3, shape)
    return tc.tensor(values, requires_grad=True)


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1)), (1, 1, 0)])
def test_max_pool_gradcheck(kernel, stride, padding):
    assert tc.gradcheck(lambda x: max_pool2d(x, kernel, stride, padding), (_input((2, 2, 7, 6)),))


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1))])
def test_avg_pool_gradcheck(kernel, stride, padding):
    assert tc.gradcheck(lambda x: avg_pool2d(x, kernel, stride, padding), (_input((2, 2, 7, 6)),))


@pytest.mark.parametrize("output_size", [1, (3, 2), (7, 6), (4, None), (9, 8)])
def test_adaptive_avg_pool_gradcheck(output_size):
    assert tc.gradcheck(lambda x: adaptive_avg_pool2d(x, output_size), (_input((2, 2, 7, 6)),))


def test_stride_defaults_to_the_kernel_size():
    x = _input((1, 1, 6, 6))
    assert max_pool2d(x, 3).shape == (1, 1, 2, 2) and avg_pool2d(x, (2, 3)).shape == (1, 1, 3, 2)


def test_max_pool_matches_reference_in_float32():
    x = tc.tensor(np.random.default_rng(1).standard_normal((3, 2, 9, 8)), dtype=np.float32, requires_grad=True)
    out = max_pool2d(x, 3, 2, 1)
    expected, grad_reference = max_pool2d_reference(x.numpy(), 3, 2, 1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), expected)
    grad = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    out.backward(tc.tensor(grad))
    np.testing.assert_allclose(x.grad.numpy(), grad_reference(grad), rtol=1e-6)


def test_global_average_pooling():
    x = tc.tensor(np.random.default_rng(3).standard_normal((2, 3, 5, 4)))
    np.testing.assert_allclose(adaptive_avg_pool2d(x, 1).numpy(), x.numpy().mean(axis=(2, 3), keepdims=True))


def test_non_contiguous_input():
    data = np.random.default_rng(4).standard_normal((2, 2, 6, 4))
    view = tc.tensor(np.ascontiguousarray(data.transpose(0, 1, 3, 2))).permute(0, 1, 3, 2)
    np.testing.assert_array_equal(max_pool2d(view, 2).numpy(), max_pool2d(tc.tensor(data), 2).numpy())


@pytest.mark.parametrize("call, message", [
    (lambda x: max_pool2d(x[0], 2), "max_pool2d: expected a 4-D input"),
    (lambda x: max_pool2d(x, 7), "larger than the padded input"),
    (lambda x: avg_pool2d(x, 2, 0), "at least 1"),
    (lambda x: avg_pool2d(x, 2, 1, 2), "half the kernel size"),
    (lambda x: max_pool2d(x, 3, 1, -1), "half the kernel size"),
    (lambda x: adaptive_avg_pool2d(x, (0, 2)), "output_size must be at least 1"),
    (lambda x: max_pool2d(x.astype(np.int64), 2), "int64"),
])
def test_bad_arguments_raise_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(tc.tensor(np.ones((1, 2, 5, 5))))
