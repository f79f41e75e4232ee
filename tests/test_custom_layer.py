"""The user-layer template (examples/custom_layer.py): its hand-written backward passes gradcheck."""
import functools
import os
import sys

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from custom_layer import PReLU, PReLUFunction, prelu_backward_kernel, prelu_forward_kernel  # noqa: E402
from launching import run_split, run_whole  # noqa: E402


def test_prelu_function_gradcheck():
    rng = np.random.default_rng(0)
    x = tc.tensor(rng.standard_normal((3, 2, 4, 5)), requires_grad=True)
    slope = tc.tensor(rng.uniform(0.1, 0.5, 2), requires_grad=True)
    assert tc.gradcheck(PReLUFunction.apply, (x, slope))


def test_prelu_module_forward_and_learnable_slope():
    layer = PReLU(2, init=0.5)
    x = tc.tensor(np.array([[[1.0, -2.0]], [[-4.0, 3.0]]])[None], dtype=np.float32)  # (1, 2, 1, 2)
    y = layer(x)
    np.testing.assert_array_equal(y.numpy(), [[[[1.0, -1.0]], [[-2.0, 3.0]]]])
    grad = np.array([[[[0.5, 2.0]], [[-1.5, 1.0]]]], np.float32)
    y.backward(tc.tensor(grad))
    # dL/da[c] = Σ over x ≤ 0 of dL/dy · x: channel 0 → 2·(−2) = −4; channel 1 → −1.5·(−4) = 6
    np.testing.assert_array_equal(layer.weight.grad.numpy(), [-4.0, 6.0])
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_prelu_module_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"PReLU: expected input \(N, 3, ...\)"):
        PReLU(3)(tc.tensor(np.ones((1, 2, 4))))


def test_prelu_kernels_give_the_same_numbers_whole_and_split():
    """The example's kernels are `parallel_kernel` launches: run whole on one thread or split into parts, and
    through the launch path (a pass of SMALL_PASS elements or more splits), the numbers are the same."""
    from tinygrad_cnn.runtime import SMALL_PASS
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4, SMALL_PASS // 32)).astype(np.float32)
    slope = rng.uniform(0.1, 0.5, 4).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    forward = [np.empty_like(x) for _ in range(3)]
    backward = [(np.empty_like(x), np.empty_like(slope)) for _ in range(3)]
    for run, out, (grad_x, grad_slope) in zip((run_whole, functools.partial(run_split, parts=3),
                                              lambda kernel, *args: kernel(*args)), forward, backward):
        run(prelu_forward_kernel, x, slope, out)
        run(prelu_backward_kernel, x, slope, grad, grad_x, grad_slope)
    np.testing.assert_array_equal(forward[0], np.where(x > 0, x, slope[:, None] * x))
    for out, (grad_x, grad_slope) in zip(forward[1:], backward[1:]):
        np.testing.assert_array_equal(out, forward[0])
        np.testing.assert_array_equal(grad_x, backward[0][0])
        np.testing.assert_array_equal(grad_slope, backward[0][1])  # a channel's sum runs in one order in every case
