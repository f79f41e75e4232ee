"""Weight initialisation in place, with PyTorch's fan computation and gains.

Every draw comes from `tinygrad_cnn.rng.generator()`, so `tc.manual_seed(n)` makes initialisation reproducible.
The functions fill the tensor under `no_grad` (it may require grad) and return it.
"""
import math

import numpy as np

from ..autograd import no_grad
from ..rng import generator


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The factor that keeps activations' variance steady through `nonlinearity` (PyTorch's table):
    1 for linear/conv/sigmoid, 5/3 for tanh, √2 for relu, √(2 / (1 + slope²)) for leaky_relu, 3/4 for selu."""
    if nonlinearity in ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor) -> tuple:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): in·∏kernel and out·∏kernel."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    with no_grad():
        tensor.copy_(np.broadcast_to(values, tensor.shape))
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with draws from U(a, b)."""
    return _fill(tensor, generator().uniform(a, b, tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with draws from N(mean, std²)."""
    return _fill(tensor, generator().normal(mean, std, tensor.shape))


def constant_(tensor, val: float):
    return _fill(tensor, val)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """U(−bound, bound) with bound = gain · √(3 / fan) (He et al., 2015); `a` is leaky_relu's negative slope."""
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """N(0, std²) with std = gain / √fan (He et al., 2015)."""
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


def xavier_uniform_(tensor, gain: float = 1.0):
    """U(−a, a) with a = gain · √(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0):
    """Fill with draws from N(mean, std²) conditioned on [a, b] (bounds in the tensor's units, as PyTorch):
    draws outside are drawn again until every value lies inside."""
    if not a < b:
        raise ValueError(f"trunc_normal_: the bounds must satisfy a < b, got a={a}, b={b}")
    if std <= 0 or max(a - mean, mean - b) / std > 6:  # keep the rejection loop's acceptance rate reasonable
        raise ValueError(f"trunc_normal_: std must be > 0 and [a, b] must overlap mean ± 6·std, got mean={mean}, "
                         f"std={std}, a={a}, b={b}")
    values = generator().normal(mean, std, tensor.shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = generator().normal(mean, std, int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, values)


def orthogonal_(tensor, gain: float = 1.0):
    """Fill a weight, viewed as rows × (all other dims), with a (semi-)orthogonal matrix times gain (Saxe et al.,
    2014): Q of the QR decomposition of a Gaussian matrix, its columns' signs fixed by R's diagonal so the draw
    is uniform over orthogonal matrices."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs a tensor with at least 2 dimensions, got shape {tensor.shape}")
    rows, cols = tensor.shape[0], math.prod(tensor.shape[1:])
    flat = generator().normal(0.0, 1.0, (rows, cols))
    q, r = np.linalg.qr(flat.T if rows < cols else flat)
    q *= np.sign(np.diag(r))
    return _fill(tensor, gain * (q.T if rows < cols else q).reshape(tensor.shape))


def eye_(tensor):
    """Fill a 2-D tensor with the identity (ones on the main diagonal of a rectangle)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: needs a 2-D tensor, got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def dirac_(tensor, groups: int = 1):
    """Fill a conv weight (out, in, *kernel) so the conv passes its input through: in each of `groups` groups,
    output channel i takes input channel i at the kernel's centre tap (channels beyond min(out/groups, in)
    stay zero)."""
    if tensor.ndim not in (3, 4, 5) or tensor.shape[0] % groups:
        raise ValueError(f"dirac_: needs a 3-, 4- or 5-D weight whose first dimension divides by groups={groups}, "
                         f"got shape {tensor.shape}")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for i in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + i, i) + centre] = 1.0
    return _fill(tensor, values)
