"""Fuzzing the public ops with hypothesis: random shapes (empty axes included), dtypes, ranks, arguments and
values (NaN, ±Inf, huge, subnormal). Every call must either give the right result (the reference's shape and
values; NumPy is the reference where it computes the same thing) or raise ValueError/TypeError with a message
naming the op. Never another exception, never a crash, never an accepted input with a silently wrong shape.

`check` is the one rule; each test only says how to call the op and what the reference is.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, mutually_broadcastable_shapes

import tinygrad_cnn as tc
from reference import (adaptive_avg_pool2d_reference, avg_pool2d_reference, conv2d_reference, max_pool2d_reference)
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn import functional as F

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOATS = [np.float32, np.float64]
ANY_DTYPE = FLOATS + [np.int64, np.int32, np.bool_]


class Refused(Exception):
    """The reference refuses the input too (NumPy raised, or the op's rules exclude it)."""


def check(op, ours, reference, accepted=True, rtol=1e-5, atol=1e-6, errors=(ValueError, TypeError)):
    """`ours()` must match `reference()` (shape, then values with NaN = NaN) or raise one of `errors` naming `op`.

    A refusal is right when the reference raises too; when it does not, a refusal is still right if `accepted`
    is False (inputs the op excludes by design, such as integer logits). Accepting what the reference refuses
    is wrong: the result's shape would be made up."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = reference()
        except (Refused, ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError) as error:
            expected, reference_error = None, error
        else:
            reference_error = None
        try:
            result = ours()
        except errors as error:
            names = (op,) if isinstance(op, str) else op
            assert any(name in str(error) for name in names), \
                f"{type(error).__name__} from {names[0]} does not name the op: {error}"
            assert reference_error is not None or not accepted, f"{names} refused a valid input: {error!r}"
            # --hypothesis-show-statistics tells how many calls were refused (and why) and how many ran
            event(f"refused: {str(reference_error)[:40] if reference_error is not None else 'by design'}")
            return None
    names = op if isinstance(op, str) else op[0]
    assert reference_error is None, \
        f"{names} accepted an input the reference refuses ({reference_error!r}); result {describe(result)}"
    compare(result, expected, rtol, atol, names)
    event("computed")
    return result


def describe(result):
    return [describe(r) for r in result] if isinstance(result, (tuple, list)) else \
        f"shape {np.shape(result.numpy() if isinstance(result, Tensor) else result)}"


def compare(result, expected, rtol, atol, op):
    if isinstance(expected, tuple):
        assert isinstance(result, tuple) and len(result) == len(expected), op
        for r, e in zip(result, expected):
            compare(r, e, rtol, atol, op)
        return
    got = result.numpy() if isinstance(result, Tensor) else np.asarray(result)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{op}: shape {got.shape}, expected {expected.shape}"
    if expected.dtype.kind in "biu" and got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected, err_msg=op)
    else:
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=op)


# ---- strategies -------------------------------------------------------------------------------------------

def values(dtype, shape):
    """Arrays of `dtype` whose floats include NaN, ±Inf, huge and subnormal values."""
    return arrays(dtype, shape)


def any_arrays(min_dims=0, max_dims=4, dtypes=ANY_DTYPE, max_side=4):
    return st.tuples(st.sampled_from(dtypes), array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0,
                                                           max_side=max_side)).flatmap(lambda d: values(*d))


def finite(dtype, shape, scale=1.0):
    """Finite values of magnitude up to `scale`, subnormal ones included."""
    return arrays(dtype, shape, elements=st.floats(-1, 1, width=32).map(lambda v: v * scale))


def mostly(valid, other):
    """`valid` nine times in ten, else `other`: most calls reach the computation, some probe the checks."""
    return st.integers(0, 9).flatmap(lambda k: other if k == 9 else valid)  # hypothesis favours small draws


def tensor(array):
    return tc.tensor(array, dtype=array.dtype)


def axes_for(ndim):
    """None, an int (sometimes out of range) or a tuple of ints (sometimes repeated)."""
    single = st.integers(-ndim - 2, ndim + 1)
    return st.one_of(st.none(), single, st.lists(single, max_size=3).map(tuple))


def numpy_axes(axis, ndim):
    """What NumPy does with `axis`, refusing what it refuses (ValueError subclasses)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -max(ndim, 1) <= a < max(ndim, 1) for a in axes):
        raise Refused("axis out of range")
    normalized = [a % max(ndim, 1) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise Refused("repeated axis")
    return tuple(sorted(normalized)) if ndim else ()


# ---- Tensor construction and elementwise ops --------------------------------------------------------------

@FUZZ
@given(st.one_of(any_arrays(), st.sampled_from([np.array(["a", "b"]), np.array([1 + 2j]), np.array([None, 1]),
                                                 np.array(["2020-01-01"], "datetime64[D]")])))
def test_constructor(array):
    def reference():
        if array.dtype.kind not in "biuf" or (array.dtype.kind == "f" and array.dtype.itemsize < 4):
            raise Refused("not numeric, or half precision")
        return array
    check("tensor", lambda: tc.tensor(array), reference)


UNARY = {
    "exp": (lambda t: t.exp(), np.exp),
    "log": (lambda t: t.log(), np.log),
    "sqrt": (lambda t: t.sqrt(), np.sqrt),
    "tanh": (lambda t: t.tanh(), np.tanh),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))),
    "relu": (lambda t: t.relu(), lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda t: t.leaky_relu(0.1), lambda x: np.where(x > 0, x, x * 0.1)),
    "abs": (lambda t: t.abs(), np.abs),
    "neg": (lambda t: -t, np.negative),
    "clip": (lambda t: t.clip(-1.5, 2), lambda x: np.clip(x, -1.5, 2)),
}


@FUZZ
@given(st.sampled_from(sorted(UNARY)), any_arrays(), st.randoms(use_true_random=False))
def test_unary_ops_forward_and_backward(name, array, random):
    function, reference = UNARY[name]
    x = tensor(array)
    if array.dtype.kind == "f":
        x.requires_grad = True
    out = check(name, lambda: function(x), lambda: reference(array), accepted=array.dtype.kind == "f",
                rtol=1e-5, atol=1e-30)
    if out is not None and out.requires_grad:
        out.backward(np.asarray([random.uniform(-1, 1) for _ in range(out.numel())], out.dtype).reshape(out.shape))
        assert x.grad.shape == x.shape and x.grad.dtype == x.dtype


BINARY = {
    "add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply), "div": (lambda a, b: a / b, np.true_divide),
    "pow": (lambda a, b: a ** b, np.power), "maximum": (lambda a, b: a.maximum(b), np.maximum),
    "minimum": (lambda a, b: a.minimum(b), np.minimum), "compare": (lambda a, b: a < b, np.less),
}


@st.composite
def operand_pairs(draw):
    """Two arrays of any dtypes, usually of broadcastable shapes, sometimes of unrelated ones."""
    if draw(st.booleans()):
        shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_side=0, max_side=3)).input_shapes
    else:
        shapes = [draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)) for _ in range(2)]
    return tuple(draw(values(draw(st.sampled_from(ANY_DTYPE)), shape)) for shape in shapes)


@FUZZ
@given(st.sampled_from(sorted(BINARY)), operand_pairs(), st.booleans())
def test_binary_ops_broadcast_or_refuse(name, pair, scalar_right):
    a, b = pair
    if scalar_right:  # a Python number on the right, as in `t * 2`
        b = b.reshape(-1)[0].item() if b.size else 2
    function, reference = BINARY[name]

    def numpy_result():
        left, right = a, np.asarray(b)
        if scalar_right and (a.dtype.kind == "f" or (a.dtype.kind in "iu" and isinstance(b, int))):
            right = np.asarray(b, a.dtype)  # a Python number takes the tensor's dtype, as in PyTorch
        elif scalar_right and isinstance(b, float):
            left, right = a.astype(np.float32), np.asarray(b, np.float32)  # otherwise a float is float32
        if name != "compare" and {left.dtype.kind, right.dtype.kind} & {"f"} and left.dtype.kind != right.dtype.kind:
            float_dtype = left.dtype if left.dtype.kind == "f" else right.dtype  # PyTorch's rule: an integer or
            left, right = left.astype(float_dtype), right.astype(float_dtype)  # bool operand takes the float dtype
        return reference(left, right)
    check(name, lambda: function(tensor(a), b if scalar_right else tensor(b)), numpy_result,
          accepted=not (a.dtype == np.bool_ or np.asarray(b).dtype == np.bool_) and name != "pow",
          rtol=1e-5, atol=1e-30)


@st.composite
def matmul_operands(draw):
    """Mostly shapes that fit, (..., n, k) @ (..., k, m) with 1-D operands among them, sometimes any two."""
    n, k, m = draw(st.tuples(*[st.integers(0, 3)] * 3))
    batch_a, batch_b = draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=2, min_side=0, max_side=2)).input_shapes
    fitting = st.tuples(st.sampled_from([(k,), batch_a + (n, k)]), st.sampled_from([(k,), batch_b + (k, m)]))
    shapes = draw(mostly(fitting, st.tuples(*[array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)] * 2)))
    return tuple(draw(values(draw(st.sampled_from(FLOATS)), shape)) for shape in shapes)


@FUZZ
@given(matmul_operands())
def test_matmul(operands):
    a, b = operands
    check("matmul", lambda: tensor(a) @ tensor(b), lambda: np.matmul(a, b), rtol=1e-4, atol=1e-30)


# ---- reductions -------------------------------------------------------------------------------------------

def _shifted(x, axes):
    """(x − m, log Σ e^(x − m), m) in extended precision, m the finite maximum (0 if there is none)."""
    x = x.astype(np.longdouble)
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    return x - m, np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)), m


def _stable_logsumexp(x, axes, keepdims):
    _, log_sum, m = _shifted(x, axes)
    return m + log_sum if keepdims else np.squeeze(m + log_sum, axes)


def log_softmax_reference(x, axes):
    shifted, log_sum, _ = _shifted(x, axes)
    return shifted - log_sum


REDUCTIONS = {
    "sum": (lambda t, axis, keep: t.sum(axis, keep), lambda x, axes, keep: np.sum(x, axes, keepdims=keep)),
    "mean": (lambda t, axis, keep: t.mean(axis, keep), lambda x, axes, keep: np.mean(x, axes, keepdims=keep)),
    "amax": (lambda t, axis, keep: t.amax(axis, keep), lambda x, axes, keep: np.max(x, axes, keepdims=keep)),
    "amin": (lambda t, axis, keep: t.amin(axis, keep), lambda x, axes, keep: np.min(x, axes, keepdims=keep)),
    "var": (lambda t, axis, keep: t.var(axis, keepdim=keep, correction=0),
            lambda x, axes, keep: np.var(x, axes, keepdims=keep)),
    "std": (lambda t, axis, keep: t.std(axis, keepdim=keep),  # unbiased by default, as PyTorch's
            lambda x, axes, keep: np.std(x, axes, keepdims=keep, ddof=1)),
    "logsumexp": (lambda t, axis, keep: t.logsumexp(axis, keep), _stable_logsumexp),
}


@FUZZ
@given(st.sampled_from(sorted(REDUCTIONS)), any_arrays(dtypes=FLOATS), st.data(), st.booleans())
def test_reductions(name, array, data, keepdims):
    axis = data.draw(axes_for(array.ndim))
    function, reference = REDUCTIONS[name]
    x = tc.tensor(array, dtype=array.dtype, requires_grad=True)
    out = check(name, lambda: function(x, axis, keepdims),
                lambda: reference(array, numpy_axes(axis, array.ndim), keepdims), rtol=1e-4, atol=1e-30)
    if out is not None:
        out.backward(np.ones(out.shape, out.dtype) * 0.5)
        assert x.grad.shape == x.shape


@FUZZ
@given(st.sampled_from(["argmax", "argmin"]), any_arrays(dtypes=ANY_DTYPE), st.data())
def test_argmax_argmin(name, array, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-array.ndim - 1, array.ndim)))
    check(name, lambda: getattr(tensor(array), name)(axis), lambda: getattr(np, name)(array, axis))


@FUZZ
@given(st.sampled_from(["softmax", "log_softmax"]), st.tuples(st.sampled_from(FLOATS), array_shapes(
    min_dims=0, max_dims=4, min_side=0, max_side=4)).flatmap(lambda d: arrays(*d, elements=st.one_of(
        st.floats(width=32, allow_nan=False, allow_infinity=False), st.just(-np.inf)))), st.data())
def test_softmax_family(name, array, data):
    """Finite values of any size and −∞ (a masked entry); with +∞ or NaN in a row the row is NaN, as in PyTorch."""
    axis = data.draw(st.integers(-array.ndim - 1, array.ndim))

    def reference():
        log_probabilities = log_softmax_reference(array, numpy_axes(axis, array.ndim))
        return log_probabilities if name == "log_softmax" else np.exp(log_probabilities)
    check(name, lambda: getattr(tensor(array), name)(axis), reference, rtol=1e-4, atol=1e-6)


# ---- movement ---------------------------------------------------------------------------------------------

@FUZZ
@given(any_arrays(), st.lists(st.integers(-2, 5), max_size=4))
def test_reshape(array, shape):
    def reference():
        if any(n < -1 for n in shape):
            raise Refused("negative size")
        return array.reshape(shape)
    check("reshape", lambda: tensor(array).reshape(tuple(shape)), reference)


@FUZZ
@given(any_arrays(), st.data())
def test_permute(array, data):
    axes = data.draw(mostly(st.permutations(range(array.ndim)), st.lists(st.integers(-5, 4), max_size=5)))
    check("permute", lambda: tensor(array).permute(tuple(axes)), lambda: np.transpose(array, axes))


@FUZZ
@given(any_arrays(), st.integers(-5, 4), st.integers(-5, 4))
def test_transpose(array, first, second):
    def reference():
        if array.ndim == 0:  # PyTorch's rule: axis 0 or -1, and nothing moves
            if {first, second} <= {0, -1}:
                return array
            raise Refused("0-d")
        return np.swapaxes(array, first, second)
    check("transpose", lambda: tensor(array).transpose(first, second), reference)


@FUZZ
@given(any_arrays(), st.data())
def test_squeeze_and_unsqueeze(array, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-array.ndim - 2, array.ndim + 1)))
    def squeezed():  # PyTorch's rule: a dim whose size is not 1 stays
        if axis is None or not -max(array.ndim, 1) <= axis < max(array.ndim, 1):
            return np.squeeze(array, axis)
        return np.squeeze(array, axis) if array.ndim and array.shape[axis] == 1 else array
    check("squeeze", lambda: tensor(array).squeeze(axis), squeezed)
    if axis is not None:
        check("unsqueeze", lambda: tensor(array).unsqueeze(axis), lambda: np.expand_dims(array, axis))


@FUZZ
@given(any_arrays(max_dims=3), st.lists(st.integers(-2, 3), max_size=4))
def test_expand(array, shape):
    def reference():
        lead = len(shape) - array.ndim
        if lead < 0 or any(n == -1 for n in shape[:lead]) or any(n < -1 for n in shape):
            raise Refused("-1 only for existing axes")
        return np.broadcast_to(array, [array.shape[i - lead] if n == -1 else n for i, n in enumerate(shape)])
    check("expand", lambda: tensor(array).expand(*shape), reference)


@FUZZ
@given(any_arrays(), st.integers(-5, 4), st.integers(-5, 4))
def test_flatten(array, start, end):
    def reference():
        if array.ndim == 0:
            if start not in (0, -1) or end not in (0, -1):
                raise Refused("0-d: only axis 0 or -1")
            return array.reshape(1)
        if not (-array.ndim <= start < array.ndim and -array.ndim <= end < array.ndim):
            raise Refused("axis out of range")
        first, last = start % array.ndim, end % array.ndim
        if first > last:
            raise Refused("start after end")
        return array.reshape(array.shape[:first] + (-1,) + array.shape[last + 1:]) if array.size else \
            array.reshape(array.shape[:first] + (math.prod(array.shape[first:last + 1]),) + array.shape[last + 1:])
    check("flatten", lambda: tensor(array).flatten(start, end), reference)


@FUZZ
@given(any_arrays(max_dims=3), st.one_of(st.integers(-1, 2), st.tuples(st.integers(-1, 2), st.integers(0, 2)),
                                         st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=4)))
def test_pad(array, widths):
    def reference():
        if np.any(np.asarray(widths) < 0):
            raise Refused("negative width")
        return np.pad(array, widths)
    check("pad", lambda: tensor(array).pad(widths), reference)


@FUZZ
@given(st.lists(any_arrays(max_dims=3, dtypes=FLOATS, max_side=2), min_size=0, max_size=3), st.integers(-4, 3),
       st.booleans())
def test_cat_and_stack(arrays_, axis, stack):
    name = "stack" if stack else "cat"

    def reference():
        if not arrays_:
            raise Refused("nothing to join")
        return np.stack(arrays_, axis) if stack else np.concatenate(arrays_, axis)
    joined = getattr(Tensor, name)
    check(name, lambda: joined([tensor(a) for a in arrays_], axis), reference)


@st.composite
def indices(draw, shape):
    """Basic and advanced indices, in and out of range."""
    parts = []
    for size in shape[:draw(st.integers(0, len(shape)))]:
        parts.append(draw(st.one_of(
            st.integers(-size - 1, size), st.slices(max(size, 1)), st.none(), st.just(Ellipsis),
            arrays(np.int64, draw(st.integers(0, 3)), elements=st.integers(-size - 1, size)),
            arrays(np.bool_, size))))
    return tuple(parts)


@FUZZ
@given(any_arrays(), st.data())
def test_getitem(array, data):
    index = data.draw(indices(array.shape))

    def reference():
        if sum(part is Ellipsis for part in index) > 1:
            raise Refused("more than one Ellipsis")
        return array[index]
    check("getitem", lambda: tensor(array)[index], reference, errors=(ValueError, TypeError, IndexError))


# ---- nn.functional: losses -------------------------------------------------------------------------------

@st.composite
def classification(draw):
    """(scores, target): mostly (N, C[, d]) float scores and int64 class indices that fit, sometimes not."""
    shape = draw(mostly(st.tuples(st.integers(0, 4), st.integers(1, 5)).flatmap(
        lambda nc: st.sampled_from([nc, nc + (3,)])), array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
    dtype = draw(mostly(st.sampled_from(FLOATS), st.just(np.int64)))
    scores = draw(finite(dtype, shape, scale=draw(st.sampled_from([1.0, 1e4, 1e30]))) if dtype != np.int64 else
                  arrays(dtype, shape, elements=st.integers(-5, 5)))
    axis = 1 if len(shape) >= 2 else 0
    fitting = shape[:axis] + shape[axis + 1:] if shape else ()
    target_shape = draw(mostly(st.just(fitting), array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)))
    classes = shape[axis] if shape else 1
    target_dtype = draw(mostly(st.just(np.int64), st.sampled_from([np.int32, np.float32])))
    target = draw(arrays(target_dtype, target_shape, elements=mostly(st.integers(0, max(classes - 1, 0)),
                                                                     st.integers(-1, classes))))
    return scores, target


def _class_target_ok(scores, target):
    if scores.ndim == 0:
        raise Refused("0-d scores")
    axis = 1 if scores.ndim >= 2 else 0
    if target.dtype.kind not in "iu" or target.shape != scores.shape[:axis] + scores.shape[axis + 1:]:
        raise Refused("target dtype or shape")
    if target.size and (target.min() < 0 or target.max() >= scores.shape[axis]) or scores.shape[axis] == 0:
        raise Refused("target out of range, or no classes")
    return axis


def _reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](loss)


@FUZZ
@given(classification(), st.sampled_from(["mean", "sum", "none", "avg"]), st.sampled_from([0.0, 0.2, 1.0, -0.1]))
@example((np.array(0.0, np.float32), np.array(0.0, np.float32)), "mean", 0.0)  # 0-d logits, once a raw IndexError
def test_cross_entropy(pair, reduction, smoothing):
    scores, target = pair

    def reference():
        axis = _class_target_ok(scores, target)
        if reduction not in ("mean", "sum", "none") or not 0 <= smoothing <= 1:
            raise Refused("argument")
        log_probs = np.moveaxis(log_softmax_reference(scores, (axis,)), axis, -1)
        nll = -np.take_along_axis(log_probs, target[..., None].astype(np.intp), -1)[..., 0]
        return _reduce((1 - smoothing) * nll - smoothing * log_probs.mean(-1), reduction)
    logits = tensor(scores)
    if scores.dtype.kind == "f":
        logits.requires_grad = True
    out = check("cross_entropy",
                lambda: F.cross_entropy(logits, target, reduction=reduction, label_smoothing=smoothing), reference,
                accepted=scores.dtype.kind == "f", rtol=1e-4, atol=1e-5)
    if out is not None and out.requires_grad:
        out.backward(np.full(out.shape, 0.25, out.dtype))
        assert logits.grad.shape == logits.shape


@FUZZ
@given(classification(), st.sampled_from(["mean", "sum", "none"]))
def test_nll_loss(pair, reduction):
    scores, target = pair

    def reference():
        axis = _class_target_ok(scores, target)
        picked = np.take_along_axis(np.moveaxis(scores, axis, -1), target[..., None].astype(np.intp), -1)[..., 0]
        return _reduce(-picked, reduction)
    check("nll_loss", lambda: F.nll_loss(tensor(scores), target, reduction=reduction), reference,
          accepted=scores.dtype.kind == "f", rtol=1e-5)


@FUZZ
@given(any_arrays(max_dims=3, dtypes=FLOATS), any_arrays(max_dims=3, dtypes=FLOATS + [np.int64]),
       st.sampled_from(["mean", "sum", "none"]), st.booleans())
def test_mse_and_bce_with_logits(prediction, target, reduction, bce):
    if bce:
        def reference():
            if prediction.shape != target.shape:
                raise Refused("shape")
            x, y = prediction, target.astype(prediction.dtype)  # the target takes the logits' dtype
            return _reduce(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))), reduction)
        check("binary_cross_entropy_with_logits",
              lambda: F.binary_cross_entropy_with_logits(tensor(prediction), target, reduction=reduction), reference,
              rtol=1e-4, atol=1e-30)
    else:
        def reference():
            if prediction.shape != target.shape:
                raise Refused("shape")
            return _reduce((prediction - target.astype(prediction.dtype)) ** 2, reduction)  # as the logits' above
        check("mse_loss", lambda: F.mse_loss(tensor(prediction), target, reduction=reduction), reference,
              rtol=1e-4, atol=1e-30)


@FUZZ
@given(st.tuples(st.sampled_from([np.int64, np.int32, np.float32]), array_shapes(max_dims=2, min_side=0)).flatmap(
    lambda d: arrays(*d, elements=mostly(st.integers(0, 3), st.integers(-2, 6)))), st.integers(-2, 5))
def test_one_hot(target, classes):
    def reference():
        count = (int(target.max()) + 1 if target.size else 0) if classes == -1 else classes
        if target.dtype.kind not in "iu" or (target.size and (target.min() < 0 or target.max() >= count)) \
                or count < 0:
            raise Refused("targets")
        return (target[..., None] == np.arange(count)).astype(np.int64)
    check("one_hot", lambda: F.one_hot(tensor(target), classes), reference)


# ---- nn.functional: linear, dropout, batch norm ------------------------------------------------------------

@st.composite
def linear_operands(draw):
    """(x, weight, bias): mostly (..., in), (out, in), (out,) or None; sometimes shapes of any rank."""
    dtype = draw(st.sampled_from(FLOATS))
    batch, n_in, n_out = draw(array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)), *draw(
        st.tuples(st.integers(0, 3), st.integers(0, 3)))
    shapes = draw(mostly(st.just((batch + (n_in,), (n_out, n_in), (n_out,))),
                         st.tuples(*[array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)] * 3)))
    x, weight, bias = (draw(values(dtype, shape)) for shape in shapes)
    return x, weight, draw(st.sampled_from([bias, None]))


@FUZZ
@given(linear_operands())
def test_linear(operands):
    x, weight, bias = operands
    def reference():
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise Refused("shapes")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise Refused("bias shape")
        out = x @ weight.T
        return out if bias is None else out + bias
    check("linear", lambda: F.linear(tensor(x), tensor(weight), None if bias is None else tensor(bias)), reference,
          rtol=1e-4, atol=1e-30)


@FUZZ
@given(any_arrays(max_dims=3), st.sampled_from([0.0, 0.3, 1.0, -0.5, 1.5]), st.booleans())
def test_dropout(array, p, training):
    """Each element is either dropped (x·0) or kept and scaled by 1/(1 − p); the identity when not training."""
    try:
        with np.errstate(all="ignore"):
            out = F.dropout(tensor(array), p, training).numpy()
    except (ValueError, TypeError) as error:
        assert "dropout" in str(error), error
        assert not 0 <= p <= 1 or array.dtype.kind != "f", f"dropout refused a valid input: {error!r}"
        return
    assert 0 <= p <= 1 and array.dtype.kind == "f", f"dropout accepted p={p}, dtype {array.dtype}"
    assert out.shape == array.shape and out.dtype == array.dtype
    with np.errstate(all="ignore"):
        if not training or p == 0:
            np.testing.assert_array_equal(out, array)
            return
        kept, dropped = (array / (1 - p) if p < 1 else array * 0), array * 0
    either = np.isclose(out, kept, rtol=1e-6, atol=0, equal_nan=True) | \
        np.isclose(out, dropped, rtol=0, atol=0, equal_nan=True)
    assert either.all(), (array[~either], out[~either])


@FUZZ
@given(any_arrays(max_dims=4, dtypes=FLOATS, max_side=3), st.data(), st.booleans())
def test_batch_norm(x, data, training):
    channels = data.draw(mostly(st.just(x.shape[1] if x.ndim >= 2 else 1), st.integers(0, 4)))
    running_mean, running_var = np.zeros(channels, x.dtype), np.ones(channels, x.dtype)
    weight = tc.tensor(np.linspace(0.5, 1.5, channels), dtype=x.dtype)

    def reference():
        if x.ndim < 2 or x.shape[1] != channels:
            raise Refused("channels")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, channels) + (1,) * (x.ndim - 2)
        if training:
            if math.prod(x.shape[a] for a in axes) <= 1:
                raise Refused("one value per channel")
            wide = x.astype(np.float64)  # float32 squares of values near 1e19 overflow; the kernels sum in float64
            mean, var = wide.mean(axes, keepdims=True), wide.var(axes, keepdims=True)
        else:
            mean, var = running_mean.reshape(shape), running_var.reshape(shape)
        return ((x - mean) / np.sqrt(var + 1e-5) * weight.numpy().reshape(shape)).astype(x.dtype)
    check("batch_norm", lambda: F.batch_norm(tensor(x), running_mean.copy(), running_var.copy(), weight,
                                             training=training), reference, rtol=1e-3, atol=1e-4)


# ---- nn.functional: conv2d and the pools ---------------------------------------------------------------------

BAD_GEOMETRY = st.sampled_from([0, -1, (1,), (1, 1, 1), (2, 0), 1.5, "1", None, True])
GEOMETRY = mostly(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))), BAD_GEOMETRY)
PADDING = mostly(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                           st.sampled_from(["same", "valid"])), st.sampled_from([-1, (1, -1), "full", (1,), 0.5]))


@settings(FUZZ, max_examples=80)
@given(st.data())
def test_conv2d(data):
    """Mostly valid calls (float input, weight that fits, groups dividing the channels, small geometry; the
    kernel may be larger than the padded input), sometimes a wrong rank, dtype, bias or argument."""
    groups = data.draw(mostly(st.integers(1, 3), st.sampled_from([0, -1, 2.0, True])))
    per_group = max(groups, 1) if isinstance(groups, int) else 1
    x_shape = data.draw(mostly(st.tuples(st.integers(0, 3), st.integers(0, 2).map(lambda c: c * per_group),
                                         st.integers(0, 7), st.integers(1, 7)),
                               array_shapes(min_dims=3, max_dims=5, min_side=0, max_side=5)))
    channels = x_shape[1] if len(x_shape) > 1 else 1
    w_shape = data.draw(mostly(st.tuples(st.integers(0, 2).map(lambda m: m * per_group),
                                         st.just(channels // per_group), st.integers(1, 3), st.integers(1, 3)),
                               array_shapes(min_dims=3, max_dims=5, min_side=0, max_side=3)))
    dtype = data.draw(mostly(st.sampled_from(FLOATS), st.just(np.int64)))
    x = data.draw(finite(dtype, x_shape) if dtype != np.int64 else arrays(dtype, x_shape))
    weight = data.draw(finite(data.draw(mostly(st.just(dtype if dtype != np.int64 else np.float32),
                                               st.sampled_from(FLOATS))), w_shape))
    bias = data.draw(mostly(st.one_of(st.none(), finite(weight.dtype, (w_shape[0],))), finite(weight.dtype, (2, 1))))
    stride, dilation, padding = data.draw(GEOMETRY), data.draw(GEOMETRY), data.draw(PADDING)

    def reference():
        if x.ndim != 4 or weight.ndim != 4 or x.dtype != weight.dtype or x.dtype.kind != "f" \
                or (bias is not None and (bias.shape != (w_shape[0],) or bias.dtype != x.dtype)):
            raise Refused("ranks, dtypes or bias")
        geometry = [_pair(v) for v in (stride, dilation)]
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1 \
                or any(v is None or min(v) < 1 for v in geometry):
            raise Refused("stride, dilation or groups")
        if x.shape[1] % groups or w_shape[0] % groups or x.shape[1] != w_shape[1] * groups:
            raise Refused("channels")
        if min(w_shape[2:]) < 1:
            raise Refused("a kernel of size 0")
        pad, x_ref = _reference_padding(padding, geometry[0], geometry[1], w_shape), x
        if padding == "same":
            extra = [d * (k - 1) % 2 for d, k in zip(geometry[1], w_shape[2:])]
            x_ref = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        spans = [d * (k - 1) + 1 for d, k in zip(geometry[1], w_shape[2:])]
        if any(s > n + 2 * p for s, n, p in zip(spans, x_ref.shape[2:], pad)):
            raise Refused("kernel larger than the padded input")
        return conv2d_reference(x_ref.astype(np.float64), weight.astype(np.float64), bias, geometry[0], pad,
                                geometry[1], groups)
    check("conv2d", lambda: F.conv2d(tensor(x), tensor(weight), None if bias is None else tensor(bias), stride,
                                     padding, dilation, groups), reference, rtol=1e-4, atol=1e-5)


def _pair(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value
    raise Refused(f"not an int or a pair: {value!r}")


def _reference_padding(padding, stride, dilation, w_shape):
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise Refused("'same' needs stride 1")
        return tuple(d * (k - 1) // 2 for d, k in zip(dilation, w_shape[2:]))
    pad = _pair(padding)
    if pad is None or min(pad) < 0:
        raise Refused("padding")
    return pad


@settings(FUZZ, max_examples=80)
@given(st.sampled_from(["max_pool2d", "avg_pool2d"]), st.data())
def test_pools(name, data):
    dtype = data.draw(mostly(st.sampled_from(FLOATS), st.just(np.int64)))
    shape = data.draw(mostly(array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=6).map(
        lambda s: (s[0] - 1,) + s[1:]), array_shapes(min_dims=3, max_dims=5, min_side=0, max_side=6)))
    x = data.draw(finite(dtype, shape, scale=1e30) if dtype != np.int64 else arrays(dtype, shape))
    kernel, stride = data.draw(GEOMETRY), data.draw(st.one_of(st.none(), GEOMETRY))
    padding = data.draw(mostly(st.one_of(st.integers(0, 1), st.tuples(st.integers(0, 1), st.integers(0, 1))),
                               BAD_GEOMETRY))
    function, reference_function = (F.max_pool2d, max_pool2d_reference) if name == "max_pool2d" else \
        (F.avg_pool2d, avg_pool2d_reference)

    def reference():
        if x.ndim != 4 or x.dtype.kind != "f" or 0 in x.shape[2:]:
            raise Refused("input")
        k, s, p = _pair(kernel), _pair(kernel if stride is None else stride), _pair(padding)
        if k is None or s is None or p is None or min(k) < 1 or min(s) < 1 or min(p) < 0 \
                or p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise Refused("arguments")
        if k[0] > x.shape[2] + 2 * p[0] or k[1] > x.shape[3] + 2 * p[1]:
            raise Refused("window larger than the padded input")
        if x.shape[0] * x.shape[1] == 0:  # the reference indexes its windows: shape only
            return np.zeros(x.shape[:2] + tuple((n + 2 * pp - kk) // ss + 1 for n, kk, ss, pp in
                                                zip(x.shape[2:], k, s, p)))
        return reference_function(x, k, s, p)[0]
    # a window sum that cancels (1e29 - 1e29) is rounding noise of its terms, whatever order sums them
    noise = 16 * np.finfo(x.dtype).eps * float(np.abs(x).max(initial=0)) \
        if name == "avg_pool2d" and x.dtype.kind == "f" else 0.0
    check(name, lambda: function(tensor(x), kernel, stride, padding), reference, rtol=1e-5, atol=1e-6 + noise)


@FUZZ
@given(st.data())
def test_adaptive_avg_pool2d(data):
    shape = data.draw(mostly(array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=6),
                             array_shapes(min_dims=3, max_dims=5, min_side=0, max_side=6)))
    x = data.draw(finite(data.draw(st.sampled_from(FLOATS)), shape))
    size = data.draw(mostly(st.one_of(st.integers(1, 7), st.tuples(st.one_of(st.none(), st.integers(1, 7)),
                                                                   st.integers(1, 7))),
                            st.sampled_from([0, -1, (0, 2), "2", 1.5])))

    def reference():
        if x.ndim != 4 or 0 in x.shape[2:]:
            raise Refused("input")
        out = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size)) if isinstance(size, tuple) \
            else _pair(size)
        if min(out) < 1:
            raise Refused("size")
        return np.zeros(x.shape[:2] + out) if x.shape[0] * x.shape[1] == 0 else \
            adaptive_avg_pool2d_reference(x, out)[0]
    check("adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(tensor(x), size), reference, rtol=1e-5, atol=1e-6)


# ---- layers -----------------------------------------------------------------------------------------------

LAYERS = {  # name: (layer, names an error may use, reference on an input array, or None for shape only)
    "Linear": (lambda: nn.Linear(3, 2), ("linear", "Linear"), None),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1), ("conv2d", "Conv2d"), None),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), ("max_pool2d", "MaxPool2d"), lambda x: max_pool2d_reference(x, 2)[0]),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), ("avg_pool2d", "AvgPool2d"), lambda x: avg_pool2d_reference(x, 2)[0]),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(2), ("adaptive_avg_pool2d",),
                          lambda x: adaptive_avg_pool2d_reference(x, 2)[0]),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3).eval(), ("BatchNorm1d",), lambda x: x / np.sqrt(1 + 1e-5)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3).eval(), ("BatchNorm2d",), lambda x: x / np.sqrt(1 + 1e-5)),
    "Flatten": (lambda: nn.Flatten(), ("flatten",), lambda x: x.reshape(x.shape[0], -1) if x.ndim >= 2 else None),
    "ReLU": (lambda: nn.ReLU(), ("relu",), lambda x: np.maximum(x, 0)),
    "Softmax": (lambda: nn.Softmax(1), ("softmax",), None),
}


@FUZZ
@given(st.sampled_from(sorted(LAYERS)), any_arrays(min_dims=0, max_dims=5, dtypes=FLOATS, max_side=5))
def test_layers_on_inputs_of_any_rank(name, array):
    """The layers expect (N, 3), (N, 2, H, W), (N, C, H, W) and so on: any other shape must be refused by name,
    a fitting one must give the functional form's shape (and values where a reference is cheap)."""
    make, names, reference = LAYERS[name]
    tc.manual_seed(0)
    layer = make()
    if array.dtype == np.float64:
        layer = layer.double()
    expected_shape = _layer_shape(name, array.shape)
    out = None
    try:
        with np.errstate(all="ignore"):
            out = layer(tc.tensor(array, dtype=array.dtype))
    except (ValueError, TypeError) as error:
        assert any(n in str(error) for n in names), f"{name}: the error does not name the layer: {error}"
        assert expected_shape is None, f"{name} refused an input of shape {array.shape}: {error}"
        return
    assert expected_shape is not None, f"{name} accepted an input of shape {array.shape}: gave {out.shape}"
    assert out.shape == expected_shape, f"{name}: {out.shape}, expected {expected_shape}"
    if reference is not None and np.isfinite(array).all() and array.size:
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(out.numpy(), reference(array), rtol=1e-4, atol=1e-5, err_msg=name)


def _layer_shape(name, shape):
    """The output shape the layer must give for an input of `shape`, or None if it must refuse it."""
    if name == "Linear":
        return shape[:-1] + (2,) if len(shape) >= 1 and shape[-1] == 3 else None
    if name == "Conv2d":
        return shape[:1] + (3,) + shape[2:] if len(shape) == 4 and shape[1] == 2 and min(shape[2:]) >= 1 else None
    if name in ("MaxPool2d", "AvgPool2d"):
        return shape[:2] + (shape[2] // 2, shape[3] // 2) if len(shape) == 4 and min(shape[2:]) >= 2 else None
    if name == "AdaptiveAvgPool2d":
        return shape[:2] + (2, 2) if len(shape) == 4 and min(shape[2:]) >= 1 else None
    if name in ("BatchNorm1d", "BatchNorm2d"):
        ranks = (2, 3) if name == "BatchNorm1d" else (4,)
        return shape if len(shape) in ranks and shape[1] == 3 else None
    if name == "Flatten":
        return (shape[0], math.prod(shape[1:])) if len(shape) >= 2 else None
    if name == "Softmax":
        return shape if len(shape) >= 2 else None
    return shape


def test_check_itself_fails_on_a_wrong_shape_and_on_an_unnamed_error():
    """The rule above can fail: a silently wrong shape and an error that does not name the op are both caught."""
    with pytest.raises(AssertionError, match="shape"):
        check("sum", lambda: tc.tensor(np.ones(3)).sum(keepdims=True), lambda: np.sum(np.ones(3)))
    with pytest.raises(AssertionError, match="does not name"):
        check("sum", lambda: (_ for _ in ()).throw(ValueError("bad axis")), lambda: np.sum(np.ones(3), axis=4))
    with pytest.raises(AssertionError, match="refused a valid input"):
        check("sum", lambda: (_ for _ in ()).throw(ValueError("sum: no")), lambda: np.sum(np.ones(3)))
    with pytest.raises(AssertionError, match="accepted an input the reference refuses"):
        check("sum", lambda: tc.tensor(np.ones(3)).sum(), lambda: np.sum(np.ones(3), axis=4))


# ---- what the fuzzing found, pinned ------------------------------------------------------------------------

@pytest.mark.parametrize("call, name", [
    (lambda: -tc.tensor([True]), "neg"),                                      # NumPy's TypeError, unnamed
    (lambda: tc.tensor([True]).sigmoid(), "sigmoid"),
    (lambda: tc.tensor([1], dtype=np.int32) + 2 ** 40, "add"),                # was an OverflowError
    (lambda: tc.tensor([2]) ** tc.tensor([-1]), "pow"),
    (lambda: tc.tensor(np.ones((2, 3))).sum(axis=5), "sum"),                  # named no op
    (lambda: tc.tensor(np.ones((2, 3))).sum(axis=(0, 0)), "sum"),             # was silently one axis
    (lambda: tc.tensor(np.ones(3)).argmax(axis=(0,)), "argmax"),
    (lambda: tc.tensor(np.zeros((0, 3))).argmax(axis=0), "argmax"),
    (lambda: tc.tensor(np.ones(3)).reshape(-2), "reshape"),                   # was silently shape (3,)
    (lambda: tc.tensor(np.ones(3)).transpose(0, 1), "transpose"),             # was an IndexError
    (lambda: tc.tensor(np.ones((2, 3))).flatten(1, 0), "flatten"),            # was silently shape (2, 1, 3)
    (lambda: tc.tensor(np.ones((2, 3))).flatten(5), "flatten"),               # was silently axis 1
    (lambda: tc.tensor(1.0).expand(-1), "expand"),                            # was an IndexError
    (lambda: tc.tensor(np.ones(3)).expand(-1, 3), "expand"),                  # was silently (3, 3)
    (lambda: tc.tensor(np.ones(3)).pad([]), "pad"),
    (lambda: tc.tensor(1.0).pad(-1), "pad"),
    (lambda: Tensor.cat([tc.tensor(1.0), tc.tensor(2.0)]), "cat"),               # was an IndexError
    (lambda: Tensor.stack([tc.tensor(1.0)], axis=2), "stack"),                # named unsqueeze
    (lambda: F.linear(tc.tensor(1.0), tc.tensor(1.0)), "linear"),                # was an IndexError
    (lambda: F.linear(tc.tensor(np.ones((2, 3))), tc.tensor(np.ones((4, 3))), tc.tensor(np.ones(3))), "linear"),
    (lambda: F.dropout(tc.tensor([1, 2]), 0.5), "dropout"),                   # was 1/(1 − p) truncated to int
    (lambda: F.batch_norm(tc.tensor(np.ones((2, 3))), np.zeros(2), np.ones(2)), "batch_norm"),
    (lambda: F.batch_norm(tc.tensor(np.ones((1, 0))), None, None, training=True), "batch_norm"),
    (lambda: F.cross_entropy(tc.tensor([[1, 2]]), np.array([0])), "cross_entropy"),  # was a loss truncated to int
    (lambda: F.cross_entropy(tc.tensor(np.zeros((0, 0))), np.zeros(0, np.int64)), "cross_entropy"),
    (lambda: F.one_hot(np.array([], np.int64), -2), "one_hot"),
    (lambda: tc.tensor(np.ones(2)).astype(str), "astype"),                    # was a Tensor of strings
], ids=lambda value: value if isinstance(value, str) else "")
def test_inputs_found_by_fuzzing_are_refused_by_name(call, name):
    with np.errstate(all="ignore"), pytest.raises((ValueError, TypeError), match=f"^{name}:"):
        call()


def test_inputs_found_by_fuzzing_that_are_valid_now_work():
    empty_rows = tc.tensor(np.zeros((0, 3)), requires_grad=True)
    assert empty_rows.amax(axis=1).shape == (0,)                           # was refused: the tensor is empty
    np.testing.assert_array_equal(tc.tensor(np.zeros((2, 0))).logsumexp(axis=1).numpy(), [-np.inf, -np.inf])
    assert tc.tensor(np.zeros((0, 0))).softmax(1).shape == (0, 0)             # was a NumPy reduction error
    assert tc.tensor(2.0).pad(1).item() == 2.0 and tc.tensor(3.0).argmax(0).item() == 0
    assert tc.tensor(3.0).transpose(0, -1).item() == 3.0 and tc.tensor(3.0).flatten().shape == (1,)
    assert tc.tensor([1, 2]).softmax().dtype == np.float64                    # integers: NumPy's float64
