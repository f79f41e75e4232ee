"""The functional ops added with the toolbox: activations, pad, interpolate, adaptive max pooling, dropout2d,
layer/group norm, embedding, normalize and the losses. Forward against NumPy or loop references written here
(float32 and float64), gradients by tc.gradcheck in float64, and the errors they raise."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn import functional as F

erf = np.vectorize(math.erf)


def rand(*shape, seed=0, low=None):
    values = np.random.default_rng(seed).standard_normal(shape)
    return values if low is None else np.abs(values) + low


def check(fn, reference, *arrays, rtol32=1e-5, grad=True):
    """fn on float32 and float64 Tensors equals reference on the float64 arrays; gradcheck in float64."""
    for dtype in (np.float32, np.float64):
        out = fn(*(tc.tensor(a.astype(dtype)) for a in arrays))
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), reference(*arrays), rtol=rtol32 if dtype == np.float32 else 1e-10,
                                   atol=1e-6 if dtype == np.float32 else 1e-12)
    if grad:
        assert tc.gradcheck(fn, [tc.tensor(a, requires_grad=True) for a in arrays])


# ---- activations ------------------------------------------------------------------------------
@pytest.mark.parametrize("fn, reference", [
    (F.gelu, lambda x: x * 0.5 * (1 + erf(x / math.sqrt(2)))),
    (lambda x: F.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (F.silu, lambda x: x / (1 + np.exp(-x))),
    (F.elu, lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1)),
    (lambda x: F.elu(x, alpha=0.5, inplace=True), lambda x: np.where(x > 0, x, 0.5 * (np.exp(np.minimum(x, 0)) - 1))),
    (lambda x: F.hardtanh(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
    (lambda x: F.relu6(x * 5), lambda x: np.clip(x * 5, 0, 6)),
    (lambda x: F.normalize(x, dim=1), lambda x: x / np.sqrt((x * x).sum(1, keepdims=True))),
    (lambda x: F.normalize(x, p=1, dim=0), lambda x: x / np.abs(x).sum(0, keepdims=True)),
])
def test_activations(fn, reference):
    x = rand(3, 4, 5)
    x[np.abs(x) < 0.05] = 0.3  # keep finite differences off the kinks
    x[np.abs(np.abs(x) - 0.5) < 0.05] = 0.3
    x[np.abs(x - 0.7) < 0.05] = 0.3
    check(fn, reference, x)


def test_gelu_gradient_is_phi_plus_x_times_density():
    x = rand(50)
    t = tc.tensor(x, requires_grad=True)
    F.gelu(t).sum().backward()
    expected = 0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-12)


def test_prelu_per_channel_slopes():
    x, a = rand(2, 3, 4), np.array([0.1, 0.5, -0.2])
    check(F.prelu, lambda x, a: np.where(x > 0, x, a[None, :, None] * x), x, a)
    with pytest.raises(ValueError, match=r"prelu: weight must hold 1 slope or one per channel"):
        F.prelu(tc.tensor(x), tc.tensor(np.ones(2)))


# ---- pad, interpolate, pooling ------------------------------------------------------------------
@pytest.mark.parametrize("mode, numpy_mode", [("constant", "constant"), ("reflect", "reflect"),
                                              ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("widths", [(1, 2), (2, 0, 1, 3)])
def test_pad_matches_numpy(mode, numpy_mode, widths):
    x = rand(2, 3, 4, 5)
    pairs = [(0, 0)] * (4 - len(widths) // 2) + [tuple(widths[i:i + 2]) for i in range(len(widths) - 2, -1, -2)]
    check(lambda t: F.pad(t, widths, mode=mode), lambda a: np.pad(a, pairs, mode=numpy_mode), x)
    if mode == "constant":
        np.testing.assert_array_equal(F.pad(tc.tensor(x), widths, value=2.5).numpy(),
                                      np.pad(x, pairs, constant_values=2.5))


def test_pad_errors():
    x = tc.tensor(rand(1, 2, 3, 3))
    with pytest.raises(ValueError, match="pad: reflect padding must be smaller than the padded axis"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="pad: mode must be one of"):
        F.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(ValueError, match=r"pad: pad must hold a \(before, after\) pair"):
        F.pad(x, (1, 1, 1))


def interpolate_loop(x, out_size, mode, align_corners=False, scales=None):
    """One output pixel at a time: its source coordinate per axis, then nearest pick or bilinear blend."""
    n, c = x.shape[:2]
    in_size = x.shape[2:]
    scales = scales or [i / o for i, o in zip(in_size, out_size)]

    def source(dst, axis):
        i, o = in_size[axis], out_size[axis]
        if mode == "nearest":
            return min(int(math.floor(dst * scales[axis])), i - 1)
        if align_corners:
            return dst * (i - 1) / (o - 1) if o > 1 else 0.0
        return max((dst + 0.5) * scales[axis] - 0.5, 0.0)

    out = np.zeros((n, c) + tuple(out_size))
    for index in np.ndindex(*out_size):
        coords = [source(d, a) for a, d in enumerate(index)]
        if mode == "nearest":
            out[(slice(None), slice(None)) + index] = x[(slice(None), slice(None)) + tuple(coords)]
            continue
        total = 0.0
        corners = [(int(math.floor(s)), s - math.floor(s)) for s in coords]
        for offsets in np.ndindex(*(2,) * len(coords)):
            weight, pick = 1.0, []
            for (low, frac), off, size in zip(corners, offsets, in_size):
                weight *= frac if off else 1 - frac
                pick.append(min(low + off, size - 1))
            total = total + weight * x[(slice(None), slice(None)) + tuple(pick)]
        out[(slice(None), slice(None)) + index] = total
    return out


@pytest.mark.parametrize("shape, size, mode, align", [
    ((2, 3, 4, 5), (7, 3), "nearest", None),
    ((1, 2, 3, 4), (6, 12), "nearest", None),  # integer factors: the repeat path
    ((2, 3, 4, 5), (8, 10), "bilinear", False),
    ((1, 2, 5, 4), (3, 7), "bilinear", True),
    ((1, 2, 6, 3), (4, 5), "bilinear", False),
    ((2, 3, 5), (9,), "linear", False),
])
def test_interpolate_matches_the_per_pixel_loop(shape, size, mode, align):
    x = rand(*shape)
    loop_mode = "nearest" if mode == "nearest" else "linear"
    check(lambda t: F.interpolate(t, size=size, mode=mode, align_corners=align),
          lambda a: interpolate_loop(a, size, loop_mode, align), x)


def test_interpolate_scale_factor_and_upsample_layer():
    x = rand(1, 2, 3, 4)
    out = F.interpolate(tc.tensor(x), scale_factor=2.5, mode="bilinear")  # 3·2.5 → 7, 4·2.5 → 10, scale 1/2.5
    np.testing.assert_allclose(out.numpy(), interpolate_loop(x, (7, 10), "linear", scales=[0.4, 0.4]), rtol=1e-6)
    up = tc.nn.Upsample(scale_factor=2)(tc.tensor(x))
    np.testing.assert_array_equal(up.numpy(), x.repeat(2, axis=2).repeat(2, axis=3))
    with pytest.raises(ValueError, match="interpolate: mode must be 'nearest', 'nearest-exact' or 'bilinear'"):
        F.interpolate(tc.tensor(x), size=(2, 2), mode="bicubic")
    with pytest.raises(ValueError, match="interpolate: give exactly one of size and scale_factor"):
        F.interpolate(tc.tensor(x))
    with pytest.raises(ValueError, match="align_corners only applies to the linear modes"):
        F.interpolate(tc.tensor(x), size=(2, 2), align_corners=True)


@pytest.mark.parametrize("shape, out", [((2, 3, 7, 5), (3, 2)), ((1, 2, 6, 4), (3, 2)), ((1, 1, 5, 5), 1)])
def test_adaptive_max_pool_matches_window_loop(shape, out):
    x = rand(*shape)
    oh, ow = (out, out) if isinstance(out, int) else out

    def reference(a):
        h, w = a.shape[2:]
        result = np.zeros(a.shape[:2] + (oh, ow))
        for i in range(oh):
            for j in range(ow):
                rows = slice(i * h // oh, math.ceil((i + 1) * h / oh))
                cols = slice(j * w // ow, math.ceil((j + 1) * w / ow))
                result[:, :, i, j] = a[:, :, rows, cols].max(axis=(2, 3))
        return result
    check(lambda t: F.adaptive_max_pool2d(t, out), reference, x)
    layer = tc.nn.AdaptiveMaxPool2d(out)
    np.testing.assert_allclose(layer(tc.tensor(x)).numpy(), reference(x))


def test_dropout2d_zeros_whole_channels_with_the_package_draws():
    x = np.abs(rand(3, 4, 2, 2)) + 1
    tc.manual_seed(4)
    out = F.dropout2d(tc.tensor(x), p=0.4).numpy()
    keep = np.random.default_rng(4).random((3, 4)) >= 0.4
    np.testing.assert_allclose(out, x * keep[:, :, None, None] / 0.6, rtol=1e-12)
    assert F.dropout2d(tc.tensor(x), training=False).numpy() is not None
    np.testing.assert_array_equal(F.dropout2d(tc.tensor(x), training=False).numpy(), x)
    layer = tc.nn.Dropout2d(0.4).eval()
    np.testing.assert_array_equal(layer(tc.tensor(x)).numpy(), x)
    with pytest.raises(ValueError, match=r"dropout2d: expected a 3-D \(C, H, W\) or 4-D"):
        F.dropout2d(tc.tensor(x[0, 0]))


# ---- normalisation and embedding ----------------------------------------------------------------
def test_layer_norm_and_group_norm_match_numpy():
    x, w, b = rand(2, 4, 3, 5), rand(3, 5, seed=1), rand(3, 5, seed=2)

    def ln(a, w, b):
        mean, var = a.mean((2, 3), keepdims=True), a.var((2, 3), keepdims=True)
        return (a - mean) / np.sqrt(var + 1e-5) * w + b
    check(lambda t, w, b: F.layer_norm(t, (3, 5), w, b), ln, x, w, b)
    gw, gb = rand(4, seed=3), rand(4, seed=4)

    def gn(a, w, b):
        g = a.reshape(2, 2, -1)
        g = (g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5)
        return g.reshape(a.shape) * w[None, :, None, None] + b[None, :, None, None]
    check(lambda t, w, b: F.group_norm(t, 2, w, b), gn, x, gw, gb)
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape \(4,\) must match the last axes"):
        F.layer_norm(tc.tensor(x), 4)
    with pytest.raises(ValueError, match="group_norm: expected input .* C divisible by num_groups=3"):
        F.group_norm(tc.tensor(x), 3)


def test_embedding_picks_rows_and_padding_gets_no_gradient():
    weight = rand(6, 3)
    indices = np.array([[0, 2, 2], [5, 0, 1]])
    check(lambda w: F.embedding(indices, w), lambda w: w[indices], weight)
    w = tc.tensor(weight, requires_grad=True)
    upstream = rand(2, 3, 3, seed=5)
    F.embedding(indices, w, padding_idx=0).backward(tc.tensor(upstream))
    expected = np.zeros_like(weight)
    np.add.at(expected, indices, upstream)
    expected[0] = 0
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12)
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 6\) .* from 0 to 6"):
        F.embedding(np.array([0, 6]), w)


# ---- losses ----------------------------------------------------------------------------------
def reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn, reference", [
    (F.l1_loss, lambda d: np.abs(d)),
    (F.mse_loss, lambda d: d * d),
    (lambda x, y, reduction: F.smooth_l1_loss(x, y, reduction=reduction, beta=0.8),
     lambda d: np.where(np.abs(d) < 0.8, 0.5 * d * d / 0.8, np.abs(d) - 0.4)),
    (lambda x, y, reduction: F.huber_loss(x, y, reduction=reduction, delta=0.8),
     lambda d: np.where(np.abs(d) < 0.8, 0.5 * d * d, 0.8 * (np.abs(d) - 0.4))),
])
def test_regression_losses(fn, reference, reduction):
    x, y = rand(4, 5), rand(4, 5, seed=1)
    d = x - y
    x[np.abs(np.abs(d) - 0.8) < 0.05] += 0.2  # off the switch point
    x[np.abs(x - y) < 0.05] += 0.2
    check(lambda a, b: fn(a, b, reduction=reduction), lambda a, b: reduce(reference(a - b), reduction), x, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_weight(reduction):
    p = np.random.default_rng(0).uniform(0.05, 0.95, (3, 4))
    y = np.random.default_rng(1).uniform(0, 1, (3, 4))
    w = rand(4, low=0.5)

    def reference(p, y):
        return reduce(-w * (y * np.log(p) + (1 - y) * np.log(1 - p)), reduction)
    check(lambda p, y: F.binary_cross_entropy(p, y, tc.tensor(w.astype(p.dtype)), reduction=reduction), reference, p, y)
    edge = F.binary_cross_entropy(tc.tensor(np.array([0.0, 1.0])), np.array([1.0, 0.0]), reduction="none")
    np.testing.assert_array_equal(edge.numpy(), [100.0, 100.0])  # log clamped at −100
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(tc.tensor(np.array([1.5])), np.array([1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    logits = rand(3, 5)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    q = np.exp(rand(3, 5, seed=1))
    q /= q.sum(1, keepdims=True)
    q[0, 0] = 0.0  # a zero target contributes 0

    def reference(x, t):
        prob = np.exp(t) if log_target else t
        with np.errstate(divide="ignore"):
            pointwise = np.where(prob > 0, prob * ((t if log_target else np.log(np.where(prob > 0, prob, 1))) - x), 0)
        return pointwise.sum() / 3 if reduction == "batchmean" else reduce(pointwise, reduction)
    target = np.log(np.where(q > 0, q, 1e-3)) if log_target else q
    check(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target), reference, log_p, target,
          grad=False)
    assert tc.gradcheck(lambda x: F.kl_div(x, tc.tensor(target), reduction=reduction, log_target=log_target),
                        [tc.tensor(log_p, requires_grad=True)])


def cross_entropy_loop(z, t, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """Sample by sample: log-softmax, then −Σ_c w_c·q_c·log p_c with q one-hot (smoothed); ignored samples
    count nothing; 'mean' divides by the summed weight of the target classes counted."""
    n, c = z.shape
    w = np.ones(c) if weight is None else weight
    losses, denominator = np.zeros(n), 0.0
    for i in range(n):
        if t[i] == ignore_index:
            continue
        log_p = z[i] - np.log(np.exp(z[i] - z[i].max()).sum()) - z[i].max()
        q = np.full(c, smoothing / c)
        q[t[i]] += 1 - smoothing
        losses[i] = -(1 - smoothing) * w[t[i]] * log_p[t[i]] - smoothing / c * (w * log_p).sum()
        denominator += w[t[i]]
    return losses.sum() / denominator if reduction == "mean" else reduce(losses, reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, ignore, smoothing", [(True, False, 0.0), (False, True, 0.0), (True, True, 0.0),
                                                          (True, True, 0.2), (False, False, 0.1)])
def test_cross_entropy_with_weight_ignore_index_and_smoothing(reduction, weighted, ignore, smoothing):
    z = rand(6, 4)
    t = np.array([0, 3, 1, 1, 2, 0])
    if ignore:
        t[[1, 4]] = 7
    w = rand(4, low=0.3) if weighted else None
    kwargs = dict(weight=None if w is None else tc.tensor(w), ignore_index=7 if ignore else -100, reduction=reduction,
                  label_smoothing=smoothing)
    check(lambda z: F.cross_entropy(z, t, **kwargs),
          lambda z: cross_entropy_loop(z, t, w, 7 if ignore else -100, reduction, smoothing), z)
    if not smoothing:  # nll_loss of the log-softmax is the same number
        log_p = tc.tensor(z).log_softmax(1)
        nll = F.nll_loss(log_p, t, None if w is None else tc.tensor(w), ignore_index=kwargs["ignore_index"],
                         reduction=reduction)
        np.testing.assert_allclose(nll.numpy(), cross_entropy_loop(z, t, w, kwargs["ignore_index"], reduction),
                                   rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_probability_targets(reduction):
    z, q = rand(5, 3), np.random.default_rng(1).dirichlet(np.ones(3), 5)
    w = np.array([0.5, 1.0, 2.0])

    def reference(z, q):
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return reduce(-(w * q * log_p).sum(1), reduction)
    check(lambda z, q: F.cross_entropy(z, q, weight=w, reduction=reduction), reference, z, q)


def test_class_loss_errors():
    z = tc.tensor(rand(3, 4))
    with pytest.raises(ValueError, match=r"cross_entropy: target values must lie in \[0, 4\).*ignore_index=-1"):
        F.cross_entropy(z, np.array([0, 9, -1]), ignore_index=-1)
    with pytest.raises(ValueError, match=r"nll_loss: weight must hold one value per class, shape \(4,\)"):
        F.nll_loss(z, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="l1_loss: input shape .* and target shape .* must be equal"):
        F.l1_loss(z, np.ones(3))
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.huber_loss(z, np.ones((3, 4)), reduction="avg")
