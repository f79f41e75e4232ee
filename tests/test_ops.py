"""Every op of the core: forward against NumPy in float32, gradients by gradcheck in float64, numerical
stability, tie rules, indexing, joins, matmul shapes, non-differentiable ops and error messages."""
import operator

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor

from helpers import assert_forward_backward, random_array


def _logsumexp(x, axis=None, keepdims=False):
    """Reference in float64, so that it is more accurate than the float32 result it checks."""
    x64 = np.asarray(x, np.float64)
    m = np.max(x64, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x64 - m), axis=axis, keepdims=True))
    return (out if keepdims else np.squeeze(out, axis=axis)).astype(np.asarray(x).dtype)


def _softmax(x, axis):
    x64 = np.asarray(x, np.float64)
    return np.exp(x64 - _logsumexp(x64, axis, keepdims=True)).astype(np.asarray(x).dtype)


_MASK = np.random.default_rng(7).random((3, 4)) > 0.5
_CONSTANT = np.random.default_rng(8).standard_normal((3, 4)).astype(np.float32)


def case(fn, shapes, reference=None, domain="any", id=None):
    """One op under test: `fn` on Tensors; `reference` on NumPy arrays (default: `fn` itself, for
    expressions NumPy evaluates the same way); `domain` per input or one for all."""
    domains = (domain,) * len(shapes) if isinstance(domain, str) else domain
    return pytest.param(fn, shapes, reference or fn, domains, id=id)


OPS = [
    # arithmetic, with broadcasting and the reflected forms
    case(lambda a, b: a + b, [(3, 4), (3, 4)], id="add"),
    case(lambda a, b: a + b, [(2, 1, 4), (3, 1)], id="add-broadcast"),
    case(lambda a, b: a - b, [(3, 4), (4,)], id="sub-broadcast"),
    case(lambda a, b: a * b, [(4,), (2, 3, 4)], id="mul-broadcast"),
    case(lambda a, b: a / b, [(2, 3), (2, 1)], domain=("any", "nonzero"), id="div-broadcast"),
    case(lambda a, b: a ** b, [(2, 3), (3,)], domain=("positive", "any"), id="pow-tensors"),
    case(lambda x: x ** 3, [(2, 3)], id="pow-int"),
    case(lambda x: x ** 0.5, [(2, 3)], domain="positive", id="pow-float"),
    case(lambda x: 2.5 ** x, [(2, 3)], id="rpow"),
    case(lambda x: 2 - x, [(2, 3)], id="rsub-scalar"),
    case(lambda x: 3 / x, [(2, 3)], domain="nonzero", id="rtruediv-scalar"),
    case(lambda x: 1.5 + x * 2, [(2, 3)], id="radd-rmul-scalar"),
    case(lambda x: _CONSTANT - x, [(4,)], id="rsub-array"),
    case(lambda x: _CONSTANT * x, [(3, 1)], id="rmul-array"),
    case(lambda x: -x, [(2, 3)], id="neg"),
    case(lambda x: x.abs(), [(2, 3)], np.abs, "nonzero", id="abs"),
    case(lambda x: abs(x), [(2, 3)], np.abs, "nonzero", id="abs-builtin"),
    case(lambda x: x.exp(), [(2, 3)], np.exp, id="exp"),
    case(lambda x: x.log(), [(2, 3)], np.log, "positive", id="log"),
    case(lambda x: x.sqrt(), [(2, 3)], np.sqrt, "positive", id="sqrt"),
    case(lambda a, b: a.maximum(b), [(3, 4), (4,)], np.maximum, id="maximum-broadcast"),
    case(lambda a, b: a.minimum(b), [(2, 1), (2, 3)], np.minimum, id="minimum-broadcast"),
    case(lambda x: x.maximum(0.3), [(2, 3)], lambda x: np.maximum(x, 0.3), id="maximum-scalar"),
    case(lambda x: x.clip(-0.5, 0.5), [(3, 4)], lambda x: np.clip(x, -0.5, 0.5), id="clip"),
    case(lambda x: x.clamp(max=0.2), [(3, 4)], lambda x: np.minimum(x, 0.2), id="clip-high-only"),
    case(lambda a, b: tc.where(_MASK, a, b), [(3, 4), (4,)], lambda a, b: np.where(_MASK, a, b), id="where"),
    case(lambda a: tc.where(tc.tensor(_MASK), 0.5, a), [(3, 4)], lambda a: np.where(_MASK, 0.5, a),
         id="where-scalar"),
    # activations
    case(lambda x: x.relu(), [(3, 4)], lambda x: np.maximum(x, 0), "nonzero", id="relu"),
    case(lambda x: x.leaky_relu(0.1), [(3, 4)], lambda x: np.where(x > 0, x, 0.1 * x), "nonzero",
         id="leaky_relu"),
    case(lambda x: x.sigmoid(), [(3, 4)], lambda x: 1 / (1 + np.exp(-x)), id="sigmoid"),
    case(lambda x: x.tanh(), [(3, 4)], np.tanh, id="tanh"),
    case(lambda x: x.softmax(), [(3, 4)], lambda x: _softmax(x, -1), id="softmax"),
    case(lambda x: x.softmax(axis=0), [(3, 4)], lambda x: _softmax(x, 0), id="softmax-axis0"),
    case(lambda x: x.log_softmax(axis=-2), [(2, 3, 4)], lambda x: np.log(_softmax(x, -2)), id="log_softmax"),
    case(lambda x: x.softmax(axis=(0, 2)), [(2, 3, 4)], lambda x: _softmax(x, (0, 2)), id="softmax-tuple"),
    case(lambda x: x.logsumexp(), [(3, 4)], _logsumexp, id="logsumexp-all"),
    case(lambda x: x.logsumexp(axis=-1), [(3, 4)], lambda x: _logsumexp(x, -1), id="logsumexp-axis"),
    case(lambda x: x.logsumexp(axis=(0, 2), keepdims=True), [(2, 3, 4)],
         lambda x: _logsumexp(x, (0, 2), keepdims=True), id="logsumexp-tuple-keepdims"),
    # reductions
    case(lambda x: x.sum(), [(3, 4)], np.sum, id="sum-all"),
    case(lambda x: x.sum(axis=-1, keepdims=True), [(2, 3, 4)],
         lambda x: np.sum(x, axis=-1, keepdims=True), id="sum-negative-keepdims"),
    case(lambda x: x.sum(axis=(0, 2)), [(2, 3, 4)], lambda x: np.sum(x, axis=(0, 2)), id="sum-tuple"),
    case(lambda x: x.mean(axis=(0, -1)), [(2, 3, 4)], lambda x: np.mean(x, axis=(0, -1)), id="mean-tuple"),
    case(lambda x: x.mean(axis=1, keepdims=True), [(3, 4)], lambda x: np.mean(x, 1, keepdims=True),
         id="mean-keepdims"),
    case(lambda x: x.max(), [(3, 4)], np.max, id="max-all"),
    case(lambda x: x.amax(axis=1), [(2, 3, 4)], lambda x: np.max(x, axis=1), id="amax-axis"),
    case(lambda x: x.max(1).values, [(2, 3, 4)], lambda x: np.max(x, axis=1), id="max-dim-values"),
    case(lambda x: x.min(-1, keepdim=True).values, [(3, 4)], lambda x: np.min(x, axis=-1, keepdims=True),
         id="min-dim-keepdim-values"),
    case(lambda x: x.var(unbiased=False), [(3, 4)], np.var, id="var-unbiased-false"),
    case(lambda x: x.var(1, correction=0), [(3, 4)], lambda x: np.var(x, axis=1), id="var-correction-0"),
    case(lambda x: x.prod(1), [(3, 4)], lambda x: np.prod(x, axis=1), id="prod-dim"),
    case(lambda x: x.prod(), [(2, 3)], np.prod, id="prod-all"),
    case(lambda x: x.cumsum(0), [(3, 4)], lambda x: np.cumsum(x, axis=0), id="cumsum"),
    case(lambda x: x.norm(), [(3, 4)], lambda x: np.sqrt(np.sum(x * x)), id="norm-fro"),
    case(lambda x: x.norm(1, dim=1), [(3, 4)], lambda x: np.abs(x).sum(1), id="norm-1"),
    case(lambda x: x.sin(), [(3, 4)], np.sin, id="sin"),
    case(lambda x: x.cos(), [(3, 4)], np.cos, id="cos"),
    case(lambda x: x.repeat(2, 1, 3), [(2, 3)], lambda x: np.tile(x, (2, 1, 3)), id="repeat"),
    case(lambda x: x.sort(1, descending=True).values, [(3, 4)], lambda x: -np.sort(-x, axis=1), id="sort"),
    case(lambda x: x.topk(2).values, [(3, 4)], lambda x: -np.sort(-x, axis=-1)[:, :2], id="topk"),
    case(lambda x: x.t(), [(3, 4)], lambda x: x.T, id="t"),
    case(lambda x: x.split(2, dim=1)[1], [(3, 5)], lambda x: x[:, 2:4], id="split"),
    case(lambda x: x.chunk(3)[2], [(5, 2)], lambda x: x[4:], id="chunk"),
    case(lambda x: x.gather(1, np.array([[0, 0], [2, 1], [1, 1]])), [(3, 4)],
         lambda x: np.take_along_axis(x, np.array([[0, 0], [2, 1], [1, 1]]), 1), id="gather"),
    case(lambda x: x.masked_fill(np.eye(3, 4, dtype=bool), -1.0), [(3, 4)],
         lambda x: np.where(np.eye(3, 4, dtype=bool), -1.0, x), id="masked_fill"),
    case(lambda x: x.amax(axis=(0, -1), keepdims=True), [(2, 3, 4)],
         lambda x: np.max(x, axis=(0, -1), keepdims=True), id="max-tuple-keepdims"),
    case(lambda x: x.amin(axis=-1), [(3, 4)], lambda x: np.min(x, axis=-1), id="amin-axis"),
    case(lambda x: x.var(), [(3, 4)], lambda x: np.var(x, ddof=1), id="var-all-unbiased"),
    case(lambda x: x.var(axis=(0, 1), keepdims=True, ddof=1), [(2, 3, 4)],
         lambda x: np.var(x, axis=(0, 1), keepdims=True, ddof=1), id="var-tuple-ddof1"),
    case(lambda x: x.std(axis=-1), [(3, 4)], lambda x: np.std(x, axis=-1, ddof=1), id="std-axis-unbiased"),
    # movement
    case(lambda x: x.reshape(4, 6), [(2, 3, 4)], lambda x: x.reshape(4, 6), id="reshape-ints"),
    case(lambda x: x.reshape((6, -1)), [(2, 3, 4)], lambda x: x.reshape(6, -1), id="reshape-tuple"),
    case(lambda x: x.view(-1), [(2, 3, 4)], lambda x: x.reshape(-1), id="view"),
    case(lambda x: x.flatten(), [(2, 3, 4)], lambda x: x.reshape(-1), id="flatten"),
    case(lambda x: x.flatten(1), [(2, 3, 4)], lambda x: x.reshape(2, 12), id="flatten-start"),
    case(lambda x: x.transpose(0, 2), [(2, 3, 4)], lambda x: np.swapaxes(x, 0, 2), id="transpose"),
    case(lambda x: x.transpose(), [(2, 3, 4)], lambda x: np.swapaxes(x, -1, -2), id="transpose-default"),
    case(lambda x: x.permute(2, 0, 1), [(2, 3, 4)], lambda x: x.transpose(2, 0, 1), id="permute-ints"),
    case(lambda x: x.permute((1, -1, 0)), [(2, 3, 4)], lambda x: x.transpose(1, 2, 0), id="permute-tuple"),
    case(lambda x: x.T, [(2, 3, 4)], lambda x: x.T, id="T"),
    case(lambda x: x.squeeze(), [(2, 1, 3, 1)], np.squeeze, id="squeeze-all"),
    case(lambda x: x.squeeze(-1), [(2, 1, 3, 1)], lambda x: x[..., 0], id="squeeze-axis"),
    case(lambda x: x.unsqueeze(0), [(2, 3)], lambda x: x[None], id="unsqueeze"),
    case(lambda x: x.unsqueeze(-1), [(2, 3)], lambda x: x[..., None], id="unsqueeze-negative"),
    case(lambda x: x.expand(2, 3, 4), [(3, 1)], lambda x: np.broadcast_to(x, (2, 3, 4)), id="expand"),
    case(lambda x: x.expand((-1, 5)), [(3, 1)], lambda x: np.broadcast_to(x, (3, 5)), id="expand-keep"),
    case(lambda x: x.pad(1), [(2, 3)], lambda x: np.pad(x, 1), id="pad-int"),
    case(lambda x: x.pad(((1, 0), (2, 1)), value=0.5), [(2, 3)],
         lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=0.5), id="pad-per-axis"),
    case(lambda *xs: Tensor.cat(xs, axis=1), [(2, 1, 3), (2, 2, 3), (2, 3, 3)],
         lambda *xs: np.concatenate(xs, axis=1), id="cat"),
    case(lambda *xs: Tensor.cat(xs, axis=-1), [(2, 1), (2, 3)], lambda *xs: np.concatenate(xs, -1), id="cat-neg"),
    case(lambda *xs: Tensor.stack(xs), [(2, 3), (2, 3)], lambda *xs: np.stack(xs), id="stack"),
    case(lambda *xs: Tensor.stack(xs, axis=-1), [(2, 3)] * 3, lambda *xs: np.stack(xs, -1), id="stack-neg"),
    case(lambda x: x[1], [(3, 4)], id="getitem-int"),
    case(lambda x: x[-1, 1:3], [(3, 4)], id="getitem-int-slice"),
    case(lambda x: x[None, ::2], [(3, 4)], id="getitem-none-step"),
    case(lambda x: x[..., 1], [(2, 3, 4)], id="getitem-ellipsis"),
    case(lambda x: x[_MASK], [(3, 4)], id="getitem-bool-mask"),
    case(lambda x: x[tc.tensor(_MASK[0])], [(4, 2)], lambda x: x[_MASK[0]], id="getitem-tensor-mask"),
    case(lambda x: x[[0, 0, 2]], [(3, 4)], id="getitem-repeated"),
    case(lambda x: x[np.array([2, 0, 2]), np.array([1, 1, 1])], [(3, 4)], id="getitem-repeated-pairs"),
    case(lambda x: x[:, [1, 1, 3]], [(3, 4)], id="getitem-slice-and-array"),
    # matmul
    case(lambda a, b: a @ b, [(3,), (3,)], id="matmul-1d-1d"),
    case(lambda a, b: a @ b, [(3,), (3, 4)], id="matmul-1d-2d"),
    case(lambda a, b: a @ b, [(2, 3), (3,)], id="matmul-2d-1d"),
    case(lambda a, b: a @ b, [(2, 3), (3, 4)], id="matmul-2d"),
    case(lambda a, b: a.matmul(b), [(5, 2, 3), (5, 3, 4)], lambda a, b: a @ b, id="matmul-batched"),
    case(lambda a, b: a @ b, [(2, 1, 2, 3), (4, 3, 5)], id="matmul-broadcast-batch"),
    case(lambda a, b: a @ b, [(5, 2, 3), (3,)], id="matmul-batched-1d"),
    case(lambda a, b: a @ b, [(3,), (5, 3, 4)], id="matmul-1d-batched"),
    case(lambda a, b: a @ b, [(1, 3), (3, 4)], id="matmul-one-row"),  # gradients whose summed axis has length 1
    case(lambda a, b: a @ b, [(2, 3), (3, 1)], id="matmul-one-column"),
    case(lambda a, b: a @ b, [(5, 1, 3), (1, 3, 2)], id="matmul-batched-one-row"),
    case(lambda x: _CONSTANT.T @ x, [(3, 2)], id="rmatmul-array"),
]


@pytest.mark.parametrize("fn, shapes, reference, domains", OPS)
def test_forward_matches_numpy_in_float32(fn, shapes, reference, domains):
    rng = np.random.default_rng(0)
    arrays = [random_array(rng, s, d, np.float32) for s, d in zip(shapes, domains)]
    out = fn(*(tc.tensor(a) for a in arrays))
    expected = reference(*(a.astype(np.float64) for a in arrays))
    assert out.dtype == np.float32, "float32 inputs must give a float32 result"
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn, shapes, reference, domains", OPS)
def test_gradcheck_in_float64(fn, shapes, reference, domains):
    rng = np.random.default_rng(1)
    tensors = [tc.tensor(random_array(rng, s, d), requires_grad=True) for s, d in zip(shapes, domains)]
    assert tc.gradcheck(fn, tensors)


# ---- broadcasting, property-based ----------------------------------------------------------------

def _sum_into(shape, out_shape, weights):
    """Σ of `weights` over every output position that reads each element of an operand of `shape`
    (counted with bincount over broadcast element ids: independent of the code under test)."""
    size = int(np.prod(shape))
    ids = np.broadcast_to(np.arange(size).reshape(shape), out_shape)
    return np.bincount(ids.ravel(), weights=weights.ravel(), minlength=size).reshape(shape)


@settings(max_examples=40, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("op, partials", [
    (operator.add, lambda a, b: (np.ones_like(a), np.ones_like(b))),
    (operator.mul, lambda a, b: (b, a)),
    (operator.truediv, lambda a, b: (1 / b, -a / b ** 2)),
], ids=["add", "mul", "div"])
def test_broadcast_gradients_sum_over_every_reader(op, partials, shapes, seed):
    rng = np.random.default_rng(seed)
    a0, b0 = random_array(rng, shapes.input_shapes[0]), random_array(rng, shapes.input_shapes[1], "nonzero")
    a, b = tc.tensor(a0, requires_grad=True), tc.tensor(b0, requires_grad=True)
    out = op(a, b)
    np.testing.assert_allclose(out.numpy(), op(a0, b0))
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    da, db = (np.broadcast_to(p, out.shape) for p in partials(*np.broadcast_arrays(a0, b0)))
    np.testing.assert_allclose(a.grad.numpy(), _sum_into(a0.shape, out.shape, upstream * da), atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), _sum_into(b0.shape, out.shape, upstream * db), atol=1e-12)


# ---- numerical stability -----------------------------------------------------------------------

_EXTREME = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0], [1000.0, 1000.0, -1000.0]], np.float32)


def _softmax_grad(g, x, axis=-1):
    s = _softmax(x, axis)
    return s * (g - np.sum(g * s, axis=axis, keepdims=True))


STABLE = [
    pytest.param(lambda x: x.softmax(dim=-1), lambda x: _softmax(x, -1),
                 lambda g, x: [_softmax_grad(g, x)], id="softmax"),
    pytest.param(lambda x: x.softmax(axis=0), lambda x: _softmax(x, 0),
                 lambda g, x: [_softmax_grad(g, x, 0)], id="softmax-axis0"),
    pytest.param(lambda x: x.log_softmax(dim=-1), lambda x: (x - _logsumexp(x.astype(np.float64), -1, keepdims=True)),
                 lambda g, x: [g - _softmax(x, -1) * g.sum(-1, keepdims=True)], id="log_softmax"),
    pytest.param(lambda x: x.logsumexp(axis=1), lambda x: _logsumexp(x, 1),
                 lambda g, x: [g[:, None] * _softmax(x, 1)], id="logsumexp"),
    pytest.param(lambda x: x.sigmoid(), lambda x: 0.5 * (1 + np.tanh(x / 2)),
                 lambda g, x: [g * 0.25 * (1 - np.tanh(x / 2) ** 2)], id="sigmoid"),
    pytest.param(lambda x: x.tanh(), np.tanh, lambda g, x: [g * (1 - np.tanh(x) ** 2)], id="tanh"),
]


@pytest.mark.parametrize("fn, reference, reference_grads", STABLE)
@pytest.mark.filterwarnings("error")  # an overflow warning inside the op is a failure too
def test_stable_at_plus_minus_1000(fn, reference, reference_grads):
    assert_forward_backward(fn, [_EXTREME], reference, reference_grads, np.random.default_rng(2),
                            rtol=1e-6, atol=1e-6)


def test_stable_values_are_the_exact_limits():
    x = tc.tensor(_EXTREME)
    np.testing.assert_allclose(x.softmax().numpy()[0], [1, 0, 0])
    np.testing.assert_allclose(x.logsumexp(axis=1).numpy(), [1000, -999 + np.log1p(2 * np.exp(-1.0)), 1000 + np.log(2)])
    np.testing.assert_array_equal(x.sigmoid().numpy()[0], [1, 0, 0.5])


# ---- ties, indexing accumulation, casts ---------------------------------------------------------

def test_max_and_min_share_the_gradient_equally_between_ties():
    """Documented rule: each of k tied extremes gets grad / k."""
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    assert_forward_backward(lambda t: t.amax(axis=1), [x], lambda a: a.max(axis=1),
                            lambda g, a: [np.array([[0, g[0] / 2, g[0] / 2], [g[1] / 3] * 3])],
                            np.random.default_rng(3))
    assert_forward_backward(lambda t: t.min(), [x], np.min,
                            lambda g, a: [np.where(a == 1.0, g, 0.0)], np.random.default_rng(3))
    assert "share the gradient" in Tensor.max.__doc__ and "share the gradient" in Tensor.min.__doc__


def test_maximum_and_minimum_split_ties_in_half():
    a, b = np.array([1.0, 2.0, 5.0]), np.array([1.0, 3.0, 4.0])
    for method, pick in (("maximum", np.maximum), ("minimum", np.minimum)):
        assert_forward_backward(lambda s, t: getattr(s, method)(t), [a, b], pick,
                                lambda g, a, b: [g * np.where(a == b, 0.5, pick(a, b) == a),
                                                 g * np.where(a == b, 0.5, pick(a, b) == b)],
                                np.random.default_rng(4))


def test_getitem_repeated_indices_accumulate():
    index = np.array([0, 2, 0, 0])
    x = np.random.default_rng(5).standard_normal((3, 2))

    def scatter(g, a):
        grad = np.zeros_like(a)
        for row, i in enumerate(index):
            grad[i] += g[row]
        return [grad]

    assert_forward_backward(lambda t: t[index], [x], lambda a: a[index], scatter, np.random.default_rng(5))


@pytest.mark.parametrize("exponent, grad_base, grad_exponent", [
    (0.0, 0.0, 0.0),                   # d/da a^0 = 0 even at a = 0; d/db = a^b·log a → 0 as a → 0
    (2.0, 0.0, 0.0),
    (0.5, np.inf, 0.0),                # a genuine infinity stays
])
def test_pow_gradients_at_zero_base_are_the_limits(exponent, grad_base, grad_exponent):
    a, b = tc.tensor(np.zeros(1), requires_grad=True), tc.tensor(np.full(1, exponent), requires_grad=True)
    with np.errstate(all="raise"):
        (a ** b).backward(np.array([1.5]))
    assert a.grad.item() == 1.5 * grad_base and b.grad.item() == 1.5 * grad_exponent


def test_astype_casts_the_gradient_back_to_the_input_dtype():
    x = tc.tensor(np.arange(3.0), requires_grad=True)  # float64
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    upstream = np.random.default_rng(6).standard_normal(3).astype(np.float32)
    y.backward(upstream)
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), upstream)


# ---- non-differentiable ops ---------------------------------------------------------------------

@pytest.mark.parametrize("op", [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge])
@pytest.mark.parametrize("other", [np.array([0.0, 1.0, 2.0]), 1.0, "tensor"], ids=["array", "scalar", "tensor"])
def test_comparisons_give_bool_tensors_without_grad(op, other):
    values = np.array([[0.0, 1.0, 3.0], [1.0, 1.0, -2.0]])
    x = tc.tensor(values, requires_grad=True)
    other = tc.tensor(np.array([1.0, 1.0, 2.0]), requires_grad=True) if isinstance(other, str) else other
    result = op(x, other)
    assert isinstance(result, Tensor) and result.dtype == np.bool_
    assert not result.requires_grad and result.is_leaf
    np.testing.assert_array_equal(result.numpy(), op(values, np.asarray(other)))


@pytest.mark.parametrize("method, reference", [("argmax", np.argmax), ("argmin", np.argmin)])
@pytest.mark.parametrize("kwargs", [{}, {"axis": 1}, {"axis": -1, "keepdims": True}])
def test_argmax_argmin_match_numpy_without_grad(method, reference, kwargs):
    values = np.random.default_rng(9).standard_normal((2, 3, 4))
    result = getattr(tc.tensor(values, requires_grad=True), method)(**kwargs)
    assert not result.requires_grad and result.dtype.kind == "i"
    np.testing.assert_array_equal(result.numpy(), reference(values, **kwargs))


# ---- errors name what was received ----------------------------------------------------------------

@pytest.mark.parametrize("make, shapes", [
    (lambda a, b: a @ b, [(3, 4), (5, 6)]),
    (lambda a, b: a @ b, [(4,), (3,)]),
    (lambda a, b: a @ b, [(2, 3, 4), (5, 4, 2)]),
    (lambda a, b: a + b, [(2, 3), (4,)]),
    (lambda a, b: a * b, [(2, 3, 4), (3, 2)]),
    (lambda a, b: a.maximum(b), [(3,), (2,)]),
    (lambda a, b: a < b, [(2, 3), (4,)]),
], ids=["matmul", "matmul-1d", "matmul-batch", "add", "mul", "maximum", "compare"])
def test_shape_mismatch_error_names_both_shapes(make, shapes):
    a, b = (tc.tensor(np.ones(s)) for s in shapes)
    with pytest.raises(ValueError) as error:
        make(a, b)
    assert str(shapes[0]) in str(error.value) and str(shapes[1]) in str(error.value)


@pytest.mark.parametrize("make, fragment", [
    (lambda x: x.reshape(5, 5), "(2, 3, 4)"),
    (lambda x: x.permute(0, 1, 5), "permute"),
    (lambda x: x.permute(0, 0, 1), "permute"),
    (lambda x: x.expand(5, 4), "expand"),
    (lambda x: x.sum(axis=3), "axis 3"),
    (lambda x: Tensor.cat([x, Tensor.ones(2, 2, 4)], axis=0), "cat"),
    (lambda x: Tensor.stack([x, Tensor.ones(2, 3)]), "stack"),
    (lambda x: x.pad(-1), "pad"),
    (lambda x: x.unsqueeze(4), "unsqueeze"),
    (lambda x: Tensor.stack([x, x], axis=-5), "stack"),
], ids=["reshape", "permute-range", "permute-repeat", "expand", "axis", "cat", "stack", "pad", "unsqueeze",
        "stack-axis"])
def test_bad_arguments_raise_clear_errors(make, fragment):
    with pytest.raises(ValueError) as error:
        make(tc.tensor(np.ones((2, 3, 4))))
    assert fragment in str(error.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_2d_matmul_split_over_the_threads_equals_numpy_on_any_thread_count(dtype):
    """From SPLIT_MACS multiply-adds a 2-D product and its gradients run as column blocks on the threads (a
    Linear layer 9216 -> 128 at batch 64, as in the MNIST cnn): the numbers are NumPy's, and the same bits on
    one and on two threads."""
    from tinygrad_cnn.ops.matmul import SPLIT_MACS
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 9216)).astype(dtype), rng.standard_normal((9216, 128)).astype(dtype)
    g = rng.standard_normal((64, 128)).astype(dtype)
    assert 64 * 9216 * 128 >= SPLIT_MACS
    results = []
    for threads in (1, 2):
        previous = tc.get_num_threads()
        tc.set_num_threads(threads)
        try:
            x, w = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
            out = x @ w
            out.backward(g)
            results.append((out.numpy(), x.grad.numpy(), w.grad.numpy()))
        finally:
            tc.set_num_threads(previous)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for got, expected in zip(results[0], (a @ b, g @ b.T, a.T @ g)):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
