"""The pooling Functions on arrays; kernels in ops/kernels/pool.py, argument checks in nn/functional_conv.py."""
import numpy as np

from ..autograd import Function
from .kernels import pool as kernels


class MaxPool2d(Function):
    """Each window's maximum. The forward remembers the winner of every window (the first maximum in row-major
    order on ties, as PyTorch); the backward routes each window's whole gradient to it."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        out, ctx.winners = kernels.max_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding)
        ctx.input_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = kernels.max_pool2d_backward(np.ascontiguousarray(grad), ctx.winners, ctx.input_shape)
        return grad_x, None, None, None


class AvgPool2d(Function):
    """Each window's mean, zero padding counted (PyTorch's count_include_pad=True); the backward spreads each
    window's gradient evenly over it."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.input_shape, ctx.geometry = x.shape, (kernel, stride, padding)
        return kernels.avg_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        grad_x = kernels.avg_pool2d_backward(np.ascontiguousarray(grad), ctx.input_shape, *ctx.geometry)
        return grad_x, None, None, None


class AdaptiveAvgPool2d(Function):
    """Means over PyTorch's bins, [floor(i·H/out), ceil((i+1)·H/out)); the backward spreads each bin's gradient
    evenly over it."""

    @staticmethod
    def forward(ctx, x, output_size):
        ctx.input_shape = x.shape
        return kernels.adaptive_avg_pool2d_forward(np.ascontiguousarray(x), output_size)

    @staticmethod
    def backward(ctx, grad):
        return kernels.adaptive_avg_pool2d_backward(np.ascontiguousarray(grad), ctx.input_shape), None
