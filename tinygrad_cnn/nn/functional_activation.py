"""Activations beyond the basic ones (gelu, silu, elu, hardtanh, relu6, prelu) and normalize. Each accepts
PyTorch's `inplace` where PyTorch has it; the result is returned as a new tensor either way (same values)."""
from ..ops.activation import GELU
from ..tensor import Tensor, where


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x), Φ the standard normal CDF; approximate='tanh' uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _check_float("gelu", input)
    return GELU.apply(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x·σ(x) (also called swish)."""
    _check_float("silu", input)
    return input * input.sigmoid()


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha·(eˣ − 1) otherwise (the exponential taken of min(x, 0), so large x cannot overflow)."""
    _check_float("elu", input)
    negative = alpha * ((input.clip(None, 0.0)).exp() - 1)
    return where(input > 0, input, negative)  # a recorded comparison, so an ONNX export computes the mask


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if not min_val < max_val:
        raise ValueError(f"hardtanh: min_val must be below max_val, got min_val={min_val}, max_val={max_val}")
    _check_float("hardtanh", input)
    return input.clip(min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(x, 0) + a·min(x, 0) with a learned slope: one for all channels, or one per channel (axis 1)."""
    if weight.ndim != 1 or (weight.shape[0] != 1 and (input.ndim < 2 or weight.shape[0] != input.shape[1])):
        raise ValueError(f"prelu: weight must hold 1 slope or one per channel (axis 1), got weight {weight.shape} "
                         f"for input {input.shape}")
    slope = weight.reshape((1, weight.shape[0]) + (1,) * (input.ndim - 2)) if input.ndim >= 2 else weight
    return input.relu() - slope * (-input).relu()


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(‖x‖_p, eps) along `dim`."""
    _check_float("normalize", input)
    if p <= 0:
        raise ValueError(f"normalize: p must be positive, got {p}")
    norm = (input.abs() ** p).sum(dim, keepdims=True) ** (1.0 / p)
    return input / norm.clip(eps, None)


def _check_float(op: str, x) -> None:
    if not isinstance(x, Tensor) or x.dtype.kind != "f":
        got = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{op}: expected a floating Tensor, got {got}")
