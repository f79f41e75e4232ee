"""Stateless layer functions and losses with PyTorch's names and signatures: the basic layers here, the rest
gathered from functional_conv (conv2d, pooling), functional_transpose, functional_shape (pad, interpolate, ...),
functional_norm, functional_activation and functional_loss (every loss)."""
import math

import numpy as np

from ..ops.elementwise import Dropout
from ..ops.matmul import Linear as LinearFunction
from ..ops.normalization import BatchNorm
from ..rng import generator
from ..functions import tensor
from ..tensor import Tensor
from .functional_conv import adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d
from .functional_activation import elu, gelu, hardtanh, normalize, prelu, relu6, silu
from .functional_loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss,
                              kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from .functional_norm import embedding, group_norm, layer_norm
from .functional_shape import adaptive_max_pool2d, dropout2d, interpolate, pad
from .functional_transpose import conv_transpose2d

__all__ = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout", "batch_norm",
           "one_hot", "elu", "gelu", "hardtanh", "normalize", "prelu", "relu6", "silu", "embedding", "group_norm",
           "layer_norm", "adaptive_max_pool2d", "dropout2d", "interpolate", "pad", "conv_transpose2d",
           "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "nll_loss", "cross_entropy",
           "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


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
    x, weight = x._operands(weight)  # an integer input takes the weight's dtype, as x @ Wᵀ does
    return LinearFunction.apply(x, weight, bias)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). `inplace` is accepted for PyTorch code; the result is a new tensor either way (same values)."""
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return x.leaky_relu(negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softmax(input: Tensor, dim=None, _stacklevel=3, dtype=None) -> Tensor:
    """e^x / Σ e^x along `dim`; without dim PyTorch's implicit choice (0 for 0-, 1- and 3-dim input, else 1) with
    its deprecation warning."""
    return input.softmax(dim, dtype=dtype)


def log_softmax(input: Tensor, dim=None, _stacklevel=3, dtype=None) -> Tensor:
    return input.log_softmax(dim, dtype=dtype)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the survivors by 1/(1 − p), so the expected value is
    unchanged; the identity when not training. Each call takes one draw of the package generator, which seeds
    the mask's per-element draws (ops.elementwise.Dropout): reseeding repeats the masks."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if x.dtype.kind != "f":  # 1/(1 − p) would be truncated to the integer dtype
        raise TypeError(f"dropout: expected a floating tensor, got dtype {x.dtype}")
    if not training or p == 0:
        return x
    return Dropout.apply(x, p, int(generator().integers(0, 2 ** 63)))


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
    return tensor((target[..., None] == np.arange(num_classes)).astype(np.int64))
