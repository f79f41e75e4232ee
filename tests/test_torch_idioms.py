"""Everyday PyTorch idioms beyond the core surface: each name against a NumPy or loop reference written
here, in float32, and its gradient by gradcheck in float64 where it is differentiable."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
IDX = np.array([[0, 2, 1, 3], [2, 0, 0, 1]])


def _scatter_reference(base, dim, index, src, add):
    out = base.copy()
    for pos in np.ndindex(*index.shape):
        target = list(pos)
        target[dim] = index[pos]
        value = src if np.ndim(src) == 0 else src[pos]
        out[tuple(target)] = out[tuple(target)] + value if add else value
    return out


def _einsum_loop_ij_jk(a, b):
    return np.array([[sum(a[i, j] * b[j, k] for j in range(a.shape[1])) for k in range(b.shape[1])]
                     for i in range(a.shape[0])])


# (name, the call on Tensors, the same on arrays, the inputs' shapes): every one differentiable
DIFFERENTIABLE = [
    ("flip", lambda t: t.flip(0, 1), lambda a: a[::-1, ::-1], [(3, 4)]),
    ("flip list", lambda t: tc.flip(t, [1]), lambda a: a[:, ::-1], [(3, 4)]),
    ("roll", lambda t: t.roll(1, 0), lambda a: np.concatenate([a[-1:], a[:-1]]), [(3, 4)]),
    ("roll dims", lambda t: tc.roll(t, shifts=(-1, 2), dims=(0, 1)), lambda a: np.roll(a, (-1, 2), (0, 1)), [(3, 4)]),
    ("roll flat", lambda t: t.roll(5), lambda a: np.roll(a, 5), [(3, 4)]),
    ("tril", lambda t: tc.tril(t), lambda a: np.where(np.arange(4) <= np.arange(3)[:, None], a, 0), [(3, 4)]),
    ("triu", lambda t: t.triu(1), lambda a: np.where(np.arange(4) >= np.arange(3)[:, None] + 1, a, 0), [(3, 4)]),
    ("diag of vector", lambda t: tc.diag(t), lambda a: np.diag(a), [(4,)]),
    ("diag offset", lambda t: t.diag(-1), lambda a: np.diag(a, -1), [(3,)]),
    ("diag of matrix", lambda t: t.diag(1), lambda a: np.array([a[i, i + 1] for i in range(3)]), [(3, 4)]),
    ("diagonal dims", lambda t: t.diagonal(0, 1, 2), lambda a: np.stack([np.diag(m) for m in a]), [(2, 3, 4)]),
    ("trace", lambda t: t.trace(), lambda a: sum(a[i, i] for i in range(3)), [(3, 4)]),
    ("outer", lambda t, u: tc.outer(t, u), lambda a, b: a[:, None] * b[None, :], [(3,), (4,)]),
    ("masked_select", lambda t: t.masked_select(tc.tensor(A > 0)), lambda a: a[A > 0], [(3, 4)]),
    ("repeat_interleave", lambda t: t.repeat_interleave(2, dim=0), lambda a: np.repeat(a, 2, 0), [(3, 4)]),
    ("repeat_interleave flat", lambda t: tc.repeat_interleave(t, tc.tensor([1, 0, 2])),
     lambda a: np.repeat(a, [1, 0, 2]), [(3,)]),
    ("erf", lambda t: tc.erf(t), np.vectorize(math.erf), [(3, 4)]),
    ("scatter", lambda t, s: t.scatter(1, tc.tensor(IDX[:, :2]), s),
     lambda a, s: _scatter_reference(a, 1, IDX[:, :2], s, False), [(2, 4), (2, 3)]),
    ("scatter_add", lambda t, s: tc.scatter_add(t, 0, tc.tensor(IDX[:, :3] % 3), s),
     lambda a, s: _scatter_reference(a, 0, IDX[:, :3] % 3, s, True), [(3, 4), (2, 3)]),
    ("index_add", lambda t, s: t.index_add(0, tc.tensor([2, 0, 2]), s, alpha=2),
     lambda a, s: a + np.stack([2 * s[1], 0 * s[0], 2 * (s[0] + s[2])]), [(3, 4), (3, 4)]),
    ("einsum matmul", lambda t, u: tc.einsum("ij,jk->ik", t, u), _einsum_loop_ij_jk, [(3, 4), (4, 2)]),
    ("einsum implicit", lambda t, u: tc.einsum("ij,jk", [t, u]), _einsum_loop_ij_jk, [(3, 4), (4, 2)]),
    ("einsum batch ellipsis", lambda t, u: tc.einsum("...ij,...kj->...ik", t, u),
     lambda a, b: np.stack([_einsum_loop_ij_jk(x, y.T) for x, y in zip(a, b)]), [(2, 3, 4), (2, 2, 4)]),
    ("einsum sum out", lambda t: tc.einsum("ij->j", t), lambda a: a.sum(0), [(3, 4)]),
    ("einsum full", lambda t, u: tc.einsum("ij,ij->", t, u), lambda a, b: (a * b).sum(), [(3, 4), (3, 4)]),
    ("atan", lambda t: t.atan(), lambda a: np.array([math.atan(v) for v in a.flat]).reshape(a.shape), [(3, 4)]),
    ("atan2", lambda t, u: tc.atan2(t, u), lambda a, b: np.vectorize(math.atan2)(a, b), [(3, 4), (4,)]),
    ("lerp", lambda t, u: tc.lerp(t, u, 0.25), lambda a, b: 0.75 * a + 0.25 * b, [(3, 4), (3, 4)]),
    ("addmm", lambda c, t, u: tc.addmm(c, t, u, beta=0.5, alpha=2), lambda c, a, b: 0.5 * c + 2 * _einsum_loop_ij_jk(a, b),
     [(3, 2), (3, 4), (4, 2)]),
    ("cumprod", lambda t: tc.cumprod(t, 1), lambda a: np.array([[np.prod(r[:j + 1]) for j in range(4)] for r in a]),
     [(3, 4)]),
    ("cumprod dim 0", lambda t: t.cumprod(dim=0), lambda a: np.stack([np.prod(a[:i + 1], 0) for i in range(3)]),
     [(3, 4)]),
    ("std_mean", lambda t: tc.std_mean(t, dim=1)[0] + tc.std_mean(t, dim=1)[1],
     lambda a: a.std(1, ddof=1) + a.mean(1), [(3, 4)]),
    ("var_mean", lambda t: tc.var_mean(t, 0, correction=0)[0] * tc.var_mean(t)[1],
     lambda a: a.var(0) * a.mean(), [(3, 4)]),
    ("meshgrid ij", lambda t, u: tc.meshgrid(t, u, indexing="ij")[0] * tc.meshgrid(t, u)[1],
     lambda a, b: a[:, None] * b[None, :], [(3,), (4,)]),
    ("meshgrid xy", lambda t, u: tc.meshgrid([t, u], indexing="xy")[0] - tc.meshgrid(t, u, indexing="xy")[1],
     lambda a, b: a[None, :] - b[:, None], [(3,), (4,)]),
]


@pytest.mark.parametrize("name, call, reference, shapes", DIFFERENTIABLE, ids=[d[0] for d in DIFFERENTIABLE])
def test_differentiable_idioms_match_numpy_and_gradcheck(name, call, reference, shapes):
    data = [RNG.standard_normal(s) for s in shapes]
    out = call(*(tc.tensor(d.astype(np.float32)) for d in data))
    expected = np.asarray(reference(*data))
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert tc.gradcheck(call, [tc.tensor(d, requires_grad=True) for d in data])


@pytest.mark.parametrize("call, reference", [
    (lambda: tc.tensor([3, 1, 3, 0]).unique(), np.array([0, 1, 3])),
    (lambda: tc.unique(tc.tensor([3, 1, 3, 0]), return_counts=True)[1], np.array([1, 1, 2])),
    (lambda: tc.tensor([[3, 1], [3, 0]]).unique(return_inverse=True)[1], np.array([[2, 1], [2, 0]])),
    (lambda: tc.bincount(tc.tensor([0, 2, 2, 5])), np.array([1, 0, 2, 0, 0, 1])),
    (lambda: tc.tensor([1, 1]).bincount(minlength=3), np.array([0, 2, 0])),
    (lambda: tc.tensor([0, 1, 1]).bincount(tc.tensor([0.5, 1.0, 2.0])), np.array([0.5, 3.0], np.float32)),
    (lambda: tc.isclose(tc.tensor([1.0, 2.0]), tc.tensor([1.0 + 1e-9, 2.1])), np.array([True, False])),
    (lambda: tc.where(tc.tensor([[True, False], [False, True]]))[1], np.array([0, 1])),
    (lambda: tc.tensor([[1.0, 0.0]]).scatter(1, tc.tensor([[1]]), 5.0), np.array([[1.0, 5.0]], np.float32)),
    (lambda: tc.repeat_interleave(tc.tensor([2, 0, 1])), np.array([0, 0, 2])),
    (lambda: tc.nan_to_num(tc.tensor([np.nan, np.inf, 1.0]), posinf=9.0), np.array([0.0, 9.0, 1.0], np.float32)),
    (lambda: tc.randperm(6).sort().values, np.arange(6)),
])
def test_no_gradient_idioms_match_numpy_in_values_and_dtype(call, reference):
    out = call()
    assert out.dtype == (np.int64 if reference.dtype == np.int_ else reference.dtype)
    np.testing.assert_array_equal(out.numpy(), reference)


def test_scatter_in_place_on_a_non_leaf_keeps_the_gradient_of_what_was_not_overwritten():
    w = tc.tensor(A, requires_grad=True)
    h = w * 1.0
    h.scatter_(1, tc.tensor([[0], [1], [2]]), 0.0)
    h.sum().backward()
    expected = np.ones((3, 4))
    expected[[0, 1, 2], [0, 1, 2]] = 0
    np.testing.assert_array_equal(w.grad.numpy(), expected)
    z = tc.zeros(3)
    assert z.scatter_add_(0, tc.tensor([0, 0, 2]), tc.tensor([1.0, 2.0, 3.0])) is z
    np.testing.assert_array_equal(z.numpy(), [3.0, 0.0, 3.0])


def test_abs_erf_and_detach_in_place():
    t = tc.tensor([-1.0, 0.5])
    assert t.abs_() is t and t.tolist() == [1.0, 0.5]
    np.testing.assert_allclose(t.erf_().numpy(), [math.erf(1.0), math.erf(0.5)], rtol=1e-6)
    h = tc.tensor([1.0], requires_grad=True) * 2
    assert h.detach_() is h and not h.requires_grad and h.is_leaf


def test_manual_seed_returns_the_generator_draws_then_use():
    g = tc.manual_seed(3)
    assert isinstance(g, np.random.Generator)
    first = tc.randn(2).numpy().copy()
    tc.manual_seed(3)
    np.testing.assert_array_equal(tc.randn(2).numpy(), first)


@pytest.mark.parametrize("call, message", [
    (lambda: tc.zeros(2, 2).scatter(0, tc.tensor([[0, 1]]), 1.0, reduce="multiply"), "scatter: reduce='multiply' is not supported here"),
    (lambda: tc.zeros(2, 2).scatter(0, tc.tensor([[0.0, 1.0]]), 1.0), "scatter: index must be an integer tensor"),
    (lambda: tc.zeros(2, 2).scatter(0, tc.tensor([[0, 2]]), 1.0), "scatter: index out of range"),
    (lambda: tc.zeros(2, 2).scatter(0, tc.tensor([0, 1]), 1.0), "scatter: index must have the tensor's 2 dims"),
    (lambda: tc.einsum("ij,jk->ik", tc.zeros(2, 3)), "einsum: the equation 'ij,jk->ik' names 2 operands"),
    (lambda: tc.einsum("ij,jk->ik", tc.zeros(2, 3), tc.zeros(4, 2)), "einsum:"),
    (lambda: tc.einsum("ijk", tc.zeros(2, 3)), "einsum: subscripts 'ijk' do not fit"),
    (lambda: tc.einsum("ii->i", tc.eye(2, requires_grad=True)).sum().backward(), "einsum: backward through a repeated index"),
    (lambda: tc.diag(tc.zeros(2, 2, 2)), "diag: expected a 1-D or 2-D tensor"),
    (lambda: tc.tril(tc.zeros(3)), "tril: expected a tensor with at least 2 dims"),
    (lambda: tc.outer(tc.zeros(2, 2), tc.zeros(2)), "outer: expected two 1-D tensors"),
    (lambda: tc.zeros(3).masked_select(tc.zeros(3)), "masked_select: mask must be a bool tensor"),
    (lambda: tc.zeros(3).masked_select(tc.ones(2, dtype=tc.bool)), "masked_select: mask of shape (2,) does not broadcast"),
    (lambda: tc.bincount(tc.tensor([-1, 2])), "bincount: expected a 1-D tensor of non-negative integers"),
    (lambda: tc.roll(tc.zeros(3), (1, 2), (0,)), "roll: shifts [1, 2] and dims [0]"),
    (lambda: tc.meshgrid(tc.zeros(2), indexing="yx"), "meshgrid: indexing must be"),
    (lambda: (tc.ones(2, requires_grad=True) * 2).retain_grad(), "retain_grad: .* is not supported here"),
    (lambda: tc.ones(2, requires_grad=True).register_hook(print), "register_hook: .* is not supported here"),
    (lambda: tc.multinomial(tc.tensor([1.0, 0.0]), 2), "multinomial: cannot draw 2 samples without replacement"),
    (lambda: tc.bernoulli(tc.tensor([1.5])), "bernoulli: probabilities must lie in"),
    (lambda: tc.normal(0.0, 1.0), "normal: give mean or std as a Tensor"),
    (lambda: tc.randperm(-1), "randperm: n must be a non-negative int"),
    (lambda: tc.addmm(tc.zeros(2), tc.zeros(2), tc.zeros(2)), "addmm: expected two matrices"),
])
def test_bad_input_is_refused_naming_the_op(call, message):
    with pytest.raises((TypeError, ValueError, IndexError, RuntimeError), match=message if ".*" in message else
                       message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        call()


def test_cumprod_gradient_through_a_zero_needs_no_division():
    x = tc.tensor([2.0, 0.0, 3.0, 4.0], dtype=tc.float64, requires_grad=True)
    x.cumprod(0).sum().backward()
    # d/dx_k of x0 + x0x1 + x0x1x2 + x0x1x2x3, written out at x1 = 0
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2 + 2 * 3 + 2 * 3 * 4, 0.0, 0.0])
    assert tc.gradcheck(lambda t: t.cumprod(0), [x])


def test_random_draws_follow_their_distributions_and_the_seed():
    tc.manual_seed(1)
    first = [tc.normal(tc.zeros(3), tc.ones(3)), tc.bernoulli(tc.full((3,), 0.5)),
             tc.multinomial(tc.tensor([0.2, 0.3, 0.5]), 2)]
    tc.manual_seed(1)
    again = [tc.normal(tc.zeros(3), tc.ones(3)), tc.bernoulli(tc.full((3,), 0.5)),
             tc.multinomial(tc.tensor([0.2, 0.3, 0.5]), 2)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    big = tc.normal(2.0, 3.0, size=(20000,))
    assert big.dtype == np.float32 and abs(big.numpy().mean() - 2) < 0.1 and abs(big.numpy().std() - 3) < 0.1
    assert tc.normal(tc.zeros(2, dtype=tc.float64), 1.0).dtype == np.float64
    coin = tc.bernoulli(tc.tensor([0.0, 1.0] * 50))
    np.testing.assert_array_equal(coin.numpy(), [0.0, 1.0] * 50)
    picks = tc.multinomial(tc.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]), 2, replacement=True)
    assert picks.dtype == np.int64 and picks.shape == (2, 2)
    assert set(picks.numpy()[0]) <= {1, 2} and picks.numpy()[1].tolist() == [0, 0]
    assert sorted(tc.multinomial(tc.ones(3), 3).tolist()) == [0, 1, 2]


def test_einsum_with_a_repeated_index_reads_the_diagonal_forward():
    np.testing.assert_array_equal(tc.einsum("ii->i", tc.tensor(A[:3, :3])).numpy(), np.diag(A[:3, :3]))
