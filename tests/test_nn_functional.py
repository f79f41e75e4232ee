"""nn.functional: losses against NumPy references (forward and backward), gradcheck in float64, stability,
argument errors; the layer functions (linear, activations, one_hot)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn import functional as F


def rng_for(seed=0):
    return np.random.default_rng(seed)


def log_softmax_reference(z, axis):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def target_distribution(target, classes, axis, smoothing):
    """q = (1 − ε)·onehot + ε/C with the class axis at `axis`."""
    onehot = np.moveaxis(np.eye(classes)[target], -1, axis)
    return (1 - smoothing) * onehot + smoothing / classes


def reduce_reference(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


def reduction_gradient(loss_shape, upstream, reduction):
    """dL_reduced/dloss_i for an upstream gradient of the reduced loss."""
    if reduction == "none":
        return upstream
    scale = 1.0 / np.prod(loss_shape) if reduction == "mean" else 1.0
    return np.broadcast_to(upstream * scale, loss_shape)


CLASS_SHAPES = [((6, 5), (6,)), ((3, 4, 2, 3), (3, 2, 3)), ((5,), ())]


@pytest.mark.parametrize("shape,target_shape", CLASS_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_reference_forward_and_backward(shape, target_shape, reduction, smoothing):
    rng = rng_for(1)
    axis = 1 if len(shape) >= 2 else 0
    classes = shape[axis]
    logits = rng.standard_normal(shape) * 3
    target = rng.integers(0, classes, target_shape)
    q = target_distribution(target, classes, axis, smoothing)
    log_probs = log_softmax_reference(logits, axis)
    expected = reduce_reference(-(q * log_probs).sum(axis=axis), reduction)

    z = tc.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, target, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(np.shape(expected))
    loss.backward(upstream)
    per_sample = reduction_gradient(target_shape, upstream, reduction)
    expected_grad = (np.exp(log_probs) - q) * np.expand_dims(per_sample, axis)
    np.testing.assert_allclose(z.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,target_shape", CLASS_SHAPES)
def test_cross_entropy_gradcheck(shape, target_shape):
    rng = rng_for(2)
    target = rng.integers(0, shape[1 if len(shape) >= 2 else 0], target_shape)
    z = tc.tensor(rng.standard_normal(shape), requires_grad=True)
    assert tc.gradcheck(lambda t: F.cross_entropy(t, target, reduction="none", label_smoothing=0.1), [z])
    assert tc.gradcheck(lambda t: F.cross_entropy(t, target), [z])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = tc.tensor(np.array([[1000.0, -1000.0, 0.0], [-1e4, 1e4, 1e4]], np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 2]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, np.log(2)], atol=1e-6)
    loss.sum().backward()
    assert np.isfinite(logits.grad.numpy()).all()
    np.testing.assert_allclose(logits.grad.numpy(), [[0, 0, 0], [0, 0.5, -0.5]], atol=1e-6)


def test_cross_entropy_keeps_float32_and_takes_tensor_targets():
    logits = tc.tensor(rng_for(3).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    target = tc.tensor(np.array([0, 2, 1, 1]))
    loss = F.cross_entropy(logits, target)
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert logits.grad.dtype == np.float32


def test_cross_entropy_equals_nll_of_log_softmax():
    rng = rng_for(4)
    logits, target = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    fused = F.cross_entropy(tc.tensor(logits), target).item()
    composed = F.nll_loss(F.log_softmax(tc.tensor(logits), dim=1), target).item()
    assert fused == pytest.approx(composed, rel=1e-12)


def test_cross_entropy_with_full_smoothing_is_the_mean_negative_log_probability():
    logits = rng_for(5).standard_normal((3, 4))
    loss = F.cross_entropy(tc.tensor(logits), np.array([0, 1, 2]), reduction="none", label_smoothing=1.0)
    np.testing.assert_allclose(loss.numpy(), -log_softmax_reference(logits, 1).mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("target,error,match", [
    (np.array([0.0, 1.0]), TypeError, "integer class indices"),
    (np.array([0, 1, 2]), ValueError, r"target of shape \(2,\)"),
    (np.array([0, 3]), ValueError, r"\[0, 3\)"),
    (np.array([-1, 0]), ValueError, r"\[0, 3\)"),
])
def test_cross_entropy_rejects_bad_targets(target, error, match):
    with pytest.raises(error, match=match):
        F.cross_entropy(tc.tensor(np.zeros((2, 3))), target)


def test_losses_reject_unknown_reduction_and_smoothing():
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(tc.tensor(np.zeros((2, 3))), np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(tc.tensor(np.zeros((2, 3))), np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(tc.tensor(np.zeros(2)), np.zeros(2), reduction="max")


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 6), classes=st.integers(1, 6), seed=st.integers(0, 2**31),
       smoothing=st.sampled_from([0.0, 0.05, 0.5]))
def test_cross_entropy_property_against_reference(batch, classes, seed, smoothing):
    rng = rng_for(seed)
    logits = rng.standard_normal((batch, classes)) * 10
    target = rng.integers(0, classes, batch)
    q = target_distribution(target, classes, 1, smoothing)
    expected = -(q * log_softmax_reference(logits, 1)).sum(axis=1).mean()
    assert F.cross_entropy(tc.tensor(logits), target, label_smoothing=smoothing).item() == pytest.approx(expected, rel=1e-9,
                                                                                                      abs=1e-12)


@pytest.mark.parametrize("shape,target_shape", CLASS_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_reference(shape, target_shape, reduction):
    rng = rng_for(6)
    axis = 1 if len(shape) >= 2 else 0
    log_probs = log_softmax_reference(rng.standard_normal(shape), axis)
    target = rng.integers(0, shape[axis], target_shape)
    onehot = target_distribution(target, shape[axis], axis, 0.0)
    expected = reduce_reference(-(onehot * log_probs).sum(axis=axis), reduction)
    x = tc.tensor(log_probs, requires_grad=True)
    loss = F.nll_loss(x, tc.tensor(target), reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    upstream = rng.standard_normal(np.shape(expected))
    loss.backward(upstream)
    expected_grad = -onehot * np.expand_dims(reduction_gradient(target_shape, upstream, reduction), axis)
    np.testing.assert_allclose(x.grad.numpy(), expected_grad, rtol=1e-12)
    assert tc.gradcheck(lambda t: F.nll_loss(t, target, reduction=reduction), [tc.tensor(log_probs, requires_grad=True)])


def test_nll_loss_repeated_targets_accumulate_separately_per_sample():
    x = tc.tensor(np.zeros((3, 2)), requires_grad=True)
    F.nll_loss(x, np.array([1, 1, 0]), reduction="sum").backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, -1], [0, -1], [-1, 0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_reference(reduction):
    rng = rng_for(7)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x, y = tc.tensor(a, requires_grad=True), tc.tensor(b, requires_grad=True)
    loss = F.mse_loss(x, y, reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), reduce_reference((a - b) ** 2, reduction), rtol=1e-12)
    upstream = rng.standard_normal(loss.shape)
    loss.backward(upstream)
    expected = 2 * (a - b) * reduction_gradient(a.shape, upstream, reduction)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), -expected, rtol=1e-12)


def test_mse_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        F.mse_loss(tc.tensor(np.zeros(3)), np.zeros((3, 1)))


def bce_reference(x, y):
    p = 1 / (1 + np.exp(-x))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_reference(reduction):
    rng = rng_for(8)
    a, b = rng.standard_normal((5, 2)) * 3, rng.uniform(0, 1, (5, 2))
    x, y = tc.tensor(a, requires_grad=True), tc.tensor(b, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), reduce_reference(bce_reference(a, b), reduction), rtol=1e-10)
    upstream = rng.standard_normal(loss.shape)
    loss.backward(upstream)
    g = reduction_gradient(a.shape, upstream, reduction)
    np.testing.assert_allclose(x.grad.numpy(), (1 / (1 + np.exp(-a)) - b) * g, rtol=1e-10)
    np.testing.assert_allclose(y.grad.numpy(), -a * g, rtol=1e-10)
    assert tc.gradcheck(lambda s, t: F.binary_cross_entropy_with_logits(s, t, reduction=reduction),
                        [tc.tensor(a, requires_grad=True), tc.tensor(b, requires_grad=True)])


def test_bce_with_logits_is_stable_and_exact_at_zero():
    x = tc.tensor(np.array([-200.0, 0.0, 200.0], np.float32), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 0.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [200.0, np.log(2), 200.0], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 0.5, 1.0], atol=1e-6)  # σ(x) − y, including at x = 0


# ---- layer functions ----------------------------------------------------------------------------
def test_linear_matches_reference_and_checks_shapes():
    rng = rng_for(9)
    a, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    np.testing.assert_allclose(F.linear(tc.tensor(a), tc.tensor(w), tc.tensor(b)).numpy(), a @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(F.linear(tc.tensor(a), tc.tensor(w)).numpy(), a @ w.T, rtol=1e-12)
    with pytest.raises(ValueError, match=r"linear.*\(2, 3, 4\).*\(4, 5\)"):
        F.linear(tc.tensor(a), tc.tensor(w.T))


def test_activation_functions_match_numpy():
    a = rng_for(10).standard_normal((3, 4))
    x = tc.tensor(a)
    np.testing.assert_allclose(F.relu(x).numpy(), np.maximum(a, 0))
    np.testing.assert_allclose(F.leaky_relu(x, 0.2).numpy(), np.where(a > 0, a, 0.2 * a))
    np.testing.assert_allclose(F.sigmoid(x).numpy(), 1 / (1 + np.exp(-a)), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(x).numpy(), np.tanh(a), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(x, dim=0).numpy(), np.exp(a) / np.exp(a).sum(0), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, dim=1).numpy(), log_softmax_reference(a, 1), rtol=1e-12)


def test_one_hot():
    out = F.one_hot(np.array([[0, 2], [1, 0]]), num_classes=4)
    assert out.dtype == np.int64 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out.numpy()[0, 1], [0, 0, 1, 0])
    assert F.one_hot(tc.tensor(np.array([3, 1]))).shape == (2, 4)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        F.one_hot(np.array([2]), num_classes=2)
    with pytest.raises(TypeError):
        F.one_hot(np.array([1.0]))


def test_batch_norm_function_updates_array_running_stats_in_place():
    rng = rng_for(11)
    x = rng.standard_normal((6, 2, 3))
    running_mean, running_var = np.zeros(2), np.ones(2)
    out = F.batch_norm(tc.tensor(x), running_mean, running_var, training=True, momentum=0.5, eps=0.0)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    np.testing.assert_allclose(out.numpy(), (x - mean[:, None]) / np.sqrt(var[:, None]), rtol=1e-12)
    np.testing.assert_allclose(running_mean, 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.5 + 0.5 * var * 18 / 17, rtol=1e-12)
    evaluated = F.batch_norm(tc.tensor(x), running_mean, running_var, eps=0.0)
    np.testing.assert_allclose(evaluated.numpy(), (x - running_mean[:, None]) / np.sqrt(running_var[:, None]),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(tc.tensor(x), None, None)
