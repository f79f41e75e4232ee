"""The Conv2d Function on arrays; the Numba kernels in ops/kernels/conv.py do the work, and nn/functional_conv.py
checks the arguments before it is applied."""
import numpy as np

from ..autograd import Function
from .kernels import conv as kernels
from .kernels.geometry import output_hw


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
            out_hw = output_hw(x.shape[2:], weight.shape[2:], stride, padding, dilation)
            out = np.zeros((x.shape[0], weight.shape[0], *out_hw), x.dtype)
            return out if bias is None else out + bias[:, None, None]
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



class ConvTranspose2d(Function):
    """The adjoint of Conv2d with respect to its input (weight laid out (C_in, C_out/groups, kH, kW), as
    PyTorch's), so each direction is one of the conv's own kernels:
    O = conv's dL/dX rule applied to X (X scattered through the filter), plus b;
    dL/dX = conv's forward rule, dL/dO ⋆ W; dL/dW = conv's dL/dW rule with dL/dO as its input and X as its
    output gradient; dL/db = Σ_N,H,W dL/dO. `output_shape` is (N, C_out, H_out, W_out). When output_padding
    reaches the stride (allowed below the dilation), the conv of an output that size has `extra` more rows
    (columns) than X: X gets that many zero rows at the bottom (right), and dL/dX drops them."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, output_shape, extra=(0, 0)):
        x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
        ctx.input_shape = x.shape
        if extra != (0, 0):
            x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.empty = min(x.shape) == 0 or weight.size == 0 or min(output_shape) == 0
        out = (np.zeros(output_shape, x.dtype) if ctx.empty
               else kernels.conv2d_grad_input(x, weight, output_shape, *ctx.geometry))
        return out if bias is None else out + bias[:, None, None].astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = np.ascontiguousarray(grad)
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_b = grad.sum(axis=(0, 2, 3)) if needs_b else None
        if ctx.empty:
            return np.zeros(ctx.input_shape, x.dtype), np.zeros_like(weight), grad_b, None, None, None, None, None, None
        grad_x = kernels.conv2d_forward(grad, weight, None, *ctx.geometry) if needs_x else None
        if grad_x is not None and grad_x.shape != ctx.input_shape:
            grad_x = grad_x[:, :, :ctx.input_shape[2], :ctx.input_shape[3]]
        grad_w = kernels.conv2d_grad_weight(grad, x, weight.shape, *ctx.geometry) if needs_w else None
        return grad_x, grad_w, grad_b, None, None, None, None, None, None
