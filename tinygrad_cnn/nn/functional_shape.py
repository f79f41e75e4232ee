"""pad, interpolate, adaptive_max_pool2d and dropout2d: each written with indexing and the existing ops (an
index array per axis picks or blends input elements, so the gradient is GetItem's scatter-add)."""
import math

import numpy as np

from ..ops.movement import Pad
from ..rng import generator
from ..tensor import Tensor
from .functional_conv import max_pool2d
from ..ops.kernels.geometry import pair

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: Tensor, pad, mode: str = "constant", value: float = None) -> Tensor:
    """Pad the last len(pad)/2 axes; `pad` lists (before, after) pairs starting from the last axis, as PyTorch:
    (left, right, top, bottom, ...). 'constant' fills `value` (0); 'reflect' mirrors without repeating the
    edge; 'replicate' repeats the edge; 'circular' wraps around."""
    widths = [int(w) for w in pad]
    if len(widths) % 2 or len(widths) // 2 > input.ndim:
        raise ValueError(f"pad: pad must hold a (before, after) pair per padded axis, at most {input.ndim} pairs "
                         f"for input {input.shape}, got {tuple(pad)}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _PAD_MODES))}, got {mode!r}")
    if min(widths, default=0) < 0:
        raise ValueError(f"pad: negative padding (cropping) is not supported, got {tuple(pad)}")
    pairs = {input.ndim - 1 - i: (widths[2 * i], widths[2 * i + 1]) for i in range(len(widths) // 2)}
    if mode == "constant":
        full = tuple(pairs.get(axis, (0, 0)) for axis in range(input.ndim))
        return Pad.apply(input, full, 0.0 if value is None else value)
    out = input
    for axis, (before, after) in sorted(pairs.items()):
        size = input.shape[axis]
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(f"pad: reflect padding must be smaller than the padded axis, got ({before}, {after}) "
                             f"for axis {axis} of size {size} (input {input.shape})")
        if size == 0:
            raise ValueError(f"pad: {mode} padding needs a non-empty axis, axis {axis} of input {input.shape} is empty")
        positions = np.arange(-before, size + after)
        if mode == "reflect":
            period = 2 * (size - 1) if size > 1 else 1
            folded = np.abs(positions) % period
            index = np.where(folded < size, folded, period - folded)
        elif mode == "replicate":
            index = np.clip(positions, 0, size - 1)
        else:
            index = positions % size
        out = out[(slice(None),) * axis + (index,)]
    return out


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool = None,
                recompute_scale_factor: bool = None, antialias: bool = False) -> Tensor:
    """Resize the spatial axes of (N, C, W) or (N, C, H, W) input to `size`, or by `scale_factor`, by PyTorch's
    sampling rules: 'nearest' takes source ⌊dst·scale⌋, 'nearest-exact' ⌊(dst + ½)·scale⌋; 'linear'/'bilinear'
    blend the two neighbours of src = (dst + ½)·scale − ½ (clamped at 0), or src = dst·(in − 1)/(out − 1) with
    align_corners. scale is in/out, or 1/scale_factor when that was given (unless recompute_scale_factor)."""
    op = "interpolate"
    linear_modes = {3: "linear", 4: "bilinear"}
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (N, C, W) or 4-D (N, C, H, W) input, got shape {input.shape}")
    if mode not in ("nearest", "nearest-exact", linear_modes[input.ndim]):
        raise ValueError(f"{op}: mode must be 'nearest', 'nearest-exact' or {linear_modes[input.ndim]!r} for a "
                         f"{input.ndim}-D input, got {mode!r}")
    if align_corners is not None and mode.startswith("nearest"):
        raise ValueError(f"{op}: align_corners only applies to the linear modes, got mode={mode!r}")
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported")
    spatial = input.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got size={size}, "
                         f"scale_factor={scale_factor}")
    if size is not None:
        sizes = _per_axis(size, len(spatial), "size")
        scales = [n / m for n, m in zip(spatial, sizes)]
    else:
        factors = _per_axis(scale_factor, len(spatial), "scale_factor")
        if min(factors) <= 0:
            raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor}")
        sizes = [int(math.floor(n * f)) for n, f in zip(spatial, factors)]
        scales = [n / m if recompute_scale_factor else 1 / f for n, m, f in zip(spatial, sizes, factors)]
    if min(sizes) < 1:
        raise ValueError(f"{op}: the output size {tuple(sizes)} must be at least 1 per axis (input {input.shape})")
    out = input
    for k, (n, m, scale) in enumerate(zip(spatial, sizes, scales)):
        axis = 2 + k
        dst = np.arange(m, dtype=np.float64)
        if mode.startswith("nearest"):
            offset = 0.5 if mode == "nearest-exact" else 0.0
            index = np.minimum(np.floor((dst + offset) * scale).astype(np.int64), n - 1)
            out = _repeat(out, axis, m // n) if m % n == 0 and np.array_equal(index, np.arange(m) // (m // n)) \
                else out[(slice(None),) * axis + (index,)]
            continue
        if align_corners:
            src = dst * ((n - 1) / (m - 1) if m > 1 else 0.0)
        else:
            src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
        low = np.minimum(np.floor(src).astype(np.int64), n - 1)
        high = np.minimum(low + 1, n - 1)
        weight_high = (src - low).reshape((m,) + (1,) * (input.ndim - 1 - axis)).astype(input.dtype)
        pick = (slice(None),) * axis
        low_part, high_part = Tensor(1 - weight_high, dtype=input.dtype), Tensor(weight_high, dtype=input.dtype)
        out = out[pick + (low,)] * low_part + out[pick + (high,)] * high_part
    return out


def _repeat(x: Tensor, axis: int, times: int) -> Tensor:
    """Each element `times` times along `axis` (nearest upsampling by an integer factor) as a broadcast view
    and a reshape: its gradient sums each run, with no scatter-add."""
    if times == 1:
        return x
    shape = x.shape
    spread = x.reshape(*shape[:axis + 1], 1, *shape[axis + 1:])
    spread = spread.expand(*shape[:axis + 1], times, *shape[axis + 1:])
    return spread.reshape(*shape[:axis], shape[axis] * times, *shape[axis + 1:])


def _per_axis(value, count: int, name: str) -> list:
    values = list(value) if isinstance(value, (tuple, list)) else [value] * count
    if len(values) != count:
        raise ValueError(f"interpolate: {name} needs {count} values (one per spatial axis), got {value!r}")
    return values


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """The maximum over window (i, j) = rows ⌊i·H/h⌋ … ⌈(i+1)·H/h⌉ − 1 × the same for columns, of x (N, C, H, W)
    pooled to output_size (an int or (h, w), None keeping that axis). An exact division is one max_pool2d."""
    op = "adaptive_max_pool2d"
    if return_indices:
        raise ValueError(f"{op}: return_indices=True is not supported")
    if input.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {input.shape}")
    height, width = input.shape[2:]
    if isinstance(output_size, (tuple, list)):
        output_size = tuple(input.shape[2 + i] if s is None else s for i, s in enumerate(output_size))
    out_h, out_w = pair(output_size, "output_size", op)
    if min(out_h, out_w) < 1 or min(height, width) < 1:
        raise ValueError(f"{op}: output_size and the input's height and width must be at least 1, got "
                         f"output_size={(out_h, out_w)} for input {input.shape}")
    if height % out_h == 0 and width % out_w == 0:
        return max_pool2d(input, (height // out_h, width // out_w))
    rows = [(i * height // out_h, -(-(i + 1) * height // out_h)) for i in range(out_h)]
    cols = [(j * width // out_w, -(-(j + 1) * width // out_w)) for j in range(out_w)]
    cells = [_window_max(input[:, :, r0:r1, c0:c1]) for r0, r1 in rows for c0, c1 in cols]
    return Tensor.stack(cells, -1).reshape(input.shape[0], input.shape[1], out_h, out_w)


def _window_max(window: Tensor) -> Tensor:
    """The maximum over the last two axes of (N, C, h, w)."""
    return window.reshape(window.shape[0], window.shape[1], -1).amax(-1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels (each (n, c) plane of (N, C, H, W), or each c of (C, H, W)) with probability p and
    scale the rest by 1/(1 − p); the identity when not training."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: probability must be in [0, 1], got {p}")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"dropout2d: expected a floating tensor, got dtype {input.dtype}")
    if not training or p == 0:
        return input
    planes = input.shape[:-2]
    keep = generator().random(planes) >= p
    scale = 0.0 if p == 1 else 1.0 / (1 - p)
    return input * Tensor((keep * scale).reshape(planes + (1, 1)), dtype=input.dtype)
