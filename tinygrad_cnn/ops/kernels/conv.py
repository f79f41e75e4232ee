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
Implementations of each: `conv_direct` (loops, one task per slice of the output), `conv_gemm` (columns +
one BLAS GEMM per chunk of samples), `conv_depthwise*` (one input channel per group: no GEMM),
`conv_blocked` (a register tile of positions × output channels over all taps: the forward, dL/dX as that forward
on dL/dO, and dL/dW), and `conv_pointwise` for the 1×1 conv (channel products on the sampled input itself, no
columns). Arrays must be C-contiguous and share one float dtype.
"""
import numpy as np

from tinygrad_cnn.ops.kernels import (conv_blocked, conv_depthwise, conv_depthwise_planes, conv_depthwise_same,
                                      conv_direct, conv_gemm, conv_pointwise)
from tinygrad_cnn.ops.kernels.geometry import output_hw
from tinygrad_cnn.ops.kernels.padding import phase_planes, phase_shape
from tinygrad_cnn.ops.kernels.register_tile import tile_width
from tinygrad_cnn.ops.kernels.vector_width import VECTOR_BYTES

ALGORITHMS = ("pointwise", "direct", "gemm", "depthwise", "depthwise_planes", "depthwise_same", "blocked")


def choose_algorithm(weight_shape, stride, padding, groups, direction, positions=None, dilation=(1, 1)):
    """One of ALGORITHMS for one direction ('forward', 'grad_input',
    'grad_weight'); `positions` is the size of the plane written (OH·OW forward, H·W for grad_input), None when
    unknown.

    A GEMM pays for its columns only when both of its small dimensions are sizeable: M = output channels per
    group and K = C_in/groups·kH·kW (forward, grad_weight). For grad_input the GEMM is Wᵀ @ dL/dO (inner size
    C_out/groups) followed by a scatter of every tap's plane; it pays from C_in/groups = 64 on. Close calls stay
    direct: the direct kernels give the same bits on any thread count (a GEMM split over threads does not), so
    the MNIST models train identically on one and two threads. The direct kernels compute every stride-1
    position, so S > 1 always goes to the GEMM. An ungrouped 1×1 conv of any stride and padding is a channel
    product at each sampled position ('pointwise', OH·OW·N·M per sample): no columns to build. A depthwise
    conv (one input channel per group, groups > 1) has no channel sum for a GEMM: see _depthwise_algorithm. The
    measurements behind the thresholds are in benchmarks/RESULTS.md (`benchmarks/conv.py --algorithms`).

    The register-blocked kernels ('blocked', any groups, counted per group) hold a tile of positions × output
    channels (float32: 8 × 32 with AVX-512, 6 × 16 with AVX2; 16 × 16 and 12 × 8 for layers of at most one vector
    of channels) in registers over all taps, a tile's positions
    consecutive outputs (across row ends): their forward beats both others on output planes of 4×4 and more, at
    any stride, with 32 or more output channels and 64 or more taps per output (on planes under 8×8 up to 1152
    taps, C_in = 128 at 3×3: past that the GEMM's forward is faster there); their backward from 8×8 on. On
    planes of 16×16 or less 16 to 31 output channels still beat the direct kernel's passes over short rows, and on
    any plane when they fill whole tiles (16: a wide tile with AVX2, a narrow one with AVX-512). dL/dX runs as their
    forward on dL/dO with C_in outputs, so it takes 32 ≤ C_in ≤ 128, or 16 (stride 1: at stride 2 three
    quarters of the dilated dL/dO are zeros); from C_in = 64 on, on planes under 16×16, the GEMM is faster past
    576 taps per output (C_out = 64 at 3×3). dL/dW holds a tile of taps × output channels over the positions,
    from 32 output channels or whole tiles of them (16, as for the forward); past 576 taps per output channel
    (C_in = 64 at 3×3) the GEMM is faster on planes under 16×16.
    """
    out_channels, group_in, kernel_h, kernel_w = weight_shape
    if group_in == 1 and groups > 1:
        return _depthwise_algorithm(weight_shape, stride, padding, direction, positions, dilation)
    if (kernel_h, kernel_w, groups) == (1, 1, 1):
        return "pointwise"
    group_out = out_channels // groups
    filled = group_out >= 32 or (group_out >= 16 and positions is not None and positions <= 256)
    taps_in = group_in * kernel_h * kernel_w
    if direction == "forward" and (filled or _fills_tiles(group_out)) and taps_in >= 64 and (
            positions is None or positions >= 64 or positions >= 16 and taps_in <= 1152):
        return "blocked"
    if positions is None or positions >= 64:
        dw_taps = group_in * kernel_h * kernel_w
        if direction == "grad_weight" and (group_out >= 32 or _fills_tiles(group_out) or groups > 1 and filled) and (
                64 <= dw_taps) and (
                dw_taps <= 576 or positions is not None and positions >= 256):
            return "blocked"
        taps = group_out * kernel_h * kernel_w  # per input channel of dL/dX
        if direction == "grad_input" and stride == (1, 1) and (group_in >= 32 or _fills_tiles(group_in)) and (
                group_in <= 128 and 64 <= taps) and (
                group_in < 64 or taps <= 576 or positions is None or positions >= 256):
            return "blocked"
    if stride != (1, 1):
        return "gemm"
    if direction == "grad_input":
        return "direct" if group_in < 64 else "gemm"
    small = group_out < 32 or group_in * kernel_h * kernel_w < 32
    return "direct" if small or (group_out <= 64 and group_in * kernel_h * kernel_w <= 288) else "gemm"


def _fills_tiles(channels):
    """Whether `channels` (16 or more) fill whole float32 register tiles (register_tile.tile_width: 16 channels
    fill a narrow tile with AVX-512, a wide one with AVX2)."""
    return channels >= 16 and channels % tile_width(channels, 4) == 0


def _depthwise_algorithm(weight_shape, stride, padding, direction, positions, dilation):
    """The depthwise pick. With AVX-512, 'depthwise_same' where it fits (its masked loads take a bit mask
    directly), else planes at stride 1 on planes of 32×32 and more, else channels-last. With AVX2 a bit mask
    must be widened to a vector per load, so 'depthwise_same' loses to both others: planes at stride 1 from
    16×16 on (dL/dW from 32×32 on) and at stride 2 for the forward and dL/dW on 16×16 outputs and more, else
    channels-last."""
    if positions is None:
        positions = 1024
    if VECTOR_BYTES == 64:
        if conv_depthwise_same.fits(weight_shape, stride, padding, dilation):
            return "depthwise_same"
        return "depthwise_planes" if stride == (1, 1) and positions >= 1024 else "depthwise"
    if stride == (1, 1):
        rows_long_enough = positions >= (1024 if direction == "grad_weight" else 256)
    else:  # the forward and dL/dW on output planes of 16×16 and more; dL/dX stays channels-last
        rows_long_enough = direction != "grad_input" and positions >= 256
    return "depthwise_planes" if rows_long_enough else "depthwise"


def supports(algorithm, weight_shape, stride, padding, groups, direction="forward", dilation=(1, 1)):
    """Whether `algorithm` can compute `direction` of a conv of this geometry (pointwise: 1×1, groups = 1; depthwise:
    C_in/groups = 1, depthwise_same also stride 1 and 2P = D·(K−1); blocked and the others: any)."""
    if algorithm == "pointwise":
        return tuple(weight_shape[2:]) + (groups,) == (1, 1, 1)
    if algorithm == "depthwise_same":
        return weight_shape[1] == 1 and conv_depthwise_same.fits(weight_shape, stride, padding, dilation)
    if algorithm in ("depthwise", "depthwise_planes"):
        return weight_shape[1] == 1
    return algorithm in ALGORITHMS


def _algorithm(algorithm, weight_shape, stride, padding, dilation, groups, direction, positions=None):
    """The forced `algorithm` after checking it fits, else choose_algorithm's pick."""
    if algorithm is None:
        return choose_algorithm(weight_shape, stride, padding, groups, direction, positions, dilation)
    if not supports(algorithm, weight_shape, stride, padding, groups, direction, dilation):
        fitting = [a for a in ALGORITHMS if supports(a, weight_shape, stride, padding, groups, direction, dilation)]
        raise ValueError(f"conv2d: algorithm {algorithm!r} cannot compute the {direction} of a conv with weight "
                         f"{tuple(weight_shape)}, stride {stride}, padding {padding}, dilation {dilation}, groups "
                         f"{groups}; expected one of {fitting}")
    return algorithm


def _phase_taps(input_shape, weight_shape, stride, padding, dilation):
    """(tap phases, tap shifts, phase plane height, width) for reading a filter from the phase planes of the
    zero-padded input (conv_gemm.tap_phases)."""
    q_h, q_w = phase_shape(input_shape, stride, padding)
    return (*conv_gemm.tap_phases(weight_shape[2], weight_shape[3], stride, dilation, q_w), q_h, q_w)


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, algorithm=None):
    """O = X ⋆ W + b as a fresh (N, M, OH, OW) array; `algorithm` forces one of ALGORITHMS."""
    batch, out_channels = x.shape[0], weight.shape[0]
    out_h, out_w = output_hw(x.shape[2:], weight.shape[2:], stride, padding, dilation)
    out = np.empty((batch, out_channels, out_h, out_w), x.dtype)
    algorithm = _algorithm(algorithm, weight.shape, stride, padding, dilation, groups, "forward", out_h * out_w)
    if algorithm == "blocked":
        conv_blocked.forward(x, weight, bias, out, stride, padding, dilation, groups)
    elif algorithm == "depthwise_planes":
        conv_depthwise_planes.forward(x, weight, np.zeros(out_channels, x.dtype) if bias is None else bias, out,
                                      *stride, *padding, *_phase_taps(x.shape, weight.shape, stride, padding, dilation))
    elif algorithm == "depthwise_same":
        conv_depthwise_same.forward(x, weight, np.zeros(out_channels, x.dtype) if bias is None else bias, out, padding,
                                    dilation)
    elif algorithm == "depthwise":
        conv_depthwise.forward(x, weight, np.zeros(out_channels, x.dtype) if bias is None else bias, out, *stride,
                               *padding, *dilation)
    elif algorithm == "pointwise":
        conv_pointwise.forward(x, weight, bias, out, stride, padding)
    elif algorithm == "gemm":
        conv_gemm.forward(x, weight, bias, out, stride, padding, dilation, groups)
    else:
        conv_direct.forward(x, weight, np.zeros(out_channels, x.dtype) if bias is None else bias, out,
                            *stride, *padding, *dilation, groups)
    return out


def conv2d_grad_input(grad_out, weight, input_shape, stride, padding, dilation, groups, algorithm=None):
    """dL/dX as a fresh array of `input_shape`, by the full-convolution rule; `algorithm` forces one of ALGORITHMS."""
    algorithm = _algorithm(algorithm, weight.shape, stride, padding, dilation, groups, "grad_input",
                           input_shape[2] * input_shape[3])
    if algorithm == "blocked":
        return _grad_input_blocked(grad_out, weight, input_shape, stride, padding, dilation, groups)
    grad_in = np.empty(input_shape, grad_out.dtype)
    if algorithm == "depthwise_planes":
        conv_depthwise_planes.grad_input(grad_out, weight, grad_in, *stride, *padding,
                                         *_phase_taps(input_shape, weight.shape, stride, padding, dilation))
    elif algorithm == "depthwise_same":
        conv_depthwise_same.grad_input(grad_out, weight, grad_in, padding, dilation)
    elif algorithm == "depthwise":
        conv_depthwise.grad_input(grad_out, weight, grad_in, *stride, *padding, *dilation)
    elif algorithm == "pointwise":
        conv_pointwise.grad_input(grad_out, weight, grad_in, stride, padding)
    elif algorithm == "gemm":
        conv_gemm.grad_input(grad_out, weight, grad_in, stride, padding, dilation, groups)
    else:
        conv_direct.grad_input(grad_out, weight, grad_in, *stride, *padding, *dilation, groups)
    return grad_in


def _grad_input_blocked(grad_out, weight, input_shape, stride, padding, dilation, groups):
    """dL/dX literally as the rule says, on the register-blocked forward: Z = dL/dO dilated by S (to the stride-1
    output size H + 2P − D·(K−1), zeros past the last window), zero-padded by D·(K−1), fully convolved with the
    180°-rotated filter (transposed: C_in outputs from C_out inputs) and cropped by P. Padding Z by D·(K−1) − P
    instead of cropping is the same; where that is negative, Z is cropped."""
    kernel, (batch, out_channels) = weight.shape[2:], grad_out.shape[:2]
    wide = [input_shape[2 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) for i in range(2)]
    z = grad_out
    if tuple(stride) != (1, 1):
        z = np.zeros((batch, out_channels, *wide), grad_out.dtype)
        z[:, :, ::stride[0], ::stride[1]] = grad_out
    pads = [dilation[i] * (kernel[i] - 1) - padding[i] for i in range(2)]
    crop = [max(0, -p) for p in pads]
    if crop != [0, 0]:
        z = np.ascontiguousarray(z[:, :, crop[0]:z.shape[2] - crop[0], crop[1]:z.shape[3] - crop[1]])
    group_out, group_in = out_channels // groups, weight.shape[1]  # per group: C/groups outputs from M/groups inputs
    transposed = weight.reshape(groups, group_out, group_in, *kernel).transpose(0, 2, 1, 3, 4)
    rotated = np.ascontiguousarray(transposed[..., ::-1, ::-1]).reshape(groups * group_in, group_out, *kernel)
    return conv2d_forward(z, rotated, None, (1, 1), tuple(max(0, p) for p in pads), dilation, groups, "blocked")


def conv2d_grad_weight(x, grad_out, weight_shape, stride, padding, dilation, groups, algorithm=None):
    """dL/dW = X ⋆ dL/dO as a fresh array of `weight_shape`; `algorithm` forces one of ALGORITHMS."""
    grad_w = np.empty(weight_shape, x.dtype)
    algorithm = _algorithm(algorithm, weight_shape, stride, padding, dilation, groups, "grad_weight",
                           grad_out.shape[2] * grad_out.shape[3])
    if algorithm == "blocked":
        conv_blocked.grad_weight(x, grad_out, grad_w, stride, padding, dilation, groups)
    elif algorithm == "depthwise_planes":
        conv_depthwise_planes.grad_weight(x, grad_out, grad_w, *stride, *padding,
                                          *_phase_taps(x.shape, weight_shape, stride, padding, dilation))
    elif algorithm == "depthwise_same":
        conv_depthwise_same.grad_weight(x, grad_out, grad_w, padding, dilation)
    elif algorithm == "depthwise":
        conv_depthwise.grad_weight(x, grad_out, grad_w, *stride, *padding, *dilation)
    elif algorithm == "pointwise":
        conv_pointwise.grad_weight(x, grad_out, grad_w, stride, padding)
    elif algorithm == "gemm":
        conv_gemm.grad_weight(x, grad_out, grad_w, stride, padding, dilation, groups)
    else:
        conv_direct.grad_weight(phase_planes(x, (1, 1), padding), grad_out, grad_w, *stride, *dilation,
                                groups)
    return grad_w


def conv2d_grad_bias(grad_out):
    """dL/db = dL/dO summed over N, H and W, as a fresh (M,) array."""
    grad_b = np.empty(grad_out.shape[1], grad_out.dtype)
    conv_direct.grad_bias(grad_out, grad_b)
    return grad_b
