"""Tensor: construction and dtype rules, attributes, factories, seeding, conversions, operand handling,
and in-place changes."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor


# ---- construction and dtypes -----------------------------------------------------------------------

@pytest.mark.parametrize("data, dtype, expected", [
    ([1.0, 2.0], None, np.float32),                       # Python floats: float32 by default
    (3.5, None, np.float32),
    (np.ones(2, np.float32), None, np.float32),
    (np.ones(2, np.float16), None, np.float32),
    (np.ones(2), None, np.float64),                       # float64 given as float64 stays
    (np.float64(2.0), None, np.float64),
    ([1.0, 2.0], tc.float64, np.float64),                 # or asked for
    (np.ones(2), np.float32, np.float32),
    ([1, 2], None, np.int64),                             # integers and bools stay
    (np.arange(3, dtype=np.int32), None, np.int32),
    (np.array([1, 2], np.uint8), None, np.uint8),
    ([True, False], None, np.bool_),
    (7, None, np.int64),
    ([[1, 2], [3, 4]], np.float32, np.float32),
])
def test_dtype_rules(data, dtype, expected):
    t = tc.tensor(data, dtype=dtype)
    assert t.dtype == expected
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(expected))


@pytest.mark.parametrize("data", [[1, 2], np.arange(3, dtype=np.int32), [True, False]])
def test_integer_and_bool_tensors_refuse_requires_grad(data):
    with pytest.raises(TypeError, match="cannot require grad"):
        tc.tensor(data, requires_grad=True)
    t = tc.tensor(data)
    with pytest.raises(TypeError, match=str(t.dtype)):
        t.requires_grad = True


def test_non_numeric_data_is_refused():
    with pytest.raises(TypeError, match="tensor: cannot hold data of dtype <U1"):
        tc.tensor(["a", "b"])
    with pytest.raises(TypeError, match="Tensor: cannot hold data"):
        Tensor(["a", "b"])


def test_tensor_from_a_tensor_copies_its_data_and_dtype():
    source = tc.tensor(np.arange(4.0), requires_grad=True)
    copy = tc.tensor(source)
    assert copy.dtype == np.float64 and not copy.requires_grad
    copy.numpy()[0] = 10.0
    assert source.numpy()[0] == 0.0
    assert tc.tensor(source, dtype=np.float32).dtype == np.float32


def test_attributes():
    t = tc.tensor(np.zeros((2, 3, 4)), requires_grad=True)
    assert (t.shape, t.ndim, t.numel(), t.dtype, t.size(), t.size(-1), t.dim()) == ((2, 3, 4), 3, 24, np.float64, (2, 3, 4), 4, 3)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.op is None
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.numpy()
    y = t * 2
    assert y.requires_grad and not y.is_leaf and y.op == "Mul"


# ---- factories and seeding ----------------------------------------------------------------------

@pytest.mark.parametrize("make, shape, values", [
    (lambda **kw: Tensor.zeros(2, 3, **kw), (2, 3), 0.0),
    (lambda **kw: Tensor.zeros((2, 3), **kw), (2, 3), 0.0),
    (lambda **kw: Tensor.ones([2, 3], **kw), (2, 3), 1.0),
    (lambda **kw: Tensor.ones(4, **kw), (4,), 1.0),
    (lambda **kw: Tensor.full((2, 2), 7.5, **kw), (2, 2), 7.5),
    (lambda **kw: Tensor.full(3, -1.0, **kw), (3,), -1.0),
    (lambda **kw: Tensor.empty(2, 3, **kw), (2, 3), None),
    (lambda **kw: Tensor.rand(2, 3, **kw), (2, 3), None),
    (lambda **kw: Tensor.randn((2, 3), **kw), (2, 3), None),
    (lambda **kw: Tensor.uniform(2, 3, low=-2.0, high=-1.0, **kw), (2, 3), None),
    (lambda **kw: Tensor.arange(0.0, 1.0, 0.25, **kw), (4,), np.arange(0.0, 1.0, 0.25)),
    (lambda **kw: Tensor.eye(3, **kw), (3, 3), np.eye(3)),
    (lambda **kw: Tensor.eye(2, 3, **kw), (2, 3), np.eye(2, 3)),
    (lambda **kw: Tensor.zeros_like(tc.tensor([[1.0], [2.0]]), **kw), (2, 1), 0.0),
    (lambda **kw: Tensor.ones_like(tc.tensor([[1.0, 2.0]]), **kw), (1, 2), 1.0),
], ids=["zeros-ints", "zeros-tuple", "ones-list", "ones-1d", "full", "full-int-shape", "empty", "rand", "randn",
        "uniform", "arange", "eye", "eye-rect", "zeros_like", "ones_like"])
@pytest.mark.parametrize("dtype", [None, tc.float64])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_factories(make, shape, values, dtype, requires_grad):
    t = make(dtype=dtype, requires_grad=requires_grad)
    assert t.shape == shape and t.requires_grad == requires_grad and t.is_leaf
    assert t.dtype == (np.float32 if dtype is None else dtype)
    if values is not None:
        np.testing.assert_array_equal(t.numpy(), np.broadcast_to(values, shape))


def test_like_factories_keep_the_source_dtype():
    assert Tensor.zeros_like(tc.tensor(np.ones(2))).dtype == np.float64
    assert Tensor.ones_like(tc.tensor([1, 2])).dtype == np.int64
    assert Tensor.zeros_like(tc.tensor(np.ones(2)), dtype=np.dtype(np.float32)).dtype == np.float32


def test_random_factories_draw_from_their_distributions():
    tc.manual_seed(0)
    assert 0 <= Tensor.rand(1000).numpy().min() and Tensor.rand(1000).numpy().max() < 1
    u = Tensor.uniform(1000, low=-2.0, high=-1.0).numpy()
    assert -2 <= u.min() and u.max() < -1
    n = Tensor.randn(10000).numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05


def test_arange_dtypes_follow_pytorch():
    assert Tensor.arange(5).dtype == np.int64 and Tensor.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert Tensor.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert Tensor.arange(3.0).dtype == np.float32
    with pytest.raises(TypeError, match="cannot require grad"):
        Tensor.arange(3, requires_grad=True)


def test_manual_seed_makes_random_draws_reproducible():
    def draw():
        return [Tensor.rand(3).numpy(), Tensor.randn(2, 2).numpy(), Tensor.uniform(4, low=-1.0).numpy()]

    tc.manual_seed(123)
    first = draw()
    tc.manual_seed(123)
    again = draw()
    tc.manual_seed(124)
    other = draw()
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


# ---- conversions and representation -----------------------------------------------------------

def test_repr_shows_values_dtype_and_op():
    leaf = tc.tensor([1.5, -2.0], requires_grad=True)
    assert repr(leaf) == "Tensor([ 1.5, -2. ], dtype=float32, requires_grad=True)"
    assert repr(tc.tensor([1, 2])) == "Tensor([1, 2], dtype=int64)"
    made = leaf * 2
    assert "3." in repr(made) and "float32" in repr(made) and "op=Mul" in repr(made)


def test_item_tolist_len():
    assert tc.tensor([[2.5]]).item() == 2.5 and isinstance(tc.tensor(3).item(), int)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tc.tensor([1.0, 2.0]).item()
    assert tc.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert len(tc.tensor(np.zeros((5, 2)))) == 5
    with pytest.raises(TypeError, match="0-d"):
        len(tc.tensor(1.0))


def test_python_number_conversions_and_comparison_with_none():
    assert float(tc.tensor([[2.5]])) == 2.5 and int(tc.tensor(3.9)) == 3
    with pytest.raises(ValueError, match="one element"):
        float(tc.tensor([1.0, 2.0]))
    t = tc.tensor([1.0])
    assert (t == None) is False and (t != None) is True  # noqa: E711
    with pytest.raises(TypeError):
        t < None


def test_requires_grad_in_place_setter():
    t = tc.tensor([1.0])
    assert t.requires_grad_() is t and t.requires_grad
    assert not t.requires_grad_(False).requires_grad


def test_numpy_conversion_protocol():
    t = tc.tensor([1.0, 2.0])
    copied = np.array(t)
    copied[0] = 9.0
    assert t.numpy()[0] == 1.0, "np.array(t) must copy"
    assert np.asarray(t) is t.numpy()
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_detach_shares_data_but_leaves_the_graph():
    x = tc.tensor(np.ones(3), requires_grad=True)
    y = (x * 2).detach()
    assert y.is_leaf and not y.requires_grad and y.op is None
    z = x.detach()
    assert z.numpy() is x.numpy()


def test_astype():
    x = tc.tensor([1.7, -2.2], requires_grad=True)
    as_int = x.astype(np.int64)
    assert as_int.dtype == np.int64 and as_int.tolist() == [1, -2]
    assert not as_int.requires_grad, "integer results never require grad"
    assert x.astype("float64").dtype == np.float64 and x.astype("float64").requires_grad


def test_setting_grad_to_none_clears_it():
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad = None
    upstream = np.array([0.3, -1.2], np.float32)
    (x * 3).backward(upstream)
    np.testing.assert_allclose(x.grad.numpy(), 3 * upstream)


# ---- operands: scalars, arrays, reflected forms ---------------------------------------------------

@pytest.mark.parametrize("expression, expected", [
    (lambda x: 2 - x, lambda a: 2 - a),
    (lambda x: 2 + x, lambda a: 2 + a),
    (lambda x: 2 * x, lambda a: 2 * a),
    (lambda x: 2 / x, lambda a: 2 / a),
    (lambda x: 2 ** x, lambda a: 2 ** a),
    (lambda x: np.ones(3) * x, lambda a: np.ones(3) * a),
    (lambda x: np.ones(3) - x, lambda a: np.ones(3) - a),
    (lambda x: np.arange(6.0).reshape(2, 3) @ x, lambda a: np.arange(6.0).reshape(2, 3) @ a),
    (lambda x: np.float64(0.5) * x, lambda a: 0.5 * a),
], ids=["rsub", "radd", "rmul", "rtruediv", "rpow", "array-rmul", "array-rsub", "array-rmatmul", "np-scalar"])
def test_reflected_operations_go_through_tensor(expression, expected):
    values = np.array([0.5, 1.5, -2.0])
    x = tc.tensor(values, requires_grad=True)
    result = expression(x)
    assert isinstance(result, Tensor) and result.requires_grad
    np.testing.assert_allclose(result.numpy(), expected(values))


@pytest.mark.parametrize("other", [2.5, 3, True, np.float64(2.0), np.int64(2), np.arange(1, 4), [1, 2, 3], [1.5, 2, 3],
                                   tc.tensor([1, 2, 3])],
                         ids=["float", "int", "bool", "np.float64", "np.int64", "int-array", "int-list", "float-list",
                              "int-tensor"])
def test_float32_tensor_with_numbers_and_integer_data_stays_float32(other):
    x = tc.tensor(np.ones(3, np.float32))
    for result in (x + other, other * x, x / other, x - other):
        assert result.dtype == np.float32


def test_integer_tensor_with_numbers_follows_pytorch_promotion():
    ints = tc.tensor(np.arange(3, dtype=np.int32))
    assert (ints + 2).dtype == np.int32
    assert (ints * 1.5).dtype == np.float32
    assert (ints == 1).dtype == np.bool_
    assert (ints / 2).dtype == np.float32 and (ints / 2).tolist() == [0.0, 0.5, 1.0]
    assert (tc.tensor([True, False]) + 2).tolist() == [3, 2]


@pytest.mark.parametrize("expression", [lambda x, ints: x @ ints, lambda x, ints: ints @ x,
                                        lambda x, ints: tc.where(ints > 0, x, ints)], ids=["matmul", "rmatmul", "where"])
def test_integer_operands_of_matmul_and_where_take_the_float_dtype(expression):
    x, ints = tc.tensor(np.ones((3, 3), np.float32)), np.arange(9).reshape(3, 3)
    assert expression(x, ints).dtype == np.float32


def test_float64_array_operand_keeps_float64():
    x = tc.tensor(np.ones(3, np.float32))
    assert (x + np.ones(3)).dtype == np.float64


# ---- in-place changes ---------------------------------------------------------------------------

INPLACE = [
    pytest.param(lambda t: t.__iadd__(1.0), lambda a: a + 1, id="+="),
    pytest.param(lambda t: t.__isub__(tc.tensor([1.0, 2.0, 3.0])), lambda a: a - [1, 2, 3], id="-="),
    pytest.param(lambda t: t.__imul__(2.0), lambda a: a * 2, id="*="),
    pytest.param(lambda t: t.__itruediv__(np.array([2.0, 4.0, 8.0])), lambda a: a / [2, 4, 8], id="/="),
    pytest.param(lambda t: t.__setitem__(1, 7.0), lambda a: np.array([a[0], 7.0, a[2]]), id="setitem"),
    pytest.param(lambda t: t.zero_(), lambda a: 0 * a, id="zero_"),
    pytest.param(lambda t: t.fill_(3.0), lambda a: 0 * a + 3, id="fill_"),
    pytest.param(lambda t: t.copy_(np.array([4.0, 5.0, 6.0])), lambda a: np.array([4.0, 5.0, 6.0]), id="copy_"),
]


@pytest.mark.parametrize("change, expected", INPLACE)
def test_inplace_change_refused_on_tensor_requiring_grad(change, expected):
    x = tc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place .*requires grad.*no_grad"):
        change(x)
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("change, expected", INPLACE)
def test_inplace_change_allowed_under_no_grad_and_without_grad(change, expected):
    values = np.array([1.0, 2.0, 3.0], np.float32)
    x, plain = tc.tensor(values, requires_grad=True), tc.tensor(values)
    with tc.no_grad():
        change(x)
    change(plain)
    np.testing.assert_allclose(x.numpy(), expected(values))
    np.testing.assert_allclose(plain.numpy(), expected(values))
    assert x.requires_grad and x.dtype == np.float32


@pytest.mark.parametrize("change", [p.values[0] for p in INPLACE], ids=[p.id for p in INPLACE])
def test_backward_refuses_an_input_modified_in_place_after_it_was_saved(change):
    x = tc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x  # Mul saves x for its backward
    with tc.no_grad():
        change(x)
    with pytest.raises(RuntimeError, match=r"Mul.*modified in place"):
        y.backward(np.array([0.5, -1.0, 2.0]))


def test_augmented_assignment_keeps_the_same_tensor():
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    alias = x
    with tc.no_grad():
        x -= 0.5
    assert x is alias and x.requires_grad and x.is_leaf


@pytest.mark.parametrize("op, name", [
    (lambda x: x.exp(), "Exp"),                    # saves its output
    (lambda x: x.amax(axis=0), "Max"),              # saves an array its output is a squeezed view of
])
def test_backward_refuses_a_saved_output_modified_in_place(op, name):
    y = op(tc.tensor([[0.1, 0.2], [0.4, -0.3]], requires_grad=True))
    with tc.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match=f"{name}.*modified in place"):
        y.backward(np.random.default_rng(0).standard_normal(y.shape))


def test_backward_refuses_a_saved_constant_modified_in_place():
    x = tc.tensor([0.1, 0.2], requires_grad=True)
    constant = tc.tensor([2.0, 3.0])
    z = x * constant  # a constant input saved for x's gradient
    constant[0] = 0.0
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward(np.array([1.5, -0.5]))


@pytest.mark.parametrize("change", [
    lambda x: x.detach().fill_(0.0),
    lambda x: x.reshape(3, 1).__setitem__(0, 5.0),
    lambda x: x[1:].zero_(),
    lambda x: x.__setitem__(0, 5.0),
], ids=["through-detach", "through-reshape", "through-slice", "directly"])
def test_inplace_change_through_a_view_is_caught_too(change):
    """detach() and view results share the version counter of the memory they view, as in PyTorch."""
    x = tc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp() * x  # Mul saves x
    with tc.no_grad():
        change(x)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward(np.array([0.5, -1.0, 2.0]))


def test_backward_refuses_a_where_mask_modified_in_place():
    mask = tc.tensor([True, False])
    y = tc.where(mask, tc.tensor([1.0, 2.0], requires_grad=True), 0.0)
    mask[0] = False
    with pytest.raises(RuntimeError, match="Where.*modified in place"):
        y.backward(np.array([0.5, -2.0]))


def test_inplace_change_of_unsaved_input_does_not_disturb_backward():
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    y = x + 1  # Add saves nothing
    with tc.no_grad():
        x *= 5
    upstream = np.array([0.7, -0.3], np.float32)
    y.backward(upstream)
    np.testing.assert_allclose(x.grad.numpy(), upstream)


def test_data_is_a_tensor_sharing_memory_that_records_no_graph():
    w = tc.tensor(np.arange(3.0), requires_grad=True)
    d = w.data
    assert isinstance(d, Tensor) and d.is_leaf and not d.requires_grad
    assert d.numpy() is w.numpy()
    d += 1.0
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0, 3.0])
    assert w._version == 0, "a change made through .data is invisible to autograd, as PyTorch's"


def test_data_setter_takes_a_tensor_as_in_a_hand_written_sgd_step():
    w = tc.tensor(np.array([1.0, -2.0]), requires_grad=True)
    (w * w).sum().backward()
    w.data = w.data - 0.1 * w.grad
    np.testing.assert_allclose(w.numpy(), [1.0 - 0.2, -2.0 + 0.4])
    assert w.requires_grad and w.is_leaf and isinstance(w.numpy(), np.ndarray)
    w.data = np.zeros(5)  # the shape may change, as in PyTorch
    assert w.shape == (5,)


@pytest.mark.parametrize("value, message", [([1.0, 2.0], "expected a Tensor or an ndarray, got list"),
                                            (np.array([1, 2]), "a tensor that requires grad must hold floating data")])
def test_data_setter_refuses_what_pytorch_refuses(value, message):
    w = tc.tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(TypeError, match=f"data: {message}"):
        w.data = value
