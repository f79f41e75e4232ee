"""2-D convolution (NCHW): the dispatchers that pick an algorithm per call.

Output size per axis: floor((W + 2P − D·(F−1) − 1) / S) + 1 (see geometry.conv2d_output_size). Cost of the
forward: H·W·K²·N·M multiply-adds per sample for an H×W output, K×K filter, N input and M output channels,
H·W·N·M for a 1×1 conv; each backward direction costs about the same.

Each direction is a rule of its own (nothing here differentiates the forward):
  forward      O = X ⋆ W + b, the cross-correlation of the zero-padded input with the filter
  grad_input   dL/dX = full convolution of dL/dO, zero-padded by D·(K−1) and dilated by S, with the filter
               rotated 180°, cropped by the forward padding
  grad_weight  dL/dW = X ⋆ dL/dO, the padded input correlated with dL/dO dilated by S
  grad_bias    dL/db = dL/dO summed over N, H and W
Two implementations of each: `conv_direct` (loops, `prange` over the slice a thread owns) and `conv_gemm`
(columns + one BLAS GEMM per chunk of samples). Arrays must be C-contiguous and share one float dtype.
"""
import numpy as np

from tinygrad_cnn.ops.kernels import conv_direct, conv_gemm
from tinygrad_cnn.ops.kernels.geometry import conv2d_output_size
from tinygrad_cnn.ops.kernels.workspace import workspace


def _dilate_pad(array, stride, padding, shape, name):
    """`array` dilated by `stride` and zero-padded (top/left by `padding`) into a workspace of `shape`."""
    if stride == (1, 1) and padding == (0, 0) and shape == array.shape:
        return array
    out = workspace.get(name, shape, array.dtype)
    conv_direct.dilate_pad(array, *stride, *padding, out)
    return out


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, algorithm=None):
    """O = X ⋆ W + b as a fresh (N, M, OH, OW) array; `algorithm` forces 'direct' or 'gemm'."""
    batch, _, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = conv2d_output_size(height, kernel_h, stride[0], padding[0], dilation[0])
    out_w = conv2d_output_size(width, kernel_w, stride[1], padding[1], dilation[1])
    out = np.empty((batch, out_channels, out_h, out_w), x.dtype)
    if (algorithm or "gemm") == "direct":
        if bias is None:
            bias = np.zeros(out_channels, x.dtype)
        x_pad = _dilate_pad(x, (1, 1), padding, x.shape[:2] + (height + 2 * padding[0], width + 2 * padding[1]),
                            "padded_input")
        conv_direct.forward(x_pad, weight, bias, out, *stride, *dilation, groups)
    else:
        conv_gemm.forward(x, weight, bias, out, stride, padding, dilation, groups)
    return out


def conv2d_grad_input(grad_out, weight, input_shape, stride, padding, dilation, groups, algorithm=None):
    """dL/dX as a fresh array of `input_shape`, by the full-convolution rule; `algorithm`: 'direct' or 'gemm'."""
    grad_in = np.empty(input_shape, grad_out.dtype)
    if (algorithm or "gemm") == "direct":
        (out_h, out_w), (kernel_h, kernel_w) = grad_out.shape[2:], weight.shape[2:]
        full_pad = (dilation[0] * (kernel_h - 1), dilation[1] * (kernel_w - 1))
        shape = grad_out.shape[:2] + ((out_h - 1) * stride[0] + 1 + 2 * full_pad[0],
                                      (out_w - 1) * stride[1] + 1 + 2 * full_pad[1])
        conv_direct.grad_input(_dilate_pad(grad_out, stride, full_pad, shape, "dilated_grad"), weight, grad_in,
                               *padding, *dilation, groups)
    else:
        conv_gemm.grad_input(grad_out, weight, grad_in, stride, padding, dilation, groups)
    return grad_in


def conv2d_grad_weight(x, grad_out, weight_shape, stride, padding, dilation, groups, algorithm=None):
    """dL/dW = X ⋆ dL/dO as a fresh array of `weight_shape`; `algorithm`: 'direct' or 'gemm'."""
    grad_w = np.empty(weight_shape, x.dtype)
    if (algorithm or "gemm") == "direct":
        (batch, channels, height, width), (out_h, out_w) = x.shape, grad_out.shape[2:]
        x_pad = _dilate_pad(x, (1, 1), padding, (batch, channels, height + 2 * padding[0], width + 2 * padding[1]),
                            "padded_input")
        shape = grad_out.shape[:2] + ((out_h - 1) * stride[0] + 1, x_pad.shape[3])
        conv_direct.grad_weight(x_pad, _dilate_pad(grad_out, stride, (0, 0), shape, "dilated_grad"), grad_w,
                                *dilation, groups)
    else:
        conv_gemm.grad_weight(x, grad_out, grad_w, stride, padding, dilation, groups)
    return grad_w


def conv2d_grad_bias(grad_out):
    """dL/db = dL/dO summed over N, H and W, as a fresh (M,) array."""
    grad_b = np.empty(grad_out.shape[1], grad_out.dtype)
    conv_direct.grad_bias(grad_out, grad_b)
    return grad_b
