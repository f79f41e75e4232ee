"""Batch norm's fused kernels and Function: the kernels on plain arrays against the NumPy reference over random
shapes (run whole and split), float32 layers against a float64 reference over several steps (output, every gradient,
running statistics), and gradcheck in float64 through x, weight and bias in training and evaluation."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.ops.kernels import batch_norm as kernels

from launching import run_split, run_whole
from reference import batch_norm_reference, batch_norm_reference_grads

SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 13))  # (N, C, L)
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def build(kernel, split):
    """The kernel run whole on this thread, or split into three parts (on the worker threads)."""
    return functools.partial(run_split if split else run_whole, kernel)


@settings(max_examples=30, deadline=None)
@given(SHAPES, st.sampled_from([np.float32, np.float64]), st.booleans(), st.integers(0, 2 ** 16))
def test_training_kernels_match_reference(shape, dtype, split, seed):
    n, c, length = shape
    if n * length < 2:
        return  # one value per channel has no variance: the layer refuses it before any kernel runs
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    weight, bias = rng.uniform(0.5, 2, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    out, mean, var = np.empty_like(x), np.empty(c), np.empty(c)
    build(kernels.train_forward, split)(x, weight, bias, 1e-5, out, mean, var, np.empty((c, 2), dtype))
    wide = x.astype(np.float64)
    expected, expected_mean, unbiased = batch_norm_reference(wide, weight.astype(np.float64), bias, 1e-5)
    np.testing.assert_allclose(out, expected, **TOLERANCE[dtype])
    np.testing.assert_allclose(mean, expected_mean, **TOLERANCE[dtype])
    np.testing.assert_allclose(var * (n * length) / (n * length - 1), unbiased, **TOLERANCE[dtype])

    g = rng.standard_normal(shape).astype(dtype)
    grad_x, grad_weight, grad_bias = np.empty_like(x), np.empty(c), np.empty(c)
    build(kernels.backward, split)(g, x, mean, 1 / np.sqrt(var + 1e-5), weight, True, grad_x, grad_weight,
                                      grad_bias, np.empty((c, 4), dtype))
    ref_x, ref_weight, ref_bias = batch_norm_reference_grads(wide, weight.astype(np.float64), 1e-5, g)
    np.testing.assert_allclose(grad_x, ref_x, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad_weight, ref_weight, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad_bias, ref_bias, **TOLERANCE[dtype])


@pytest.mark.parametrize("offset", [1e3, -4e4])
def test_the_one_pass_variance_holds_far_from_zero(offset):
    """The sums run on x shifted by a value of its channel, so a mean far from 0 costs no digits of σ²: it is
    as exact as float32 sums of the shifted values make it (unshifted, Σx²/M − μ² would lose every digit here)."""
    rng = np.random.default_rng(3)
    x = (offset + rng.standard_normal((8, 3, 50)) * np.array([0.01, 1.0, 5.0])[:, None]).astype(np.float32)
    out, mean, var = np.empty_like(x), np.empty(3), np.empty(3)
    run_whole(kernels.train_forward, x, np.ones(3, np.float32), np.zeros(3, np.float32), 1e-5, out, mean, var,
              np.empty((3, 2), np.float32))
    wide = x.astype(np.float64)
    np.testing.assert_allclose(mean, wide.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(var, wide.var(axis=(0, 2)), rtol=1e-6)


@pytest.mark.parametrize("big,dtype", [(9.48e153, np.float64), (8.99e307, np.float64), (2e19, np.float32),
                                       (3e38, np.float32)])
def test_statistics_whose_shifted_squares_overflow_come_from_two_passes(big, dtype):
    """Values more than about 1e154 apart (1e19 in float32, whose partial sums are float32) overflow the
    shifted squares; such a channel's statistics are summed again in two passes in float64, as NumPy's mean
    and var (and the output as the reference's, zeros where σ² is inf)."""
    x = np.array([[[big, 0.0, 0.0]], [[1.0, 2.0, 3.0]]]).transpose(1, 0, 2).reshape(1, 2, 3).astype(dtype)
    out, mean, var = np.empty_like(x), np.empty(2), np.empty(2)
    run_whole(kernels.train_forward, x, np.ones(2, dtype), np.zeros(2, dtype), 1e-5, out, mean, var,
              np.empty((2, 2), dtype))
    wide = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        expected_mean, expected_var = wide.mean(axis=(0, 2)), wide.var(axis=(0, 2))
        expected = (wide - expected_mean[None, :, None]) / np.sqrt(expected_var[None, :, None] + 1e-5)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(var, expected_var, rtol=1e-12)
    np.testing.assert_allclose(out, expected, **TOLERANCE[dtype])


@settings(max_examples=20, deadline=None)
@given(SHAPES, st.sampled_from([np.float32, np.float64]), st.booleans(), st.integers(0, 2 ** 16))
def test_evaluation_kernels_match_reference(shape, dtype, split, seed):
    """Running statistics are constants: y = (x − μ)·invstd·γ + β, dL/dx = γ·invstd·g, dL/dγ = Σ g·x̂, dL/dβ = Σ g."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    x, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    weight, bias = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    mean, invstd = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    view = (1, c, 1)
    out = np.empty_like(x)
    build(kernels.affine, split)(x, np.stack([mean, weight * invstd], axis=1).astype(dtype), bias.astype(dtype), out)
    x_hat = (x.astype(np.float64) - mean.reshape(view)) * invstd.reshape(view)
    np.testing.assert_allclose(out, x_hat * weight.reshape(view) + bias.reshape(view), **TOLERANCE[dtype])
    grad_x, grad_weight, grad_bias = np.empty_like(x), np.empty(c), np.empty(c)
    build(kernels.backward, split)(g, x, mean, invstd, weight.astype(dtype), False, grad_x, grad_weight, grad_bias,
                                      np.empty((c, 4), dtype))
    np.testing.assert_allclose(grad_x, g * (weight * invstd).reshape(view), **TOLERANCE[dtype])
    np.testing.assert_allclose(grad_weight, (g * x_hat).sum(axis=(0, 2)), **TOLERANCE[dtype])
    np.testing.assert_allclose(grad_bias, g.astype(np.float64).sum(axis=(0, 2)), **TOLERANCE[dtype])


@pytest.mark.parametrize("layer_type,shape", [(nn.BatchNorm1d, (16, 4)), (nn.BatchNorm1d, (8, 4, 7)),
                                              (nn.BatchNorm2d, (8, 4, 5, 6))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_float32_layer_matches_float64_reference_over_steps(layer_type, shape, momentum):
    rng = np.random.default_rng(20)
    layer = layer_type(4, momentum=momentum)
    with tc.no_grad():
        layer.weight.copy_(rng.uniform(0.5, 2, 4).astype(np.float32))
        layer.bias.copy_(rng.standard_normal(4).astype(np.float32))
    weight, bias = layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)
    running_mean, running_var = np.zeros(4), np.ones(4)
    for step in range(1, 5):
        x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
        inp = tc.tensor(x, requires_grad=True)
        out = layer(inp)
        g = rng.standard_normal(shape).astype(np.float32)
        out.backward(g)
        assert out.dtype == np.float32 and inp.grad.dtype == np.float32 and layer.weight.grad.dtype == np.float32
        expected, mean, unbiased = batch_norm_reference(x.astype(np.float64), weight, bias, 1e-5)
        ref_x, ref_weight, ref_bias = batch_norm_reference_grads(x.astype(np.float64), weight, 1e-5, g)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(inp.grad.numpy(), ref_x, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.weight.grad.numpy(), ref_weight, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.bias.grad.numpy(), ref_bias, rtol=1e-4, atol=1e-4)
        layer.zero_grad()
        m = 1 / step if momentum is None else momentum
        running_mean = (1 - m) * running_mean + m * mean
        running_var = (1 - m) * running_var + m * unbiased
        np.testing.assert_allclose(layer.running_mean.numpy(), running_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.running_var.numpy(), running_var, rtol=1e-5)
        assert layer.num_batches_tracked.item() == step
    assert layer.running_mean.dtype == np.float32 and layer.running_var.dtype == np.float32


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 2, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_through_x_weight_and_bias(shape, training):
    rng = np.random.default_rng(21)
    c = shape[1]
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    inputs = [tc.tensor(rng.standard_normal(shape), requires_grad=True),
              tc.tensor(rng.uniform(0.5, 2, c), requires_grad=True), tc.tensor(rng.standard_normal(c), requires_grad=True)]
    # fresh copies per call: training updates the running statistics in place, the finite differences call often
    assert tc.gradcheck(lambda x, w, b: F.batch_norm(x, running_mean.copy(), running_var.copy(), w, b,
                                                     training=training), inputs)


def test_gradcheck_without_affine_and_on_a_non_contiguous_input():
    rng = np.random.default_rng(22)
    layer = nn.BatchNorm2d(3, affine=False).double()
    x = tc.tensor(rng.standard_normal((4, 5, 3, 2)).transpose(0, 2, 1, 3), requires_grad=True)  # (4, 3, 5, 2), strided
    assert not x.numpy().flags.c_contiguous
    assert tc.gradcheck(lambda inp: layer(inp), [x])
    expected, _, _ = batch_norm_reference(x.numpy(), np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_constant_channel_normalises_to_its_bias_exactly(dtype):
    """(x − μ)·a + β, not x·a + (β − μ·a): the latter leaves the rounding of a large μ·a behind."""
    x = np.full((4, 2, 3), 38.0, dtype)
    x[:, 1] = -1234.5
    out = F.batch_norm(tc.tensor(x), None, None, tc.tensor(np.array([2.0, 3.0], dtype)), tc.tensor(np.array([0.0, 0.5], dtype)),
                       training=True).numpy()
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_array_equal(out[:, 1], 0.5)


def test_without_running_stats_training_and_evaluation_both_use_the_batch():
    rng = np.random.default_rng(23)
    layer = nn.BatchNorm1d(3, track_running_stats=False)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    trained = layer(tc.tensor(x)).numpy()
    evaluated = layer.eval()(tc.tensor(x)).numpy()
    expected, _, _ = batch_norm_reference(x.astype(np.float64), np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(trained, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(evaluated, expected, rtol=1e-5, atol=1e-6)
    assert layer.num_batches_tracked is None
