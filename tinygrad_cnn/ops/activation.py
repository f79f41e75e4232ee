"""GELU, the one activation that is not a short composition of other ops (it needs erf)."""
import math

import numpy as np

from ..autograd import Function
from .kernels.special import erf

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_CUBIC = 0.044715


class GELU(Function):
    """x·Φ(x) with Φ the standard normal CDF (Hendrycks & Gimpel, 2016), d/dx = Φ(x) + x·φ(x).
    approximate='tanh': ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³), d/dx = ½(1 + t) + ½x(1 − t²)·du/dx."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _CUBIC * x ** 3)))
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _CUBIC * x ** 3))
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _CUBIC * x * x)
        else:
            cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
            slope = cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad * slope.astype(grad.dtype, copy=False), None
