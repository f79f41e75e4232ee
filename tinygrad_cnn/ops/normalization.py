"""Batch normalisation as one Function: a fused kernel per direction (ops/kernels/batch_norm.py) instead of
about nine composed elementwise and reduction ops with full-size temporaries."""
import math

import numpy as np

from ..autograd import Function
from ..runtime.array_pool import empty_like
from .kernels import batch_norm as kernels


class BatchNorm(Function):
    """y = (x − μ) / √(σ² + eps) · γ + β per channel (axis 1), over the batch and every axis after 1.

    With `batch_stats`, μ and σ² are the batch's mean and biased variance, and the running statistics given
    (arrays, or None) move in place towards the batch's, the variance unbiased (σ²·M/(M − 1), M values per
    channel): running ← (1 − momentum)·running + momentum·batch. Otherwise μ, σ² are the running statistics.
    γ, β of None mean 1 and 0 (no affine parameters).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, batch_stats, momentum, eps):
        channels, dtype = x.shape[1], x.dtype
        x3 = np.ascontiguousarray(x).reshape(x.shape[0], channels, math.prod(x.shape[2:]))
        gamma = np.ones(channels, dtype) if weight is None else np.ascontiguousarray(weight, dtype)
        beta = np.zeros(channels, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
        out, factors = empty_like(x3), np.empty((channels, 2), dtype)
        if batch_stats:
            mean, var = np.empty(channels), np.empty(channels)
            kernels.train_forward(x3, gamma, beta, float(eps), out, mean, var, factors)
            invstd = 1 / np.sqrt(var + eps)
            count = math.prod(x.shape[:1] + x.shape[2:])
            _update_running(running_mean, mean, momentum)
            _update_running(running_var, var * (count / (count - 1)), momentum)
        else:
            mean = np.asarray(running_mean, np.float64).copy()
            invstd = 1 / np.sqrt(np.asarray(running_var, np.float64) + eps)
            factors[:, 0], factors[:, 1] = mean, gamma * invstd
            kernels.affine(x3, factors, beta, out)
        ctx.save_for_backward(x3, mean, invstd, gamma)
        ctx.batch_stats, ctx.shape = batch_stats, x.shape
        ctx.parameter_dtypes = (getattr(weight, "dtype", None), getattr(bias, "dtype", None))
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x3, mean, invstd, gamma = ctx.saved_tensors
        grad3 = np.ascontiguousarray(grad, x3.dtype).reshape(x3.shape)
        grad_x = empty_like(x3)
        channels = x3.shape[1]
        grad_weight, grad_bias = np.empty(channels), np.empty(channels)
        factors = np.empty((channels, 4), x3.dtype)
        kernels.backward(grad3, x3, mean, invstd, gamma, ctx.batch_stats, grad_x, grad_weight, grad_bias, factors)
        needs, (weight_dtype, bias_dtype) = ctx.needs_input_grad, ctx.parameter_dtypes
        return (grad_x.reshape(ctx.shape) if needs[0] else None,
                grad_weight.astype(weight_dtype) if needs[1] else None,
                grad_bias.astype(bias_dtype) if needs[2] else None, None, None, None, None, None)


def _update_running(running, batch_value, momentum):
    """running ← (1 − momentum)·running + momentum·batch, in place (nothing when `running` is None)."""
    if running is not None:
        running *= 1 - momentum
        running += momentum * batch_value
