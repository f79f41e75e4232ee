"""The PyTorch surface: one test per semantic decision (issue 15), and the torch-like names against NumPy
references written here."""
import warnings

import numpy as np
import pytest

import tinygrad_cnn as tc
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor

RNG = np.random.default_rng(0)


def test_max_along_a_dim_unpacks_into_values_and_indices():
    outputs = tc.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]])
    _, predicted = outputs.max(1)
    assert predicted.tolist() == [1, 0] and predicted.dtype == np.int64
    assert outputs.max(1)[1].tolist() == [1, 0]
    values, indices = tc.max(outputs, dim=0, keepdim=True)
    np.testing.assert_allclose(values.numpy(), [[0.9, 0.7, 0.2]], rtol=1e-7)
    assert indices.tolist() == [[1, 0, 0]] and type(outputs.min(1)).__name__ == "min"


def test_max_without_dim_is_0d_and_with_a_tensor_is_elementwise():
    a, b = tc.tensor([1.0, 5.0, -2.0]), tc.tensor([3.0, 4.0, -1.0])
    assert a.max().shape == () and a.max().item() == 5.0 and tc.min(a).item() == -2.0
    np.testing.assert_array_equal(tc.max(a, b).numpy(), [3.0, 5.0, -1.0])
    np.testing.assert_array_equal(tc.min(a, b).numpy(), [1.0, 4.0, -2.0])


def test_max_along_a_dim_sends_the_gradient_to_the_returned_index():
    x = tc.tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("call, ddof", [
    (lambda t: t.std(), 1), (lambda t: t.var(), 1), (lambda t: t.std(unbiased=False), 0),
    (lambda t: t.var(correction=0), 0), (lambda t: t.var(False), 0), (lambda t: t.var(0, True), 1),
    (lambda t: t.std(dim=0, correction=2), 2),
])
def test_std_and_var_are_unbiased_by_default(call, ddof):
    data = RNG.standard_normal((5, 3))
    result = call(tc.tensor(data))
    fn = np.std if "std" in str(call.__code__.co_names) else np.var
    axis = 0 if result.shape == (3,) else None
    np.testing.assert_allclose(result.numpy(), fn(data, axis=axis, ddof=ddof), rtol=1e-12)


def test_the_tensor_constructor_follows_torch_tensor():
    assert Tensor([1, 2, 3]).dtype == np.float32
    t = Tensor(3)
    assert t.shape == (3,) and t.dtype == np.float32
    assert Tensor(2, 4).shape == (2, 4)
    assert Tensor(np.ones(2)).dtype == np.float64  # float64 arrays stay float64 (a stated difference)


@pytest.mark.parametrize("data, dtype", [([1, 2, 3], np.int64), ([1.0, 2.0], np.float32), (3, np.int64),
                                         ([True, False], np.bool_), (np.arange(3, dtype=np.int32), np.int32),
                                         (np.ones(2), np.float64), (2.5, np.float32)])
def test_tc_tensor_infers_dtype_as_torch_tensor(data, dtype):
    t = tc.tensor(data)
    assert t.dtype == dtype and t.shape == np.shape(data)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


@pytest.mark.parametrize("ndim, dim", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_softmax_without_dim_follows_pytorchs_implicit_choice_and_warns(ndim, dim):
    x = tc.tensor(RNG.standard_normal((2, 3, 4, 5)[:ndim]))
    e = np.exp(x.numpy() - x.numpy().max(axis=dim, keepdims=True))
    for call in (lambda: F.softmax(x), lambda: tc.nn.Softmax()(x)):
        with pytest.warns(UserWarning, match="implicit dimension"):
            out = call()
        np.testing.assert_allclose(out.numpy(), e / e.sum(axis=dim, keepdims=True), rtol=1e-12)


def test_in_place_add_on_a_non_leaf_then_backward_as_in_a_residual_block():
    def block(x, in_place):
        tc.manual_seed(0)
        conv, bn = tc.nn.Conv2d(2, 2, 3, padding=1, bias=False), tc.nn.BatchNorm2d(2)
        out = bn(conv(x))
        if in_place:
            out += x              # out += self.shortcut(x)
            assert out._version == 1 and not out.is_leaf
        else:
            out = out + x
        F.relu(out).sum().backward()
        return conv.weight.grad.numpy(), x.grad.numpy()

    data = RNG.standard_normal((2, 2, 4, 4)).astype(np.float32)
    in_place = block(tc.tensor(data, requires_grad=True), True)
    out_of_place = block(tc.tensor(data, requires_grad=True), False)
    for a, b in zip(in_place, out_of_place):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_in_place_on_a_relu_output_raises_at_backward_as_in_pytorch():
    x = tc.tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    y = x.relu()                  # ReLU saves its output, as PyTorch's does
    y += x
    with pytest.raises(RuntimeError, match="ReLU: .*modified in place"):
        y.sum().backward()


def test_in_place_ops_on_a_non_leaf_match_the_out_of_place_gradient():
    data = RNG.standard_normal((2, 3))
    for change in (lambda t: t.mul_(3.0), lambda t: t.add_(t.detach(), alpha=2), lambda t: t.clamp_(-0.5, 0.5),
                   lambda t: t.masked_fill_(tc.tensor(data > 0), 0.0), lambda t: t.__setitem__(0, 7.0)):
        x = tc.tensor(data, requires_grad=True)
        y = x * 1.0
        change(y)
        (y * y).sum().backward()
        x2 = tc.tensor(data, requires_grad=True)
        z = x2 * 1.0
        with tc.no_grad():
            expected = z.clone()
            change(expected)
        np.testing.assert_allclose(y.numpy(), expected.numpy())
        assert x.grad is not None


def test_a_changed_saved_value_makes_backward_raise_naming_the_op():
    x = tc.tensor([0.5, -1.0], requires_grad=True)
    y = x.exp()
    y += 1                        # Exp saved its output
    with pytest.raises(RuntimeError, match="Exp: .*modified in place"):
        y.sum().backward()


def test_in_place_rules_on_leaves():
    w = tc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: in-place change of a leaf tensor that requires grad"):
        w.add_(1.0)
    with tc.no_grad():
        w.sub_(tc.tensor([0.5, 0.5]))
    np.testing.assert_array_equal(w.numpy(), [0.5, 1.5])
    i = tc.tensor([1, 2])
    with pytest.raises(TypeError, match="add_: the result's dtype float32 cannot be stored in this int64 tensor"):
        i.add_(0.5)
    with pytest.raises(RuntimeError, match="view of another tensor"):
        (w * 1).view(2, 1).mul_(2.0)


@pytest.mark.parametrize("name, args, reference", [
    ("zeros", ((2, 3),), lambda: np.zeros((2, 3))), ("ones", (2, 3), lambda: np.ones((2, 3))),
    ("full", ((2,), 7.0), lambda: np.full(2, 7.0)), ("eye", (3,), lambda: np.eye(3)),
    ("arange", (1, 7, 2), lambda: np.arange(1, 7, 2)), ("linspace", (0, 1, 5), lambda: np.linspace(0, 1, 5)),
])
def test_factories_take_dtype_device_and_requires_grad(name, args, reference):
    t = getattr(tc, name)(*args)
    np.testing.assert_array_equal(t.numpy(), reference())
    d = getattr(tc, name)(*args, dtype=tc.float64, device="cpu", requires_grad=True)
    assert d.dtype == np.float64 and d.requires_grad and d.device == tc.device("cpu")


def test_factory_default_dtypes_and_like_forms():
    assert tc.arange(3).dtype == np.int64 and tc.arange(3.0).dtype == np.float32
    assert tc.full((2,), 3).dtype == np.int64 and tc.full((2,), True).dtype == np.bool_
    tc.manual_seed(0)
    r = tc.randint(0, 5, (1000,))
    assert r.dtype == np.int64 and 0 <= r.numpy().min() and r.numpy().max() == 4
    base = tc.tensor(np.ones((2, 2)))
    for like in (tc.zeros_like, tc.ones_like, tc.rand_like, tc.randn_like, tc.empty_like):
        assert like(base).shape == (2, 2) and like(base).dtype == np.float64
    assert tc.full_like(base, 2.0, dtype=tc.float32).numpy().tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_from_numpy_and_as_tensor_share_memory():
    a = np.zeros(3)
    t = tc.from_numpy(a)
    a[0] = 5.0
    assert t.numpy()[0] == 5.0 and tc.as_tensor(a).numpy() is a and tc.as_tensor(t) is t
    assert tc.as_tensor([1, 2]).dtype == np.int64 and tc.is_tensor(t) and not tc.is_tensor(a)
    assert tc.numel(tc.zeros(2, 3)) == 6


@pytest.mark.parametrize("name, reference", [
    ("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("abs", np.abs), ("sin", np.sin), ("cos", np.cos),
    ("tanh", np.tanh), ("sigmoid", lambda a: 1 / (1 + np.exp(-a))), ("relu", lambda a: np.maximum(a, 0)),
    ("sum", np.sum), ("mean", np.mean), ("prod", np.prod), ("norm", np.linalg.norm),
])
def test_elementwise_and_reduction_functions_match_numpy_in_values_and_float64_gradients(name, reference):
    data = RNG.uniform(0.5, 2.0, (3, 4))
    out = getattr(tc, name)(tc.tensor(data.astype(np.float32)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), reference(data), rtol=1e-5)
    assert tc.gradcheck(lambda t: getattr(tc, name)(t), [tc.tensor(data, requires_grad=True)])


def test_dims_and_numpy_spellings_are_synonyms():
    data = RNG.standard_normal((2, 3, 4))
    x = tc.tensor(data)
    for name, ref in (("sum", np.sum), ("mean", np.mean), ("amax", np.max), ("argmax", np.argmax)):
        a = getattr(x, name)(dim=1, keepdim=True).numpy()
        b = getattr(x, name)(axis=1, keepdims=True).numpy()
        np.testing.assert_allclose(a, ref(data, axis=1, keepdims=True))
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="sum: got both dim and axis"):
        x.sum(dim=0, axis=1)


def test_tensor_methods_with_pytorch_signatures():
    x = tc.tensor(RNG.standard_normal((2, 3, 4)))
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.numel() == 24 and x.dim() == 3
    assert x.view(6, 4).shape == (6, 4) and x.view_as(tc.zeros(4, 6)).shape == (4, 6)
    assert x.flatten(1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    assert x.unsqueeze(dim=1).shape == (2, 1, 3, 4) and x[:, :1].squeeze(1).shape == (2, 4)
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and x.transpose(0, 2).shape == (4, 3, 2)
    assert x[:1].expand(5, 3, 4).shape == (5, 3, 4) and x[:1].expand_as(x).shape == x.shape
    assert [c.shape for c in x.chunk(2, dim=2)] == [(2, 3, 2)] * 2
    assert [s.shape for s in x.split([1, 2], dim=1)] == [(2, 1, 4), (2, 2, 4)]
    assert x.contiguous() is x and x.transpose(0, 1).contiguous().numpy().flags.c_contiguous
    assert x.clone().numpy() is not x.numpy() and x.detach().numpy() is x.numpy()
    m = tc.tensor(RNG.standard_normal((3, 4)))
    np.testing.assert_allclose(m.mm(m.t()).numpy(), m.numpy() @ m.numpy().T)
    np.testing.assert_allclose(tc.bmm(x, x.transpose(1, 2)).numpy(), x.numpy() @ x.numpy().transpose(0, 2, 1))
    assert (m.eq(m).all().item(), m.gt(m).any().item(), m.ge(m).all().item()) == (True, False, True)
    assert (x.float().dtype, x.double().dtype, x.long().dtype, x.int().dtype, x.bool().dtype) == \
        (np.float32, np.float64, np.int64, np.int32, np.bool_)
    assert x.type() == "tinygrad_cnn.DoubleTensor" and x.type(tc.float32).dtype == np.float32
    values, indices = m.topk(2, dim=1)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-m.numpy(), axis=1, kind="stable")[:, :2])
    assert m.sort(0).values.numpy().tolist() == np.sort(m.numpy(), axis=0).tolist()


def test_devices_are_cpu_only_and_the_rest_is_refused_clearly():
    x = tc.ones(2)
    assert x.device == tc.device("cpu") and str(x.device) == "cpu" and x.to("cpu") is x and x.cpu() is x
    assert x.to(tc.device("cpu"), tc.float64).dtype == np.float64 and x.to(tc.zeros(1, dtype=tc.int64)).dtype == np.int64
    assert not tc.cuda.is_available() and not tc.accelerator.is_available() and not tc.backends.mps.is_available()
    for call, what in ((lambda: x.cuda(), "CUDA"), (lambda: x.to("cuda"), "device 'cuda'"),
                       (lambda: tc.device("cuda:0"), "device 'cuda:0'"), (lambda: x.half(), "half precision"),
                       (lambda: tc.zeros(2, dtype=np.float16), "half precision"),
                       (lambda: tc.tensor([1j]), "complex"), (lambda: tc.zeros(2, device="cuda"), "device 'cuda'")):
        with pytest.raises((RuntimeError, TypeError), match=f"{what}.* not supported here"):
            call()
    with pytest.raises(AttributeError, match="float16: half precision is not supported here"):
        tc.float16


def test_dtype_names():
    assert (tc.float, tc.double, tc.long, tc.int, tc.bool) == (np.float32, np.float64, np.int64, np.int32, np.bool_)
    assert tc.zeros(1, dtype=tc.long).dtype == np.int64 and tc.get_default_dtype() == np.float32


def test_autograd_grad_leaves_dot_grad_alone_and_reaches_non_leaves():
    x = tc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * x
    y = (h * 3).sum()
    gx, gh = tc.autograd.grad(y, [x, h], retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), 6 * x.numpy())
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0, 3.0])
    assert x.grad is None
    (gw,) = tc.autograd.grad(h, x, grad_outputs=tc.tensor([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(gw.numpy(), [2.0, 0.0, 12.0])
    unused = tc.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        tc.autograd.grad((x * 2).sum(), [unused])
    assert tc.autograd.grad((x * 2).sum(), [unused], allow_unused=True) == (None,)


def test_set_grad_enabled_and_inference_mode():
    x = tc.tensor([1.0], requires_grad=True)
    with tc.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tc.is_grad_enabled()
    tc.set_grad_enabled(False)
    assert not tc.is_grad_enabled()
    tc.set_grad_enabled(True)
    with tc.inference_mode():
        assert not (x * 2).requires_grad

    @tc.inference_mode()
    def predict(t):
        return t * 2

    assert not predict(x).requires_grad and (x * 2).requires_grad


@pytest.mark.parametrize("call, message", [
    (lambda: tc.tensor([[1, 2], [3]]), "tensor: data must be a number or a rectangular"),
    (lambda: tc.zeros(2, dtype="cpu"), "zeros: 'cpu' is not a dtype"),
    (lambda: tc.ones(2).to("float64x"), "to: 'float64x' is not a dtype"),
    (lambda: tc.ones(2, 3).mm(tc.ones(2)), r"mm: expects two 2-D tensors, got shapes \(2, 3\) and \(2,\)"),
    (lambda: tc.ones(2, 3).bmm(tc.ones(2, 3)), "bmm: expects two 3-D tensors"),
    (lambda: tc.ones(2).max((0, 1)), "max: dim must be one int"),
    (lambda: tc.exp([1.0]), "exp: expected a Tensor as input, got list"),
    (lambda: tc.ones(2).topk(3), "topk: k=3 is out of range"),
    (lambda: tc.ones(2).clamp(), "clamp: at least one of min and max"),
    (lambda: tc.ones(2, 2).split([1, 2]), "split: sizes"),
    (lambda: tc.ones(3).expand(2, 4), r"expand: cannot expand shape \(3,\) to \(2, 4\)"),
    (lambda: Tensor("a", "b"), "Tensor: expected data"),
])
def test_bad_input_is_refused_naming_the_op(call, message):
    with pytest.raises((TypeError, ValueError, RuntimeError, IndexError), match=message):
        call()


@pytest.mark.parametrize("call, reference", [
    (lambda t, m, i: t.round(), lambda a, m, i: np.round(a)), (lambda t, m, i: t.floor(), lambda a, m, i: np.floor(a)),
    (lambda t, m, i: tc.ceil(t), lambda a, m, i: np.ceil(a)), (lambda t, m, i: t.isnan(), lambda a, m, i: np.isnan(a)),
    (lambda t, m, i: ~m, lambda a, m, i: ~m), (lambda t, m, i: m & (t > 0), lambda a, m, i: m & (a > 0)),
    (lambda t, m, i: m | (t > 0), lambda a, m, i: m | (a > 0)), (lambda t, m, i: m ^ (t > 0), lambda a, m, i: m ^ (a > 0)),
    (lambda t, m, i: i // 3, lambda a, m, i: i // 3), (lambda t, m, i: i % 3, lambda a, m, i: i % 3),
    (lambda t, m, i: 7 // i.clamp(min=1), lambda a, m, i: 7 // np.maximum(i, 1)),
    (lambda t, m, i: t.nonzero(), lambda a, m, i: np.argwhere(a)), (lambda t, m, i: tc.count_nonzero(m), lambda a, m, i: m.sum()),
    (lambda t, m, i: t.narrow(1, 1, 2), lambda a, m, i: a[:, 1:3]),
    (lambda t, m, i: t.index_select(0, tc.tensor([2, 0])), lambda a, m, i: a[[2, 0]]),
    (lambda t, m, i: tc.logical_not(m), lambda a, m, i: ~m), (lambda t, m, i: t.log1p(), lambda a, m, i: np.log1p(a)),
])
def test_no_gradient_helpers_and_bit_ops_match_numpy(call, reference):
    data = np.array([[0.0, 1.4, -2.6, 3.5], [np.nan, 0.2, 0.0, -0.5], [2.5, -1.5, 0.5, 9.0]])
    data = np.abs(data) if "log1p" in str(call.__code__.co_names) else data
    mask, ints = data > 1, np.array([[4, -5, 6, 0], [1, 2, 3, 7], [8, 9, -10, 11]])
    out = call(tc.tensor(data), tc.tensor(mask), tc.tensor(ints))
    expected = reference(data, mask, ints)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert out.dtype == np.asarray(expected).dtype or out.dtype == np.int64


def test_bit_ops_refuse_floats_naming_the_op():
    with pytest.raises(TypeError, match="&: needs bool or integer tensors, got dtype float32"):
        tc.ones(2) & tc.ones(2)


@pytest.mark.parametrize("call, message", [
    (lambda: tc.zeros("a"), r"zeros: a shape is made of ints, got \('a',\)"),
    (lambda: tc.ones(2, -1), r"ones: sizes must be non-negative, got \(2, -1\)"),
    (lambda: tc.eye(-2), "eye: sizes must be non-negative"),
    (lambda: tc.linspace(0, 1, -1), "linspace: steps must be non-negative"),
    (lambda: tc.zeros(2).fill_("a"), "fill_: cannot fill a float32 tensor with 'a'"),
    (lambda: tc.ones(2).view("x"), "reshape: a shape is made of ints"),
])
def test_factories_and_fills_refuse_bad_sizes_naming_the_op(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()
