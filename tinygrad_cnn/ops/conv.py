"""conv2d: arguments are checked once here, in Python; the Numba kernels in ops/kernels/conv.py do the work."""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .kernels import conv as kernels, launch_lock
from .kernels.geometry import conv2d_output_size


def pair(value, name: str, op: str) -> tuple:
    """An int or an (h, w) pair of ints as a pair; a TypeError naming the op otherwise."""
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                     for v in values):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in values)


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


class Conv2d(Function):
    """O = X ⋆ W + b (bias fused in the kernel). Backward by the textbook rules, each a kernel of its own:
    dL/dX = full convolution of dL/dO (zero-padded by D·(K−1), dilated by S) with the 180°-rotated filter,
    cropped by the forward padding; dL/dW = X ⋆ dL/dO (dL/dO dilated by S); dL/db = Σ_N,H,W dL/dO.

    `extra` pads the bottom/right of the input by (h, w) more than `padding` (for padding='same' with an
    even kernel); the backward crops it off again.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, extra=(0, 0)):
        # made contiguous once per call (no copy when they already are)
        x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
        bias = None if bias is None else np.ascontiguousarray(bias)
        input_shape = x.shape
        if extra != (0, 0):
            x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.input_shape = (stride, padding, dilation, groups), input_shape
        ctx.empty = min(input_shape) == 0 or weight.size == 0
        if ctx.empty:  # no product to sum: O = b, and the kernels never see an empty array
            out = np.zeros(_output_shape(x.shape, weight.shape, stride, padding, dilation), x.dtype)
            return out if bias is None else out + bias[:, None, None]
        with launch_lock:
            return kernels.conv2d_forward(x, weight, bias, *ctx.geometry)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = np.ascontiguousarray(grad)
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        if ctx.empty:  # O = b: only the bias has a gradient
            return (np.zeros(ctx.input_shape, grad.dtype), np.zeros_like(weight), grad.sum(axis=(0, 2, 3)),
                    None, None, None, None, None)
        grad_x = grad_w = grad_b = None
        with launch_lock:
            if needs_x:
                grad_x = kernels.conv2d_grad_input(grad, weight, x.shape, *ctx.geometry)
            if needs_w:
                grad_w = kernels.conv2d_grad_weight(x, grad, weight.shape, *ctx.geometry)
            if needs_b:
                grad_b = kernels.conv2d_grad_bias(grad)
        if needs_x:
            height, width = ctx.input_shape[2:]
            grad_x = grad_x if grad_x.shape == ctx.input_shape else grad_x[:, :, :height, :width]
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _output_shape(input_shape, weight_shape, stride, padding, dilation) -> tuple:
    """(N, C_out, OH, OW), OH = floor((H + 2P − D·(K−1) − 1)/S) + 1."""
    sizes = [conv2d_output_size(input_shape[2 + i], weight_shape[2 + i], stride[i], padding[i], dilation[i])
             for i in range(2)]
    return (input_shape[0], weight_shape[0], *sizes)


def _same_padding(kernel: int, dilation: int) -> tuple:
    """(padding on both sides, extra on the bottom/right) so that the output keeps the input's size at stride 1."""
    total = dilation * (kernel - 1)
    return total // 2, total - 2 * (total // 2)


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
            (pad_h, extra_h), (pad_w, extra_w) = _same_padding(kernel_h, dilation[0]), _same_padding(kernel_w, dilation[1])
            padding, extra = (pad_h, pad_w), (extra_h, extra_w)
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = pair(padding, "padding", op)
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    span_h, span_w = dilation[0] * (kernel_h - 1) + 1, dilation[1] * (kernel_w - 1) + 1
    padded_h, padded_w = height + 2 * padding[0] + extra[0], width + 2 * padding[1] + extra[1]
    if span_h > padded_h or span_w > padded_w:
        raise ValueError(f"{op}: the kernel ({kernel_h}×{kernel_w}, dilated to {span_h}×{span_w}) is larger than the "
                         f"padded input ({padded_h}×{padded_w}) for input {x.shape} and padding {padding}: "
                         "the output would have size < 1")
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},) for weight {weight.shape}, got {bias.shape}")
    return Conv2d.apply(x, weight, bias, stride, padding, dilation, int(groups), extra)
