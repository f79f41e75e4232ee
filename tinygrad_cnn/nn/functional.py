"""Stateless layer functions and losses with PyTorch's names and signatures.

Losses take `reduction` in {'mean', 'sum', 'none'}. Class-index targets may be int arrays or int Tensors.
"""
import math

import numpy as np

from ..ops.normalization import BatchNorm
from ..ops.loss import BinaryCrossEntropyWithLogits, CrossEntropy, check_class_targets, class_axis
from ..rng import generator
from ..tensor import Tensor
from .functional_conv import adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d
from .functional_transpose import conv_transpose2d

__all__ = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout", "batch_norm",
           "one_hot", "mse_loss", "nll_loss", "cross_entropy", "binary_cross_entropy_with_logits",
           "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


# ---- layers ---------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor = None) -> Tensor:
    """x · Wᵀ + b, with W of shape (out_features, in_features) as PyTorch's."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must have shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape}: "
                         f"the last axis must be in_features = {weight.shape[1]}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},) for weight {weight.shape}, "
                         f"got {bias.shape}")
    out = x @ weight.transpose()
    return out if bias is None else out + bias


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return x.leaky_relu(negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return x.log_softmax(dim)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the survivors by 1/(1 − p), so the expected value is
    unchanged; the identity when not training. Draws come from the package generator."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if x.dtype.kind != "f":  # 1/(1 − p) would be truncated to the integer dtype
        raise TypeError(f"dropout: expected a floating tensor, got dtype {x.dtype}")
    if not training or p == 0:
        return x
    keep = generator().random(x.shape) >= p
    scale = 0.0 if p == 1 else 1.0 / (1 - p)
    return x * Tensor(keep * scale, dtype=x.dtype)


def batch_norm(x: Tensor, running_mean, running_var, weight: Tensor = None, bias: Tensor = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """y = (x − μ) / √(σ² + eps) · weight + bias per channel (axis 1), over the batch and spatial axes.

    Training: μ, σ² are the batch mean and biased variance, and the running statistics (Tensors or arrays,
    or None) are updated in place: running ← (1 − momentum)·running + momentum·batch, with the unbiased
    variance σ²·n/(n − 1). Otherwise μ, σ² are the running statistics.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {x.shape}")
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):
        shape = tuple(value.shape) if isinstance(value, Tensor) else np.shape(value)
        if value is not None and shape != x.shape[1:2]:
            raise ValueError(f"batch_norm: {name} must have shape ({x.shape[1]},) for input {x.shape}, got {shape}")
    if training:
        count = math.prod(x.shape[:1] + x.shape[2:])
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"of shape {x.shape}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    running = [r.numpy() if isinstance(r, Tensor) else r for r in (running_mean, running_var)]
    out = BatchNorm.apply(x, weight, bias, *running, bool(training), momentum, eps)
    if training:
        for tensor in (running_mean, running_var):
            if isinstance(tensor, Tensor):
                tensor._version += 1  # changed in place, as an in-place op would have marked it
    return out


def one_hot(target, num_classes: int = -1) -> Tensor:
    """An int64 Tensor with one more axis of size num_classes (−1: max(target) + 1), 1 at each class index."""
    target = np.asarray(target.numpy() if isinstance(target, Tensor) else target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"one_hot: target must hold integer class indices, got dtype {target.dtype}")
    if num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be -1 (from the data) or at least 0, got {num_classes}")
    if num_classes == -1:
        num_classes = int(target.max()) + 1 if target.size else 0
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"one_hot: class values must lie in [0, {num_classes}), got values from {target.min()} "
                         f"to {target.max()}")
    return Tensor((target[..., None] == np.arange(num_classes)).astype(np.int64))


# ---- losses ---------------------------------------------------------------------------------
def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _indices(target) -> np.ndarray:
    return np.asarray(target.numpy() if isinstance(target, Tensor) else target)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """(input − target)², reduced."""
    target_shape = np.shape(target.numpy() if isinstance(target, Tensor) else target)
    if input.shape != target_shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target_shape} must be equal")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def nll_loss(log_probs: Tensor, target, reduction: str = "mean") -> Tensor:
    """−log_probs[i, target_i] for log-probabilities of shape (N, C) or (N, C, d1, ...), reduced."""
    target = _indices(target)
    check_class_targets("nll_loss", log_probs.shape, target)
    axis = class_axis(log_probs.ndim)
    grids = np.indices(target.shape, sparse=True)
    index = tuple(grids[:axis]) + (target,) + tuple(grids[axis:])
    return _reduce(-log_probs[index], reduction, "nll_loss")


def cross_entropy(logits: Tensor, target, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log-softmax + NLL in one stable Function, for logits of shape (N, C) or (N, C, d1, ...) and class
    indices `target`. With label_smoothing ε the target distribution is (1 − ε)·onehot + ε/C."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return _reduce(CrossEntropy.apply(logits, _indices(target), float(label_smoothing)), reduction, "cross_entropy")


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """−[y·log σ(x) + (1 − y)·log(1 − σ(x))] computed stably from the logits x, reduced."""
    if not isinstance(target, Tensor):
        target = Tensor(target, dtype=logits.dtype)
    return _reduce(BinaryCrossEntropyWithLogits.apply(logits, target), reduction, "binary_cross_entropy_with_logits")

