"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: arguments checked once here; kernels in ops/kernels/pool.py."""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .conv import check_4d, check_float_tensors, pair
from .kernels import launch_lock, pool as kernels


class MaxPool2d(Function):
    """Each window's maximum. The forward remembers the winner of every window (the first maximum in row-major
    order on ties, as PyTorch); the backward routes each window's whole gradient to it."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        with launch_lock:
            out, ctx.winners = kernels.max_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding)
        ctx.input_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        with launch_lock:
            grad_x = kernels.max_pool2d_backward(np.ascontiguousarray(grad), ctx.winners, ctx.input_shape)
        return grad_x, None, None, None


class AvgPool2d(Function):
    """Each window's mean, zero padding counted (PyTorch's count_include_pad=True); the backward spreads each
    window's gradient evenly over it."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.input_shape, ctx.geometry = x.shape, (kernel, stride, padding)
        with launch_lock:
            return kernels.avg_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        with launch_lock:
            grad_x = kernels.avg_pool2d_backward(np.ascontiguousarray(grad), ctx.input_shape, *ctx.geometry)
        return grad_x, None, None, None


class AdaptiveAvgPool2d(Function):
    """Means over PyTorch's bins, [floor(i·H/out), ceil((i+1)·H/out)); the backward spreads each bin's gradient
    evenly over it."""

    @staticmethod
    def forward(ctx, x, output_size):
        ctx.input_shape = x.shape
        with launch_lock:
            return kernels.adaptive_avg_pool2d_forward(np.ascontiguousarray(x), output_size)

    @staticmethod
    def backward(ctx, grad):
        with launch_lock:
            return kernels.adaptive_avg_pool2d_backward(np.ascontiguousarray(grad), ctx.input_shape), None


def _check_input(op, x) -> None:
    """A float 4-D Tensor with at least one row and column (an empty batch or channel axis is fine)."""
    check_float_tensors(op, input=x)
    check_4d(op, x)
    if min(x.shape[2:]) == 0:
        raise ValueError(f"{op}: expected an input of non-zero height and width, got shape {x.shape}")


def _pool_arguments(op, x, kernel_size, stride, padding):
    """Checked (kernel, stride, padding) pairs; stride defaults to the kernel size."""
    _check_input(op, x)
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else pair(stride, "stride", op)
    padding = pair(padding, "padding", op)
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{op}: kernel_size and stride must be at least 1, got kernel_size={kernel}, stride={stride}")
    if min(padding) < 0 or padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding must be between 0 and half the kernel size, got padding={padding} for "
                         f"kernel_size={kernel}")
    height, width = x.shape[2:]
    if kernel[0] > height + 2 * padding[0] or kernel[1] > width + 2 * padding[1]:
        raise ValueError(f"{op}: kernel_size {kernel} is larger than the padded input "
                         f"({height + 2 * padding[0]}×{width + 2 * padding[1]}) for input {x.shape}: "
                         "the output would have size < 1")
    return kernel, stride, padding


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """The maximum of each window of x (N, C, H, W); padding counts as −∞. stride defaults to kernel_size."""
    arguments = _pool_arguments("max_pool2d", x, kernel_size, stride, padding)
    if x.shape[2] * x.shape[3] > np.iinfo(np.int32).max:  # each winner is an int32 index into its plane
        raise ValueError(f"max_pool2d: planes of more than 2**31 - 1 elements are not supported, got shape {x.shape}")
    return MaxPool2d.apply(x, *arguments)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """The mean of each window of x (N, C, H, W); zero padding counts in the mean. stride defaults to kernel_size."""
    return AvgPool2d.apply(x, *_pool_arguments("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Average-pool x (N, C, H, W) to output_size (an int or (h, w); None keeps that axis); 1 is global pooling."""
    op = "adaptive_avg_pool2d"
    _check_input(op, x)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(x.shape[2 + i] if size is None else size for i, size in enumerate(output_size))
    output_size = pair(output_size, "output_size", op)
    if min(output_size) < 1:
        raise ValueError(f"{op}: output_size must be at least 1, got {output_size} for input {x.shape}")
    return AdaptiveAvgPool2d.apply(x, output_size)
