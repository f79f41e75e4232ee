"""gradcheck must pass correct gradients and catch wrong ones, saying where and by how much."""
import re

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor


class CubeOffByTwo(tc.Function):
    """y = x³ with a backward that returns twice the true gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * (3 * x * x * grad)


def _inputs(*shapes, dtype=np.float64):
    rng = np.random.default_rng(0)
    return [tc.tensor(rng.uniform(0.5, 1.5, s).astype(dtype), requires_grad=True) for s in shapes]


def _reported(message):
    """(input, index, analytical, numerical) parsed from a GradcheckError message."""
    match = re.search(r"input (\d+) .*index (\(.*?\)): analytical (\S+), numerical (\S+);.*largest error", message)
    assert match, message
    return int(match[1]), eval(match[2]), float(match[3]), float(match[4])


@pytest.mark.parametrize("reduce", [lambda y: y.sum(), lambda y: y], ids=["scalar-output", "tensor-output"])
def test_backward_off_by_two_fails_and_the_error_says_where(reduce):
    (x,) = _inputs((2, 3))
    with pytest.raises(tc.GradcheckError) as error:
        tc.gradcheck(lambda t: reduce(CubeOffByTwo.apply(t)), [x])
    which, index, analytical, numerical = _reported(str(error.value))
    assert which == 0 and index == (0, 0)
    if reduce(tc.tensor([1.0])).shape == ():  # scalar output: the values are the Jacobian entries themselves
        assert numerical == pytest.approx(3 * x.numpy()[index] ** 2, rel=1e-6)
    assert analytical == pytest.approx(2 * numerical, rel=1e-6)


def test_error_names_the_input_with_the_wrong_gradient():
    a, b = _inputs((3,), (2, 2))
    with pytest.raises(tc.GradcheckError) as error:
        tc.gradcheck(lambda p, q: p.sum() * CubeOffByTwo.apply(q), [a, b])
    which, index, analytical, numerical = _reported(str(error.value))
    assert which == 1 and index == (0, 0) and "shape (2, 2)" in str(error.value)
    assert analytical == pytest.approx(2 * numerical, rel=1e-6)


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(tc.GradcheckError, AssertionError)


def test_raise_exception_false_returns_false():
    assert tc.gradcheck(lambda t: CubeOffByTwo.apply(t), _inputs((4,)), raise_exception=False) is False


@pytest.mark.parametrize("fn", [lambda t: t ** 3, lambda t: (t ** 3).sum(), lambda t: (t @ t.T).log_softmax()],
                         ids=["tensor-output", "scalar-output", "composite"])
def test_true_on_correct_gradients(fn):
    assert tc.gradcheck(fn, _inputs((2, 3))) is True


def test_inputs_not_requiring_grad_are_left_alone():
    (x,) = _inputs((3,))
    constant = tc.tensor(np.array([1.0, -2.0, 0.5]))
    assert tc.gradcheck(lambda a, c: a * c, [x, constant])
    assert constant.grad is None


def test_float32_inputs_warn():
    with pytest.warns(UserWarning, match="float64"):
        assert tc.gradcheck(lambda t: t * 2, _inputs((3,), dtype=np.float32), eps=1e-2, atol=1e-2)


def test_no_input_requiring_grad_is_refused():
    with pytest.raises(ValueError, match="no input requires grad"):
        tc.gradcheck(lambda t: t * 2, [tc.tensor(np.ones(2))])


def test_gradcheck_restores_inputs_and_their_gradients():
    (x,) = _inputs((2, 2))
    before = x.numpy().copy()
    x.grad = tc.tensor(np.full((2, 2), 7.0))
    tc.gradcheck(lambda t: t.exp(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    np.testing.assert_array_equal(x.grad.numpy(), 7.0)


def test_non_contiguous_input_is_perturbed_in_place():
    x = tc.tensor(np.random.default_rng(1).uniform(0.5, 1.5, (3, 2)).T, requires_grad=True)
    assert not x.numpy().flags.c_contiguous  # the constructor keeps the transposed layout
    assert tc.gradcheck(lambda t: t.sqrt() * t, [x])
    with pytest.raises(tc.GradcheckError):
        tc.gradcheck(lambda t: CubeOffByTwo.apply(t), [x])


def test_fast_mode_checks_one_directional_derivative_with_pytorchs_keywords():
    x = tc.tensor(np.random.default_rng(3).standard_normal((3, 4)), requires_grad=True)
    assert tc.gradcheck(lambda t: (t * t).sin(), x, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)
    assert tc.autograd.gradcheck(lambda t: t.exp().sum(1), (x,), fast_mode=True, nondet_tol=0.0)

    class WrongSquare(tc.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return 3 * a * grad

    assert tc.gradcheck(WrongSquare.apply, [x], fast_mode=True, raise_exception=False) is False
    with pytest.raises(tc.GradcheckError, match="fast_mode"):
        tc.gradcheck(WrongSquare.apply, [x], fast_mode=True)
    with pytest.raises(NotImplementedError, match="not supported here"):
        tc.gradcheck(WrongSquare.apply, [x], check_batched_grad=True)
