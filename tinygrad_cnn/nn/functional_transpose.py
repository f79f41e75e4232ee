"""conv_transpose2d: the Tensor-facing wrapper of ops.conv.ConvTranspose2d, its arguments checked here."""
import numpy as np

from ..ops.conv import ConvTranspose2d as ConvTranspose2dFunction
from ..ops.kernels.geometry import kernel_span, pair
from ..tensor import Tensor
from .functional_conv import check_4d, check_float_tensors


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor = None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """The transposed 2-D convolution (the gradient of conv2d with respect to its input) of input (N, C_in, H, W)
    with weight (C_in, C_out/groups, kH, kW), plus bias (C_out,). Output size per axis:
    (H − 1)·S − 2P + D·(K − 1) + output_padding + 1. Arguments as PyTorch's (note groups before dilation)."""
    op = "conv_transpose2d"
    check_float_tensors(op, input=input, weight=weight, bias=bias)
    check_4d(op, input)
    check_4d(op, weight, "weight (C_in, C_out/groups, kH, kW)")
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
    dilation, output_padding = pair(dilation, "dilation", op), pair(output_padding, "output_padding", op)
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: stride and dilation must be at least 1 and padding non-negative, got stride={stride}, "
                         f"dilation={dilation}, padding={padding}")
    if not all(0 <= p < max(s, d) for p, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding must be non-negative and smaller than the stride or the dilation, "
                         f"got output_padding={output_padding} for stride={stride}, dilation={dilation}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    (batch, channels, height, width), (weight_in, group_out, kernel_h, kernel_w) = input.shape, weight.shape
    if channels != weight_in or channels % groups:
        raise ValueError(f"{op}: input {input.shape} has {channels} channels; weight {weight.shape} expects "
                         f"{weight_in}, divisible by groups={groups}")
    out_channels = group_out * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},) for weight {weight.shape} and "
                         f"groups={groups}, got {bias.shape}")
    out_hw = tuple((size - 1) * s - 2 * p + kernel_span(k, d) + extra for size, s, p, k, d, extra in
                   zip((height, width), stride, padding, (kernel_h, kernel_w), dilation, output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output would be {out_hw[0]}×{out_hw[1]} for input {input.shape}, weight "
                         f"{weight.shape}, stride={stride}, padding={padding}: padding is too large")
    extra = tuple(p // s for p, s in zip(output_padding, stride))
    return ConvTranspose2dFunction.apply(input, weight, bias, stride, padding, dilation, int(groups),
                                         (batch, out_channels, *out_hw), extra)
