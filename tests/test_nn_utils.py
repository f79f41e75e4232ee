"""nn.utils.clip_grad_norm_: the joint norm, the scaling, and what it returns."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn.utils import clip_grad_norm_


def params_with_grads(*grads):
    params = []
    for g in grads:
        p = tc.tensor(np.zeros_like(g), requires_grad=True)
        p.grad = tc.tensor(np.array(g))
        params.append(p)
    return params


def test_clips_to_max_norm_and_returns_the_norm_before_clipping():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    params = params_with_grads(*grads)
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    norm = clip_grad_norm_(params, max_norm=1.0)
    assert norm.item() == pytest.approx(total)
    scale = 1.0 / (total + 1e-6)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-12)
    new_total = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params))
    assert new_total == pytest.approx(1.0, rel=1e-5)


def test_leaves_small_gradients_alone_and_skips_missing_ones():
    params = params_with_grads(np.array([0.3, 0.4]))
    params.append(tc.tensor(np.zeros(2), requires_grad=True))  # no grad
    assert clip_grad_norm_(params, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), [0.3, 0.4])


def test_other_norms_and_a_single_tensor():
    p = params_with_grads(np.array([3.0, -4.0]))[0]
    assert clip_grad_norm_(p, 10.0, norm_type=1).item() == pytest.approx(7.0)
    assert clip_grad_norm_(p, 2.0, norm_type=float("inf")).item() == pytest.approx(4.0)
    np.testing.assert_allclose(p.grad.numpy(), np.array([3.0, -4.0]) * 2 / (4 + 1e-6))


def test_no_gradients_gives_zero():
    assert clip_grad_norm_([tc.tensor(np.zeros(2), requires_grad=True)], 1.0).item() == 0.0


def test_clip_grad_value_clamps_each_element_in_place():
    from tinygrad_cnn.nn.utils import clip_grad_value_
    grads = [np.array([[-3.0, 0.5], [2.0, -0.2]]), np.array([0.9, -1.1])]
    params = params_with_grads(*grads)
    arrays = [p.grad.numpy() for p in params]
    clip_grad_value_(params + [tc.tensor(np.zeros(2), requires_grad=True)], 1.0)  # one without a gradient
    for p, array, g in zip(params, arrays, grads):
        assert p.grad.numpy() is array
        np.testing.assert_array_equal(array, np.minimum(np.maximum(g, -1.0), 1.0))
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0, got -1"):
        clip_grad_value_(params, -1)
