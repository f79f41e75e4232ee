"""layer_norm, group_norm and embedding, composed of Tensor ops (their gradients follow from those ops')."""
import numpy as np

from ..tensor import Tensor


def _standardize(x: Tensor, axes: tuple, eps: float) -> Tensor:
    """(x − mean) / √(var + eps) over `axes`, var the biased variance (as every normalisation layer uses)."""
    centred = x - x.mean(axes, keepdims=True)
    return centred / ((centred * centred).mean(axes, keepdims=True) + eps).sqrt()


def layer_norm(input: Tensor, normalized_shape, weight: Tensor = None, bias: Tensor = None,
               eps: float = 1e-5) -> Tensor:
    """Standardise over the last len(normalized_shape) axes, which must equal normalized_shape; then
    · weight + bias (each of normalized_shape)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not shape or input.shape[input.ndim - len(shape):] != shape or len(shape) > input.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must match the last axes of the input, got input "
                         f"of shape {input.shape}")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and value.shape != shape:
            raise ValueError(f"layer_norm: {name} must have shape {shape}, got {value.shape}")
    out = _standardize(input, tuple(range(input.ndim - len(shape), input.ndim)), eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def group_norm(input: Tensor, num_groups: int, weight: Tensor = None, bias: Tensor = None,
               eps: float = 1e-5) -> Tensor:
    """Split the C channels of (N, C, *) into num_groups groups, standardise each group of each sample over its
    channels and positions, then · weight + bias per channel."""
    if input.ndim < 2 or num_groups < 1 or input.shape[1] % num_groups:
        raise ValueError(f"group_norm: expected input (N, C, ...) with C divisible by num_groups={num_groups}, "
                         f"got shape {input.shape}")
    channels = input.shape[1]
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and value.shape != (channels,):
            raise ValueError(f"group_norm: {name} must have shape ({channels},), got {value.shape}")
    grouped = input.reshape(input.shape[0], num_groups, -1)
    out = _standardize(grouped, (2,), eps).reshape(*input.shape)
    channel_shape = (1, channels) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(*channel_shape)
    return out if bias is None else out + bias.reshape(*channel_shape)


def embedding(input, weight: Tensor, padding_idx: int = None, max_norm: float = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of weight (num_embeddings, dim) picked by the integer indices `input`: output shape input.shape + (dim,).
    The row at padding_idx receives no gradient."""
    indices = np.asarray(input.numpy() if isinstance(input, Tensor) else input)
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    rows = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        raise IndexError(f"embedding: indices must lie in [0, {rows}) for a weight of shape {weight.shape}, got "
                         f"values from {indices.min()} to {indices.max()}")
    picked = weight[indices]
    if padding_idx is None:
        return picked
    keep = (indices != padding_idx % rows)[..., None].astype(weight.dtype)
    return picked * Tensor(keep, dtype=weight.dtype) + (picked * Tensor(1 - keep, dtype=weight.dtype)).detach()
