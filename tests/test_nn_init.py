"""nn.init: PyTorch's fans and gains, the exact draws from the package generator, in-place filling."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn import Parameter, init


def test_fans_of_linear_and_conv_weights():
    assert init.calculate_fan_in_and_fan_out(tc.tensor(np.zeros((5, 3)))) == (3, 5)
    assert init.calculate_fan_in_and_fan_out(tc.tensor(np.zeros((8, 4, 3, 2)))) == (4 * 6, 8 * 6)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(tc.tensor(np.zeros(3)))


def test_gains_are_pytorchs():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")


def draws(seed, kind, *args, shape):
    return getattr(np.random.default_rng(seed), kind)(*args, shape)


@pytest.mark.parametrize("fill,expected", [
    (lambda t: init.kaiming_uniform_(t), lambda s: draws(s, "uniform", -math.sqrt(6 / 12), math.sqrt(6 / 12),
                                                         shape=(4, 3, 2, 2))),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), lambda s: draws(s, "uniform", -math.sqrt(1 / 12),
                                                                         math.sqrt(1 / 12), shape=(4, 3, 2, 2))),
    (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
     lambda s: draws(s, "uniform", -math.sqrt(6 / 16), math.sqrt(6 / 16), shape=(4, 3, 2, 2))),
    (lambda t: init.kaiming_normal_(t, nonlinearity="relu"),
     lambda s: draws(s, "normal", 0.0, math.sqrt(2 / 12), shape=(4, 3, 2, 2))),
    (lambda t: init.xavier_uniform_(t, gain=2.0),
     lambda s: draws(s, "uniform", -2 * math.sqrt(6 / 28), 2 * math.sqrt(6 / 28), shape=(4, 3, 2, 2))),
    (lambda t: init.xavier_normal_(t), lambda s: draws(s, "normal", 0.0, math.sqrt(2 / 28), shape=(4, 3, 2, 2))),
    (lambda t: init.normal_(t, 1.0, 0.5), lambda s: draws(s, "normal", 1.0, 0.5, shape=(4, 3, 2, 2))),
    (lambda t: init.uniform_(t, -2.0, 3.0), lambda s: draws(s, "uniform", -2.0, 3.0, shape=(4, 3, 2, 2))),
])
def test_random_fills_are_the_documented_distribution_from_the_seeded_generator(fill, expected):
    """fan_in = 3·2·2 = 12, fan_out = 4·2·2 = 16; kaiming's default is leaky_relu with slope a = 0 (gain √2);
    a = √5 (Linear's and Conv2d's default) gives gain √(1/3), so bound 1/√fan_in."""
    tensor = Parameter(np.zeros((4, 3, 2, 2), np.float32))
    tc.manual_seed(5)
    assert fill(tensor) is tensor  # works on a tensor that requires grad, outside no_grad
    np.testing.assert_allclose(tensor.numpy(), expected(5).astype(np.float32), rtol=1e-6)
    assert tensor.dtype == np.float32 and tensor.requires_grad


def test_constant_fills_and_version_bump():
    tensor = Parameter(np.full((2, 3), 7.0))
    version = tensor._version
    np.testing.assert_array_equal(init.zeros_(tensor).numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones_(tensor).numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(init.constant_(tensor, 2.5).numpy(), np.full((2, 3), 2.5))
    assert tensor._version == version + 3


def test_a_large_kaiming_uniform_sample_has_the_expected_spread():
    tensor = tc.tensor(np.zeros((400, 500)))
    init.kaiming_uniform_(tensor, nonlinearity="relu")
    bound = math.sqrt(6 / 500)
    values = tensor.numpy()
    assert np.abs(values).max() <= bound
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_trunc_normal_draws_lie_in_the_bounds_with_the_truncated_moments():
    tc.manual_seed(0)
    t = init.trunc_normal_(tc.tensor(np.zeros((200, 250))), mean=1.0, std=2.0, a=0.0, b=3.0)
    values = t.numpy()
    assert values.min() >= 0.0 and values.max() <= 3.0
    # moments of N(1, 4) truncated to [0, 3] = 1 + 2·[−0.5, 1], by the standard formula with φ and Φ
    alpha, beta = -0.5, 1.0
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2
    mass = cdf(beta) - cdf(alpha)
    mean = 1.0 + 2.0 * (pdf(alpha) - pdf(beta)) / mass
    var = 4.0 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - ((pdf(alpha) - pdf(beta)) / mass) ** 2)
    assert values.mean() == pytest.approx(mean, abs=4 * math.sqrt(var / values.size))
    assert values.var() == pytest.approx(var, rel=0.02)
    tc.manual_seed(0)
    again = init.trunc_normal_(tc.tensor(np.zeros((200, 250))), mean=1.0, std=2.0, a=0.0, b=3.0)
    np.testing.assert_array_equal(again.numpy(), values)
    with pytest.raises(ValueError, match="trunc_normal_: the bounds must satisfy a < b, got a=1, b=0"):
        init.trunc_normal_(tc.tensor(np.zeros(3)), a=1, b=0)


@pytest.mark.parametrize("shape", [(6, 4), (3, 8), (4, 2, 3, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape):
    tc.manual_seed(1)
    w = init.orthogonal_(Parameter(np.zeros(shape)), gain=2.0).numpy().reshape(shape[0], -1)
    small = min(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-12)


def test_eye_and_dirac_fill_identities():
    np.testing.assert_array_equal(init.eye_(tc.tensor(np.ones((2, 3)))).numpy(), [[1, 0, 0], [0, 1, 0]])
    w = init.dirac_(tc.tensor(np.ones((4, 2, 3, 3))), groups=2).numpy()
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 5))
    out = tc.nn.functional.conv2d(tc.tensor(x[:, [0, 1, 2, 3]]), tc.tensor(w), padding=1, groups=2).numpy()
    np.testing.assert_allclose(out, x, atol=1e-12)  # each group's output channels copy its input channels
    assert w.sum() == 4
    with pytest.raises(ValueError, match="eye_: needs a 2-D tensor, got shape"):
        init.eye_(tc.tensor(np.ones((2, 2, 2))))
    with pytest.raises(ValueError, match="dirac_"):
        init.dirac_(tc.tensor(np.ones((3, 2, 3))), groups=2)
