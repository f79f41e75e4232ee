"""Gradient utilities (clip_grad_norm_, clip_grad_value_) and parameters_to_vector / vector_to_parameters."""
import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all gradients in place so their joint norm is at most max_norm; return the norm before clipping.

    The joint norm is the norm of all gradients concatenated: (Σ_p ‖g_p‖^k)^(1/k), or max |g| for k = inf.
    Gradients are multiplied by max_norm / (norm + 1e-6) when that is below 1, as PyTorch does.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    norm_type = float(norm_type)
    if norm_type == np.inf:
        total = max(float(np.max(np.abs(g.numpy()))) if g.numel() else 0.0 for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g.numpy(), dtype=np.float64) ** norm_type)) for g in grads) ** (1 / norm_type)
    clip_coef = max_norm / (total + 1e-6)
    if clip_coef < 1:
        for g in grads:
            g *= clip_coef
    return Tensor(total, dtype=grads[0].dtype)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into [−clip_value, clip_value], in place."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in parameters:
        if p.grad is not None:
            np.clip(p.grad.numpy(), -clip_value, clip_value, out=p.grad.numpy())


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and joined into one 1-D Tensor (a copy, no graph), in the given order."""
    arrays = [p.numpy().reshape(-1) for p in parameters]
    if not arrays:
        raise ValueError("parameters_to_vector: got no parameters")
    vector = np.concatenate(arrays)
    return Tensor(vector, dtype=vector.dtype)


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in order (the inverse of
    parameters_to_vector)."""
    values = vec.numpy() if isinstance(vec, Tensor) else np.asarray(vec)
    parameters = list(parameters)
    total = sum(p.numpy().size for p in parameters)
    if values.ndim != 1 or values.size != total:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of {total} values for these parameters, "
                         f"got shape {values.shape}")
    start = 0
    with no_grad():
        for p in parameters:
            count = p.numpy().size
            p.copy_(values[start:start + count].reshape(p.shape))
            start += count
