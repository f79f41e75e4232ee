"""The user-layer template (examples/custom_layer.py): its hand-written backward passes gradcheck."""
import os
import sys

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from custom_layer import PReLU, PReLUFunction  # noqa: E402


def test_prelu_function_gradcheck():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 2, 4, 5)), requires_grad=True)
    slope = Tensor(rng.uniform(0.1, 0.5, 2), requires_grad=True)
    assert tc.gradcheck(PReLUFunction.apply, (x, slope))


def test_prelu_module_forward_and_learnable_slope():
    layer = PReLU(2, init=0.5)
    x = Tensor(np.array([[[1.0, -2.0]], [[-4.0, 3.0]]])[None], dtype=np.float32)  # (1, 2, 1, 2)
    y = layer(x)
    np.testing.assert_array_equal(y.numpy(), [[[[1.0, -1.0]], [[-2.0, 3.0]]]])
    grad = np.array([[[[0.5, 2.0]], [[-1.5, 1.0]]]], np.float32)
    y.backward(Tensor(grad))
    # dL/da[c] = Σ over x ≤ 0 of dL/dy · x: channel 0 → 2·(−2) = −4; channel 1 → −1.5·(−4) = 6
    np.testing.assert_array_equal(layer.weight.grad.numpy(), [-4.0, 6.0])
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_prelu_module_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"PReLU: expected input \(N, 3, ...\)"):
        PReLU(3)(Tensor(np.ones((1, 2, 4))))
