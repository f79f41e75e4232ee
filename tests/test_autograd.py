"""Graph semantics (accumulation, shared tensors, retain_graph, release, grad mode, detach, deep chains)
and the user-facing Function API."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor

from helpers import assert_forward_backward

@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---- graph semantics ------------------------------------------------------------------------------

def test_gradients_accumulate_across_backward_calls(rng):
    x = tc.tensor(rng.standard_normal(3), requires_grad=True)
    g1, g2 = rng.standard_normal(3), rng.standard_normal(3)
    (x * 2).backward(g1)
    (x * x).backward(g2)
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1 + 2 * x.numpy() * g2)


@pytest.mark.parametrize("combine, reference, reference_grad", [
    (lambda b: b + b * 3, lambda x: 8 * x, lambda g, x: 8 * g),
    (lambda b: b * 3 + b, lambda x: 8 * x, lambda g, x: 8 * g),
    (lambda b: (b * b).exp() + b.sum(), lambda x: np.exp(4 * x * x) + 2 * x.sum(),
     lambda g, x: g * np.exp(4 * x * x) * 8 * x + 2 * g.sum()),
], ids=["used-twice", "used-twice-reversed", "fan-out-of-three"])
def test_tensor_used_twice_gets_every_path(rng, combine, reference, reference_grad):
    """A diamond: b = 2x feeds branches that meet again; b's gradient must be complete before it flows to x."""
    assert_forward_backward(lambda x: combine(x * 2), [rng.standard_normal(3)], reference,
                            lambda g, x: [reference_grad(g, x)], rng)


def test_retain_graph_allows_a_second_backward(rng):
    x = tc.tensor(rng.standard_normal(4), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())


def test_second_backward_through_released_graph_raises(rng):
    x = tc.tensor(rng.standard_normal(4), requires_grad=True)
    y = x.exp() * 3
    y.backward(rng.standard_normal(4))
    with pytest.raises(RuntimeError, match="released.*retain_graph=True"):
        y.backward(rng.standard_normal(4))


def test_released_graph_shared_by_a_second_loss_raises(rng):
    x = tc.tensor(rng.standard_normal(4), requires_grad=True)
    hidden = x.tanh()
    hidden.sum().backward()
    with pytest.raises(RuntimeError, match="Tanh.*released"):
        (hidden * 2).sum().backward()


def test_backward_of_non_scalar_without_grad_is_refused():
    y = tc.tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"non-scalar.*\(2, 3\).*grad="):
        y.backward()


def test_backward_grad_of_wrong_shape_is_refused():
    y = tc.tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.array([0.3, -1.1, 2.0]))


def test_backward_on_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (tc.tensor([1.0]) * 2).backward()


def test_backward_of_a_scalar_seeds_one_and_grad_matches_input_dtype(rng):
    x = tc.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == (3,)
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)


def test_only_leaves_requiring_grad_get_gradients(rng):
    x = tc.tensor(rng.standard_normal(3), requires_grad=True)
    constant = tc.tensor(rng.standard_normal(3))
    hidden = x * constant
    (hidden * 2).backward(rng.standard_normal(3))
    assert constant.grad is None and hidden.grad is None and x.grad is not None


# ---- grad mode --------------------------------------------------------------------------------------

def test_no_grad_context_records_nothing_and_restores_the_mode():
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    assert tc.is_grad_enabled()
    with tc.no_grad():
        assert not tc.is_grad_enabled()
        y = x * 2
        with tc.enable_grad():
            assert tc.is_grad_enabled()
            z = x * 2
        assert not tc.is_grad_enabled()
    assert tc.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and z.op == "Mul"


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with tc.no_grad():
            raise KeyError
    assert tc.is_grad_enabled()


@pytest.mark.parametrize("decorate", [tc.no_grad(), tc.no_grad], ids=["no_grad()", "no_grad"])
def test_no_grad_as_decorator(decorate):
    @decorate
    def double(t):
        """Doubles."""
        return t * 2, tc.is_grad_enabled()

    y, enabled = double(tc.tensor([1.0], requires_grad=True))
    assert not enabled and not y.requires_grad and tc.is_grad_enabled()
    assert double.__doc__ == "Doubles."


@pytest.mark.parametrize("decorate", [tc.enable_grad(), tc.enable_grad], ids=["enable_grad()", "enable_grad"])
def test_enable_grad_as_decorator(decorate):
    @decorate
    def double(t):
        return t * 2

    with tc.no_grad():
        y = double(tc.tensor([1.0], requires_grad=True))
        assert not tc.is_grad_enabled()
    assert y.requires_grad


def test_detach_blocks_the_gradient_of_its_branch(rng):
    x = tc.tensor(rng.standard_normal(3), requires_grad=True)
    upstream = rng.standard_normal(3)
    (x * x.detach()).backward(upstream)  # d/dx of x·c with c = x held constant
    np.testing.assert_allclose(x.grad.numpy(), x.numpy() * upstream)


def test_ten_thousand_op_chain_backward_does_not_recurse():
    x = tc.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward(np.array([2.0]))
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * 1.0001 ** 10_000, rtol=1e-3)


# ---- the Function API -------------------------------------------------------------------------------

class Scale(tc.Function):
    """y = x · factor + offset, with non-Tensor arguments passed through and needs_input_grad recorded."""

    seen = []

    @staticmethod
    def forward(ctx, x, offset, factor, label, shape):
        Scale.seen.append((type(x), type(offset), factor, label, shape))
        ctx.factor = factor  # arbitrary attributes are allowed on ctx
        return (x * factor + offset).reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        Scale.seen.append(ctx.needs_input_grad)
        grad_offset = grad.reshape(-1).sum() if ctx.needs_input_grad[1] else None
        return grad.reshape(-1) * ctx.factor, grad_offset, None, None, None


def test_function_passes_non_tensor_arguments_through_and_reports_needs_input_grad(rng):
    Scale.seen.clear()
    x = tc.tensor(rng.standard_normal(6), requires_grad=True)
    offset = tc.tensor(np.float64(0.25))  # a constant Tensor: no gradient wanted
    y = Scale.apply(x, offset, 3, "label", (2, 3))
    assert y.shape == (2, 3) and y.op == "Scale"
    upstream = rng.standard_normal((2, 3))
    y.backward(upstream)
    assert Scale.seen == [(np.ndarray, np.ndarray, 3, "label", (2, 3)), (True, False, False, False, False)]
    np.testing.assert_allclose(x.grad.numpy(), 3 * upstream.reshape(-1))
    assert offset.grad is None


def test_backward_may_return_none_for_an_input(rng):
    class FirstOnly(tc.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    a, b = (tc.tensor(rng.standard_normal(2), requires_grad=True) for _ in range(2))
    upstream = rng.standard_normal(2)
    FirstOnly.apply(a, b).backward(upstream)
    np.testing.assert_allclose(a.grad.numpy(), upstream)
    assert b.grad is None


def test_gradient_of_wrong_shape_names_the_function_and_both_shapes():
    class Broken(tc.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.sum(axis=0)

    y = Broken.apply(tc.tensor(np.ones((3, 2)), requires_grad=True))
    with pytest.raises(RuntimeError, match=r"Broken.*\(2,\).*\(3, 2\)"):
        y.backward(np.random.default_rng(1).standard_normal((3, 2)))


def test_wrong_number_of_gradients_names_the_function():
    class TooMany(tc.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match="TooMany.*2 gradients for 1"):
        TooMany.apply(tc.tensor([1.0], requires_grad=True)).backward(np.array([-0.7]))


class SumAndProduct(tc.Function):
    """Two outputs: (a + b, a · b)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a + b, a * b

    @staticmethod
    def backward(ctx, grad_sum, grad_product):
        a, b = ctx.saved_tensors
        return grad_sum + grad_product * b, grad_sum + grad_product * a


@pytest.mark.parametrize("use", ["both", "first", "second"])
def test_multi_output_function(rng, use):
    a0, b0 = rng.standard_normal(3), rng.standard_normal(3)
    w = rng.standard_normal(3)  # weights for the second output
    pick = {"both": (1.0, 1.0), "first": (1.0, 0.0), "second": (0.0, 1.0)}[use]

    def loss(a, b):
        total, product = SumAndProduct.apply(a, b)
        parts = ([total] if pick[0] else []) + ([product * w] if pick[1] else [])
        return sum(parts[1:], parts[0])

    assert_forward_backward(loss, [a0, b0], lambda a, b: pick[0] * (a + b) + pick[1] * a * b * w,
                            lambda g, a, b: [g * (pick[0] + pick[1] * w * b), g * (pick[0] + pick[1] * w * a)], rng)
    assert tc.gradcheck(loss, [tc.tensor(a0, requires_grad=True), tc.tensor(b0, requires_grad=True)])


def test_function_without_grad_inputs_records_no_graph():
    y = SumAndProduct.apply(tc.tensor([1.0]), tc.tensor([2.0]))
    assert all(t.is_leaf and not t.requires_grad for t in y)


def test_saved_tensors_after_release_raise():
    captured = {}

    class Keep(tc.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            captured["ctx"] = ctx
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad

    Keep.apply(tc.tensor([1.0], requires_grad=True)).backward(np.array([-0.7]))
    with pytest.raises(RuntimeError, match="Keep.*released"):
        captured["ctx"].saved_tensors


class _FreshGradient(tc.Function):
    """y = 2x whose backward returns a new array and notes its id (not the array: that would be a reference)."""
    returned_ids = []

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        fresh = 2 * grad
        _FreshGradient.returned_ids.append(id(fresh))
        return fresh


class _KeptGradient(tc.Function):
    """y = 2x whose backward also keeps the gradient it returns, in ctx."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        ctx.kept = 2 * grad
        return ctx.kept


def test_a_leaf_keeps_a_fresh_gradient_without_copying_it():
    x = tc.tensor(np.arange(4.0), requires_grad=True)
    _FreshGradient.apply(x).backward(np.array([1.0, -2.0, 3.0, 0.5]))
    assert id(x.grad.numpy()) == _FreshGradient.returned_ids[-1]
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0, 1.0])


def test_a_gradient_someone_else_holds_is_copied_into_the_leaf():
    upstream = np.array([1.0, -2.0, 3.0])
    a, b = tc.tensor(np.ones(3), requires_grad=True), tc.tensor(np.ones(3), requires_grad=True)
    (a + b).backward(upstream)                        # Add passes the upstream array on, to both leaves
    c = tc.tensor(np.ones(3), requires_grad=True)
    _KeptGradient.apply(c).backward(upstream)         # the backward keeps what it returns
    d = tc.tensor(np.ones((2, 3)), requires_grad=True)
    d[0].backward(upstream)                           # a view of a fresh array
    for leaf in (a, b, c, d):
        leaf.grad.numpy()[...] *= 10                          # in place, as a clipping optimizer would
    np.testing.assert_array_equal(upstream, [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(a.grad.numpy(), [10.0, -20.0, 30.0])
    np.testing.assert_array_equal(b.grad.numpy(), [10.0, -20.0, 30.0])
    np.testing.assert_array_equal(c.grad.numpy(), [20.0, -40.0, 60.0])
    np.testing.assert_array_equal(d.grad.numpy(), [[10.0, -20.0, 30.0], [0.0, 0.0, 0.0]])


class _Scale(tc.Function):
    @staticmethod
    def forward(ctx, x, factor=2.0):
        ctx.factor = factor
        return x * (factor.numpy() if isinstance(factor, Tensor) else factor)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def test_a_tensor_passed_to_apply_by_keyword_is_refused_not_silently_ungraded():
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="_Scale.apply: Tensor argument.*factor.*positionally"):
        _Scale.apply(x, factor=tc.tensor([3.0], requires_grad=True))
    assert _Scale.apply(x, factor=3.0).requires_grad  # constants by keyword are fine


def test_apply_needs_a_tensor_argument():
    with pytest.raises(TypeError, match=r"_Scale.apply: needs at least one Tensor argument, got \(ndarray\)"):
        _Scale.apply(np.ones(2))


def test_op_results_are_plain_tensors_recognised_by_their_base_class():
    from tinygrad_cnn.autograd import TensorBase
    p = tc.nn.Parameter(np.ones(2))
    y = p * 2
    assert type(y) is Tensor and isinstance(p, TensorBase) and isinstance(y, TensorBase)



def test_backward_may_return_extra_trailing_nones():
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    _Scale.apply(x).sum().backward()  # one forward argument; backward returns (grad, None), as PyTorch allows
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


class _WrittenForTorch(tc.Function):
    @staticmethod
    def forward(ctx, x):
        return x.mm(x.t())  # PyTorch's Tensor methods: an ndarray has neither


def test_a_forward_written_for_torch_tensors_is_told_it_receives_arrays():
    with pytest.raises(AttributeError, match=r"_WrittenForTorch.forward: .*has no attribute 'mm'.*NumPy arrays"):
        _WrittenForTorch.apply(Tensor(np.ones((2, 2))))
