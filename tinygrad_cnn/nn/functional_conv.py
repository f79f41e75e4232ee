"""conv2d and the pooling functions: the Tensor-facing wrappers of ops/conv.py and ops/pool.py. Arguments are
checked once here, with messages that name the op; the Functions and kernels below assume valid input."""
import numpy as np

from ..ops.conv import Conv2d as Conv2dFunction
from ..ops.kernels.geometry import kernel_span, pair, same_padding
from ..ops.pool import AdaptiveAvgPool2d as AdaptiveAvgPool2dFunction, AvgPool2d as AvgPool2dFunction, \
    MaxPool2d as MaxPool2dFunction
from ..tensor import Tensor


def check_float_tensors(op: str, **tensors) -> None:
    """Every given Tensor (None skipped) is a float32 or float64 Tensor, all of one dtype."""
    given = {name: t for name, t in tensors.items() if t is not None}
    for name, t in given.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    dtypes = {name: t.dtype for name, t in given.items()}
    if any(d not in (np.float32, np.float64) for d in dtypes.values()) or len(set(dtypes.values())) > 1:
        received = ", ".join(f"{name} {d}" for name, d in dtypes.items())
        raise ValueError(f"{op}: expected float32 or float64 tensors of one dtype, got {received}")


def check_4d(op: str, x: Tensor, what: str = "input (N, C, H, W)") -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D {what}, got shape {x.shape}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of x (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW), plus bias (C_out,).

    stride, padding and dilation take an int or an (h, w) pair; padding also 'valid' (none) or 'same' (output
    as large as the input; stride 1 only). Output size per axis: floor((H + 2P − D·(K−1) − 1)/S) + 1.
    """
    op = "conv2d"
    check_float_tensors(op, input=x, weight=weight, bias=bias)
    check_4d(op, x)
    check_4d(op, weight, "weight (C_out, C_in/groups, kH, kW)")
    stride, dilation = pair(stride, "stride", op), pair(dilation, "dilation", op)
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{op}: stride and dilation must be at least 1, got stride={stride}, dilation={dilation}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    (_, channels, height, width), (out_channels, group_in, kernel_h, kernel_w) = x.shape, weight.shape
    if min(kernel_h, kernel_w) < 1:
        raise ValueError(f"{op}: weight {weight.shape} has a {kernel_h}×{kernel_w} kernel; expected at least 1×1")
    if channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({channels}) and the output "
                         f"channels ({out_channels}); input {x.shape}, weight {weight.shape}")
    if channels != group_in * groups:
        raise ValueError(f"{op}: input {x.shape} has {channels} channels but weight {weight.shape} expects "
                         f"C_in/groups × groups = {group_in} × {groups} = {group_in * groups}")
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
            (pad_h, extra_h), (pad_w, extra_w) = same_padding(kernel_h, dilation[0]), same_padding(kernel_w, dilation[1])
            padding, extra = (pad_h, pad_w), (extra_h, extra_w)
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = pair(padding, "padding", op)
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    span_h, span_w = kernel_span(kernel_h, dilation[0]), kernel_span(kernel_w, dilation[1])
    padded_h, padded_w = height + 2 * padding[0] + extra[0], width + 2 * padding[1] + extra[1]
    if span_h > padded_h or span_w > padded_w:
        raise ValueError(f"{op}: the kernel ({kernel_h}×{kernel_w}, dilated to {span_h}×{span_w}) is larger than the "
                         f"padded input ({padded_h}×{padded_w}) for input {x.shape} and padding {padding}: "
                         "the output would have size < 1")
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},) for weight {weight.shape}, got {bias.shape}")
    return Conv2dFunction.apply(x, weight, bias, stride, padding, dilation, int(groups), extra)


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
    return MaxPool2dFunction.apply(x, *arguments)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """The mean of each window of x (N, C, H, W); zero padding counts in the mean. stride defaults to kernel_size."""
    return AvgPool2dFunction.apply(x, *_pool_arguments("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Average-pool x (N, C, H, W) to output_size (an int or (h, w); None keeps that axis); 1 is global pooling."""
    op = "adaptive_avg_pool2d"
    _check_input(op, x)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(x.shape[2 + i] if size is None else size for i, size in enumerate(output_size))
    output_size = pair(output_size, "output_size", op)
    if min(output_size) < 1:
        raise ValueError(f"{op}: output_size must be at least 1, got {output_size} for input {x.shape}")
    return AdaptiveAvgPool2dFunction.apply(x, output_size)
