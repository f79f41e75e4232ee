"""Random draws as PyTorch's free functions: randperm, normal, bernoulli, multinomial. Each draws from the
package generator (so `manual_seed` repeats it) or from a NumPy Generator passed as `generator`; none
records a gradient."""
import numpy as np

from .device import check_device, resolve_dtype
from .rng import generator as _package_generator
from .tensor import Tensor


def _rng(given):
    return _package_generator() if given is None else given


def randperm(n, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """0..n-1 in a random order (int64 by default)."""
    check_device(device, "randperm")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative int, got {n!r}")
    return Tensor._from_data(_rng(generator).permutation(n), resolve_dtype(dtype, "randperm") or np.int64,
                             requires_grad)


def normal(mean, std=1.0, size=None, *, generator=None) -> Tensor:
    """Draws from N(mean, std²) elementwise: mean and std are tensors (broadcast) or numbers with `size`."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors and size is None:
        raise TypeError("normal: give mean or std as a Tensor, or both as numbers with size=")
    arrays = [t.numpy() if isinstance(t, Tensor) else t for t in (mean, std)]
    if np.any(np.asarray(arrays[1]) < 0):
        raise ValueError("normal: std must be non-negative")
    dtype = tensors[0].dtype if tensors and tensors[0].dtype.kind == "f" else np.float32
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays)) if size is None else tuple(size)
    return Tensor._wrap(_rng(generator).normal(arrays[0], arrays[1], shape).astype(dtype))


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """1 with probability input (or p) elementwise, else 0, in input's dtype."""
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"bernoulli: expected a floating Tensor of probabilities, got {getattr(input, 'dtype', type(input))}")
    probability = input.numpy() if p is None else p
    if np.any((np.asarray(probability) < 0) | (np.asarray(probability) > 1)):
        raise ValueError("bernoulli: probabilities must lie in [0, 1]")
    drawn = _rng(generator).random(input.shape) < probability
    return Tensor._wrap(drawn.astype(input.dtype))


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """num_samples category indices per row of non-negative weights `input` (1-D or 2-D), int64;
    without replacement each index at most once per row."""
    weights = input.numpy() if isinstance(input, Tensor) else None
    if weights is None or weights.ndim not in (1, 2) or weights.dtype.kind != "f":
        raise TypeError("multinomial: expected a 1-D or 2-D floating Tensor of weights")
    rows = np.atleast_2d(weights).astype(np.float64)
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(1) == 0).any():
        raise ValueError("multinomial: weights must be finite, non-negative and not all zero in a row")
    if not replacement and num_samples > np.count_nonzero(rows, axis=1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                         f"{np.count_nonzero(rows, axis=1).min()} categories of non-zero weight")
    rng = _rng(generator)
    drawn = np.stack([rng.choice(row.size, num_samples, replace=replacement, p=row / row.sum()) for row in rows])
    return Tensor._wrap(drawn.astype(np.int64).reshape(weights.shape[:-1] + (num_samples,)))
