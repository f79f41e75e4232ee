"""Layers against NumPy references (forward and backward with random upstream gradients), gradcheck in float64
through each layer with its parameters, PyTorch's default initialisation, BatchNorm statistics, Dropout."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn

from reference import (dropout_uniform_reference, adaptive_avg_pool2d_reference, avg_pool2d_reference, batch_norm_reference,
                       batch_norm_reference_grads, conv2d_reference, conv2d_reference_grads, max_pool2d_reference)


def run(layer, array, seed=0):
    """Forward `array` through `layer`, backpropagate a random upstream gradient; (output, upstream, input grad)."""
    x = tc.tensor(array, requires_grad=True)
    out = layer(x)
    upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    return out.numpy(), upstream, x.grad.numpy()


def gradcheck_layer(layer, x):
    """gradcheck through the layer with respect to its input and every parameter (all float64)."""
    params = list(layer.parameters())
    return tc.gradcheck(lambda inp, *ps: layer(inp), [tc.tensor(x, requires_grad=True), *params])


# ---- Linear -------------------------------------------------------------------------------------
def test_linear_forward_backward_match_reference():
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3).double()
    x = rng.standard_normal((5, 4))
    w, b = layer.weight.numpy(), layer.bias.numpy()
    out, g, grad_x = run(layer, x)
    np.testing.assert_allclose(out, x @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(grad_x, g @ w, rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), g.sum(0), rtol=1e-12)
    assert gradcheck_layer(layer, x)


def test_linear_without_bias_and_on_extra_leading_axes():
    layer = nn.Linear(4, 2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(tc.tensor(x)).numpy(), x @ layer.weight.numpy().T, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4), (0, 4), (3, 1, 4)])
def test_linear_gradients_on_any_leading_axes_match_numpy_in_float32(shape):
    """Rows are every vector of the last axis: dX = g·W, dW = Σ gᵀ·X and db = Σ g over all of them."""
    rng = np.random.default_rng(2)
    layer = nn.Linear(4, 3)
    x = rng.standard_normal(shape).astype(np.float32)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    out, g, grad_x = run(layer, x)
    rows, grad_rows = x.reshape(-1, 4), g.reshape(-1, 3)
    np.testing.assert_allclose(out, x @ w.T + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_x, g @ w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.weight.grad.numpy(), grad_rows.T @ rows, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.bias.grad.numpy(), grad_rows.sum(0), rtol=1e-5, atol=1e-5)
    assert out.shape == shape[:-1] + (3,) and grad_x.shape == shape


def test_linear_on_an_integer_input_computes_in_the_weights_dtype():
    layer = nn.Linear(3, 2)
    x = np.arange(6).reshape(2, 3)
    out = layer(tc.tensor(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-6)


def test_linear_default_init_is_pytorchs_with_the_package_generator():
    """kaiming_uniform_(a=√5) gives U(−1/√fan_in, 1/√fan_in) for the weight; the bias uses the same bound.
    Drawn from the package generator in that order, so manual_seed reproduces them exactly."""
    tc.manual_seed(123)
    layer = nn.Linear(6, 4)
    bound = 1 / math.sqrt(6)
    expected = np.random.default_rng(123)
    np.testing.assert_array_equal(layer.weight.numpy(), expected.uniform(-bound, bound, (4, 6)).astype(np.float32))
    np.testing.assert_array_equal(layer.bias.numpy(), expected.uniform(-bound, bound, 4).astype(np.float32))
    assert layer.weight.dtype == np.float32
    tc.manual_seed(123)
    np.testing.assert_array_equal(nn.Linear(6, 4).weight.numpy(), layer.weight.numpy())


# ---- Conv2d and pooling -------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=2, groups=2),
                                    dict(bias=False)])
def test_conv2d_forward_backward_match_reference(kwargs):
    rng = np.random.default_rng(2)
    layer = nn.Conv2d(4, 6, 3, **kwargs).double()
    x = rng.standard_normal((2, 4, 7, 6))
    w = layer.weight.numpy()
    b = None if layer.bias is None else layer.bias.numpy()
    geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    out, g, grad_x = run(layer, x)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, **geometry), rtol=1e-10, atol=1e-12)
    ref_x, ref_w, ref_b = conv2d_reference_grads(x, w, g, **geometry)
    np.testing.assert_allclose(grad_x, ref_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), ref_w, rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(layer.bias.grad.numpy(), ref_b, rtol=1e-10, atol=1e-12)


def test_conv2d_gradcheck_with_parameters():
    layer = nn.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=1).double()
    assert gradcheck_layer(layer, np.random.default_rng(3).standard_normal((2, 2, 4, 5)))


def test_conv2d_shapes_attributes_and_default_init():
    tc.manual_seed(7)
    layer = nn.Conv2d(4, 8, 3, groups=2)
    assert layer.weight.shape == (8, 2, 3, 3) and layer.bias.shape == (8,)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.dilation) == ((3, 3), (1, 1), (0, 0), (1, 1))
    bound = 1 / math.sqrt(2 * 3 * 3)  # fan_in = in_channels / groups · kH · kW
    expected = np.random.default_rng(7)
    np.testing.assert_array_equal(layer.weight.numpy(), expected.uniform(-bound, bound, (8, 2, 3, 3)).astype(np.float32))
    np.testing.assert_array_equal(layer.bias.numpy(), expected.uniform(-bound, bound, 8).astype(np.float32))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    assert nn.Conv2d(1, 1, [3, 2], stride=np.int64(2)).kernel_size == (3, 2)
    for arguments, name in (({"kernel_size": "33"}, "kernel_size"), ({"kernel_size": 3, "stride": (1, 2, 3)}, "stride"),
                            ({"kernel_size": 3, "dilation": 1.5}, "dilation"), ({"kernel_size": 3, "padding": None}, "padding")):
        with pytest.raises(TypeError, match=f"Conv2d: {name} must be an int or a pair of ints"):
            nn.Conv2d(1, 1, **arguments)


def test_conv2d_repr_is_pytorchs():
    assert repr(nn.Conv2d(1, 32, 3)) == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2d(4, 8, (3, 5), stride=2, padding=1, dilation=2, groups=4, bias=False)) == (
        "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=4, bias=False)")


@pytest.mark.parametrize("layer,reference", [
    (nn.MaxPool2d(2), lambda x: max_pool2d_reference(x, 2)),
    (nn.MaxPool2d(3, stride=2, padding=1), lambda x: max_pool2d_reference(x, 3, 2, 1)),
    (nn.AvgPool2d(2), lambda x: avg_pool2d_reference(x, 2)),
    (nn.AvgPool2d((3, 2), stride=1, padding=1), lambda x: avg_pool2d_reference(x, (3, 2), 1, 1)),
    (nn.AdaptiveAvgPool2d((2, 3)), lambda x: adaptive_avg_pool2d_reference(x, (2, 3))),
    (nn.AdaptiveAvgPool2d(1), lambda x: adaptive_avg_pool2d_reference(x, 1)),
])
def test_pooling_layers_match_reference(layer, reference):
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 7))
    out, g, grad_x = run(layer, x)
    expected, expected_grad = reference(x)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(grad_x, expected_grad(g), rtol=1e-12, atol=1e-14)


def test_pooling_reprs_and_default_stride():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool2d(3, stride=1, padding=1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"


# ---- activations, Flatten, Identity -------------------------------------------------------------
@pytest.mark.parametrize("layer,reference", [
    (nn.ReLU(), lambda a: np.maximum(a, 0)),
    (nn.LeakyReLU(0.1), lambda a: np.where(a > 0, a, 0.1 * a)),
    (nn.Sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
    (nn.Tanh(), np.tanh),
    (nn.Softmax(dim=1), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=1), lambda a: a - np.log(np.exp(a).sum(1, keepdims=True))),
])
def test_activation_layers_match_numpy_and_gradcheck(layer, reference):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.1, 2, (3, 4)) * rng.choice([-1, 1], (3, 4))  # away from the kink at 0
    np.testing.assert_allclose(layer(tc.tensor(x)).numpy(), reference(x), rtol=1e-12)
    assert gradcheck_layer(layer, x)


def test_activation_reprs():
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"


def test_flatten_merges_all_but_the_batch_axis_by_default():
    x = tc.tensor(np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5), requires_grad=True)
    out = nn.Flatten()(x)
    np.testing.assert_array_equal(out.numpy(), x.numpy().reshape(2, 60))
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    g = np.random.default_rng(6).standard_normal((2, 60))
    out.backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), g.reshape(2, 3, 4, 5))


# ---- Dropout ------------------------------------------------------------------------------------
def test_dropout_in_training_zeroes_with_probability_p_and_scales_survivors():
    tc.manual_seed(0)
    layer = nn.Dropout(0.3)
    x = tc.tensor(np.ones((200, 100), np.float32), requires_grad=True)
    out = layer(x)
    values = out.numpy()
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1 / 0.7, rtol=1e-6)
    assert abs(1 - kept.mean() - 0.3) < 0.01  # 20 000 draws: standard error 0.0032
    g = np.random.default_rng(1).standard_normal(values.shape).astype(np.float32)
    out.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), g * kept / 0.7, rtol=1e-6)


def test_dropout_mask_comes_from_the_package_generator():
    x = tc.tensor(np.ones((4, 5), np.float32))
    tc.manual_seed(42)
    first = nn.Dropout(0.5)(x).numpy()
    tc.manual_seed(42)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).numpy(), first)
    seed = np.uint64(np.random.default_rng(42).integers(0, 2 ** 63))  # one draw of the generator per call
    np.testing.assert_array_equal(first != 0, dropout_uniform_reference(seed, 20).reshape(4, 5) >= 0.5)
    assert (nn.Dropout(0.5)(x).numpy() != first).any()  # the generator has moved on



def test_dropout_is_identity_in_eval_and_extremes_are_exact():
    x = tc.tensor(np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32))
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).numpy(), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_dropout_gradcheck_with_a_fixed_mask():
    layer = nn.Dropout(0.4)

    def seeded(inp):
        tc.manual_seed(9)
        return layer(inp)
    assert tc.gradcheck(seeded, [tc.tensor(np.random.default_rng(3).standard_normal((3, 5)), requires_grad=True)])


# ---- BatchNorm ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layer_type,shape", [(nn.BatchNorm1d, (8, 3)), (nn.BatchNorm1d, (4, 3, 5)),
                                              (nn.BatchNorm2d, (4, 3, 2, 5))])
def test_batch_norm_training_matches_reference_over_several_steps(layer_type, shape):
    rng = np.random.default_rng(10)
    layer = layer_type(3, momentum=0.2).double()
    with tc.no_grad():
        layer.weight.copy_(rng.uniform(0.5, 2, 3))
        layer.bias.copy_(rng.standard_normal(3))
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(4):
        x = rng.standard_normal(shape) * 3 + 1
        out, g, grad_x = run(layer, x, seed=step)
        expected, mean, unbiased_var = batch_norm_reference(x, layer.weight.numpy(), layer.bias.numpy(), 1e-5)
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
        ref_x, ref_w, ref_b = batch_norm_reference_grads(x, layer.weight.numpy(), 1e-5, g)
        np.testing.assert_allclose(grad_x, ref_x, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(layer.weight.grad.numpy(), ref_w, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(layer.bias.grad.numpy(), ref_b, rtol=1e-10)
        layer.zero_grad()
        running_mean = 0.8 * running_mean + 0.2 * mean
        running_var = 0.8 * running_var + 0.2 * unbiased_var
    np.testing.assert_allclose(layer.running_mean.numpy(), running_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), running_var, rtol=1e-12)
    assert layer.num_batches_tracked.item() == 4

    layer.eval()
    x = rng.standard_normal(shape)
    view = (1, -1) + (1,) * (len(shape) - 2)
    expected = ((x - running_mean.reshape(view)) / np.sqrt(running_var.reshape(view) + 1e-5)
                * layer.weight.numpy().reshape(view) + layer.bias.numpy().reshape(view))
    np.testing.assert_allclose(layer(tc.tensor(x)).numpy(), expected, rtol=1e-12)
    assert layer.num_batches_tracked.item() == 4  # eval leaves the statistics alone
    np.testing.assert_allclose(layer.running_mean.numpy(), running_mean, rtol=1e-12)


@pytest.mark.parametrize("layer_type,shape", [(nn.BatchNorm1d, (5, 2)), (nn.BatchNorm2d, (3, 2, 2, 3))])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_with_parameters(layer_type, shape, training):
    rng = np.random.default_rng(11)
    layer = layer_type(2).double().train(training)
    with tc.no_grad():
        layer.weight.copy_(rng.uniform(0.5, 2, 2))
        layer.running_var.copy_(rng.uniform(0.5, 2, 2))
    assert gradcheck_layer(layer, rng.standard_normal(shape))


def test_batch_norm_momentum_none_is_a_cumulative_average():
    rng = np.random.default_rng(12)
    layer = nn.BatchNorm1d(2, momentum=None).double()
    batches = [rng.standard_normal((6, 2)) + i for i in range(3)]
    for x in batches:
        layer(tc.tensor(x))
    np.testing.assert_allclose(layer.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-12)
    # running_var starts at 1 and the first batch replaces it (factor 1/1), then averages
    np.testing.assert_allclose(layer.running_var.numpy(), np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)


def test_batch_norm_without_running_stats_uses_batch_stats_always():
    layer = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert layer.running_mean is None and list(layer.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(13).standard_normal((4, 3, 2, 2))
    expected, _, _ = batch_norm_reference(x, np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(layer(tc.tensor(x)).numpy(), expected, rtol=1e-10)


def test_batch_norm_buffers_and_parameters_are_pytorchs():
    layer = nn.BatchNorm2d(4)
    state = layer.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(state["weight"], np.ones(4))
    np.testing.assert_array_equal(state["running_var"], np.ones(4))
    assert state["num_batches_tracked"].dtype == np.int64 and state["num_batches_tracked"].shape == ()
    assert list(nn.BatchNorm1d(4, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


def test_batch_norm_checks_input_shape():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 4-D input.*\(2, 3, 4\)"):
        nn.BatchNorm2d(3)(tc.tensor(np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(tc.tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(tc.tensor(np.zeros((1, 3))))
