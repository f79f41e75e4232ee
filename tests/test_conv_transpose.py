"""ConvTranspose2d: a scatter loop written here, the adjoint identity with conv2d, gradcheck, the layer's
PyTorch layout and initialisation, and argument errors."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn import functional as F

from reference import conv2d_reference, conv2d_reference_grads


def conv_transpose_loop(x, w, b, stride, padding, output_padding, groups, dilation):
    """Every input pixel scatters its value times the filter onto the output:
    full[n, g·Cog + o, i·s + kh·d, j·s + kw·d] += x[n, c, i, j] · w[c, o, kh, kw] (c in group g); crop padding."""
    n, c_in, h, wd = x.shape
    _, group_out, kh_, kw_ = w.shape
    s, p, op, d = stride, padding, output_padding, dilation
    out_h = (h - 1) * s - 2 * p + d * (kh_ - 1) + op + 1
    out_w = (wd - 1) * s - 2 * p + d * (kw_ - 1) + op + 1
    full = np.zeros((n, group_out * groups, out_h + 2 * p, out_w + 2 * p))
    group_in = c_in // groups
    for b_ in range(n):
        for c in range(c_in):
            g = c // group_in
            for i in range(h):
                for j in range(wd):
                    for kh in range(kh_):
                        for kw in range(kw_):
                            for o in range(group_out):
                                full[b_, g * group_out + o, i * s + kh * d, j * s + kw * d] += x[b_, c, i, j] * w[c, o, kh, kw]
    out = full[:, :, p:p + out_h, p:p + out_w]
    return out + b[None, :, None, None] if b is not None else out


CASES = [  # (N, C_in, H, W), C_out, kernel, stride, padding, output_padding, groups, dilation
    ((2, 3, 4, 5), 4, 3, 1, 0, 0, 1, 1),
    ((1, 2, 3, 3), 3, 3, 2, 1, 1, 1, 1),
    ((2, 4, 3, 4), 6, 2, 2, 0, 0, 2, 1),
    ((1, 2, 4, 3), 2, 3, 3, 2, 2, 1, 2),
    ((1, 4, 2, 2), 4, 3, 2, 1, 0, 4, 1),
    ((1, 2, 3, 4), 3, 2, 1, 0, 1, 1, 2),  # output_padding 1 ≥ stride 1, allowed below dilation 2
    ((1, 2, 3, 3), 2, 2, 2, 1, 2, 1, 3),
]


@pytest.mark.parametrize("shape, c_out, k, s, p, op, groups, d", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_the_scatter_loop_and_gradients_the_adjoint_rules(shape, c_out, k, s, p, op, groups, d,
                                                                          dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((shape[1], c_out // groups, k, k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    tx, tw, tb = (tc.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv_transpose2d(tx, tw, tb, stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
    expected = conv_transpose_loop(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p, op,
                                   groups, d)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)
    upstream = rng.standard_normal(expected.shape).astype(dtype)
    out.backward(tc.tensor(upstream))
    # the adjoint rules, by the slow conv reference: dL/dx = conv2d(dL/dO, W), dL/dW = conv's dL/dW with dL/dO
    # as its input and x as its output gradient
    g64, w64, x64 = upstream.astype(np.float64), w.astype(np.float64), x.astype(np.float64)
    # (when output_padding reaches the stride, that conv has rows beyond x's: they belong to no input pixel)
    conv_of_grad = conv2d_reference(g64, w64, None, s, p, d, groups)
    h, w_ = shape[2:]
    np.testing.assert_allclose(tx.grad.numpy(), conv_of_grad[:, :, :h, :w_], rtol=tol, atol=tol)
    x_padded = np.zeros(conv_of_grad.shape)
    x_padded[:, :, :h, :w_] = x64
    _, grad_w, _ = conv2d_reference_grads(g64, w64, x_padded, s, p, d, groups)
    np.testing.assert_allclose(tw.grad.numpy(), grad_w, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(tb.grad.numpy(), upstream.sum(axis=(0, 2, 3)), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("shape, c_out, k, s, p, op, groups, d", CASES)
def test_adjoint_identity_with_conv2d(shape, c_out, k, s, p, op, groups, d):
    """⟨conv_transpose2d(x, w), y⟩ = ⟨x, conv2d(y, w)⟩ for every x and y of the matching shapes."""
    rng = np.random.default_rng(1)
    x = tc.tensor(rng.standard_normal(shape))
    w = tc.tensor(rng.standard_normal((shape[1], c_out // groups, k, k)))
    out = F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
    y = Tensor(rng.standard_normal(out.shape))
    back = F.conv2d(y, w, stride=s, padding=p, dilation=d, groups=groups)[:, :, :shape[2], :shape[3]]
    assert back.shape == x.shape
    assert float((out * y).sum().item()) == pytest.approx(float((x * back).sum().item()), rel=1e-10)


@pytest.mark.parametrize("shape, c_out, k, s, p, op, groups, d", CASES[1:4] + CASES[5:])
def test_gradcheck(shape, c_out, k, s, p, op, groups, d):
    rng = np.random.default_rng(2)
    x = tc.tensor(rng.standard_normal(shape), requires_grad=True)
    w = tc.tensor(rng.standard_normal((shape[1], c_out // groups, k, k)), requires_grad=True)
    b = tc.tensor(rng.standard_normal(c_out), requires_grad=True)
    assert tc.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, groups, d), (x, w, b))


def test_layer_layout_init_state_dict_and_repr():
    tc.manual_seed(0)
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert layer.weight.shape == (4, 3, 3, 3) and layer.bias.shape == (6,)
    assert list(layer.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(3 * 9)  # PyTorch's fan_in for this layout: weight.shape[1] · kH · kW
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.8 * bound
    assert np.abs(layer.bias.numpy()).max() <= bound
    out = layer(tc.tensor(np.ones((1, 4, 5, 5), np.float32)))
    assert out.shape == (1, 6, 10, 10)  # (5 − 1)·2 − 2 + 3 + 1
    assert repr(layer) == ("ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                           "output_padding=(1, 1), groups=2)")


@pytest.mark.parametrize("kwargs, match", [
    (dict(output_padding=2, stride=2), r"output_padding must be non-negative and smaller than the stride or the"),
    (dict(padding=5), "padding is too large"),
    (dict(groups=3), "divisible by groups=3"),
])
def test_bad_arguments_name_the_op(kwargs, match):
    x, w = tc.tensor(np.ones((1, 4, 3, 3))), tc.tensor(np.ones((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="conv_transpose2d: .*" + match):
        F.conv_transpose2d(x, w, **kwargs)
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected a 4-D input"):
        F.conv_transpose2d(tc.tensor(np.ones((4, 3, 3))), w)


@pytest.mark.parametrize("layer", [nn.Conv2d, nn.ConvTranspose2d])
def test_channel_counts_must_be_ints(layer):
    with pytest.raises(TypeError, match=layer.__name__ + r": in_channels, out_channels and groups must be positive "
                                      r"ints, got in_channels=24, out_channels=50.0, groups=1"):
        layer(24, 50.0, 1)
