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
from tinygrad_cnn.runtime.array_pool import empty

ALGORITHMS = ("pointwise", "direct", "gemm", "depthwise", "depthwise_planes", "depthwise_same", "blocked")


def choose_algorithm(weight_shape, stride, padding, groups, direction, positions=None, dilation=(1, 1),
                     out_positions=None, batch=None, bias=False):
    """One of ALGORITHMS for one direction ('forward', 'grad_input',
    'grad_weight'); `positions` is the size of the plane written (OH·OW forward, H·W for grad_input), None when
    unknown (taken as 32×32); `out_positions` OH·OW for grad_input (taken as H·W); `batch` the samples (taken
    as 32); `bias` whether the forward adds one.

    An ungrouped 1×1 conv of any stride and padding is a channel product at each sampled position
    ('pointwise', OH·OW·N·M per sample): no columns to build (on the blocked kernel where that wins:
    _blocked_one_by_one). A depthwise conv (one input channel per group,
    groups > 1) has no channel sum for a GEMM: see _depthwise_algorithm. Otherwise the register-blocked kernels
    ('blocked', any groups, counted per group) hold a tile of positions × output channels (float32: 8 × 32 with
    AVX-512, 6 × 16 with AVX2; 16 × 16 and 12 × 8 for layers of at most one vector of channels, 16 × 8 with
    AVX-512 for at most 8) in registers over all taps, and the GEMM ('gemm', columns + BLAS) takes what they do
    not win; 'direct' (one pass per tap over whole planes) is left for layers with too few channels or taps to
    fill a tile. Measured per shape and
    direction (`benchmarks/conv.py --algorithms`, figures in benchmarks/RESULTS.md), the blocked kernels win on
    planes of 4×4 and more, in every direction, when they fill their tiles (32 or more output channels; 16 on
    planes of 16×16 or less or when 16 fill whole tiles; with AVX-512 also 5 to 8, in the half tile, from 9 taps
    on: batch 64, LeNet's 6x14x14->16 k5 dL/dX 0.69 -> 0.63 ms, its 1x28x28->6 forward 0.24 -> 0.19, and at
    stride 2 8x32x32->8 1.12 -> 0.32, its dL/dW 2.22 -> 0.47, where the GEMM took them) and have 64 or more taps
    per output (the forward from 9: one input channel at 3×3, where the direct kernel's passes are no faster;
    on Zen 3 with AVX2, batch 64, 1x28x28->32 0.63 against the direct kernel's 1.11 ms), except:
      forward      with AVX-512 on planes under 8×8 from 2304 taps per output or 384 output channels at batches
                   under 8, where a GEMM that large runs nearer the peak (its tasks take up to 8 samples: a
                   block's weights serve them all from the L2 cache; 256x4x4->512 at batch 32 4.1 against the
                   GEMM's 4.6 ms, 512x8x8->512 26.5 against 29.6; at batch 1 1.06 against 0.65 ms). With AVX2
                   (Zen 3) the blocked kernels win those too (batch 32: 256x8x8->512 s2 8.6 against 9.8 ms; batch
                   4, 512x4x4->512 3.0 against 5.3);
      grad_input   (their forward on dL/dO, C_in outputs from C_out inputs, C_out·K² taps; at a stride S > 1
                   phase by phase of the input, each on only its taps of dL/dO, without the dilation's zeros) at
                   S > 1 on input planes of 16×16 and more with C_in ≤ 64, with AVX-512 ≤ 128 and any on 32×32
                   (batch 64: ResNet-20's 32x16x16->64 s2 0.99 against the GEMM's 1.42 ms, 16x32x32->32 s2 1.19
                   against 2.35; with AVX2 code 1.16 against 1.54 and 1.32 against 2.08; 128x16x16->256 at batch
                   32 5.2 against 5.6, with AVX2 code 8.0 against 7.6, where the GEMM keeps it; on 8×8 the GEMM
                   wins or ties); at stride 1 when the full convolution's padding adds at most half to the
                   outputs' reads (H·W ≤ 1.5·OH·OW): its taps meet the zeros of the padding, where the GEMM's do
                   not. With AVX-512 that is all (the rotated filter packed in one pass: batch 32, 512x4x4->512
                   10.3 against the GEMM's 11.2 ms, 256x8x8->256 8.8 against 10.3, 512x16x16->512 133 against
                   150); with AVX2 code up to 1152 taps on planes under 8×8 (on 4×4 the GEMM wins:
                   512x4x4->512 15.7 against 18.5), 2304 to 16×16 (on 8×8 not: 256x8x8->256 14.0 against
                   15.3), else 4096, and C_in ≤ 256 (128 over 16×16);
      grad_weight  (a tile of taps × output channels summed over the positions; from 128 output channels, and
                   at stride 2 from two blocks of them, the input is padded once first) with AVX-512 from 9
                   taps on, at any stride, plane and channel count (batch 32: 128x8x8->256 s2 2.1 against the
                   GEMM's 4.7 ms, 256x4x4->256 2.8 against 3.5, 512x16x16->512 137 against 169; 3x32x32->64 at
                   batch 64 2.3 against 3.1 on the direct kernel). From 9 taps, not 27, so that a first layer on
                   one channel (MNIST's 1x28x28->32) needs no direct kernel compiled: 0.5 s off a cold start, for
                   0.52 against the direct kernel's 0.45 ms at batch 64; with AVX2 code up to 2304 taps and 128
                   output channels, 256 on output planes of 8×8 and more (256x8x8->256 12.1 against 12.3), and
                   at stride 2 on output planes of 8×8 and more (64x32x32->128 7.2 against 8.3) or up to 144
                   taps.
    The AVX2 limits were measured with the kernels compiled for Haswell and OpenBLAS's Haswell kernels on an
    AVX-512 machine (both sides' AVX2 code on the same cores); the forward's and the depthwise ones on an AVX2
    machine (Zen 3).
    The direct kernels compute every stride-1 position, so at S > 1 the GEMM takes what the blocked do not.
    Close calls stay direct: the direct kernels give the same bits on any thread count (a GEMM split over
    threads does not), so the MNIST models train identically on one and two threads.
    """
    out_channels, group_in, kernel_h, kernel_w = weight_shape
    if group_in == 1 and groups > 1:
        return _depthwise_algorithm(weight_shape, stride, padding, positions, dilation)
    plane = 1024 if positions is None else positions
    group_out = out_channels // groups
    if (kernel_h, kernel_w, groups) == (1, 1, 1):
        return "blocked" if _blocked_one_by_one(direction, group_in, group_out, stride, plane, bias) else "pointwise"
    taps_in, taps_out = group_in * kernel_h * kernel_w, group_out * kernel_h * kernel_w
    padded_reads = plane / (plane if out_positions is None else out_positions)
    if plane >= 16 and _blocked_wins(direction, group_in, group_out, taps_in, taps_out, stride, plane, groups,
                                     padded_reads, 32 if batch is None else batch):
        return "blocked"
    if stride != (1, 1):
        return "gemm"
    if direction == "grad_input":
        return "direct" if group_in < 64 else "gemm"
    small = group_out < 32 or taps_in < 32
    return "direct" if small or (group_out <= 64 and taps_in <= 288) else "gemm"


def _blocked_one_by_one(direction, channels, out_channels, stride, plane, bias):
    """Whether a 1×1 conv runs faster on the register-blocked kernels than as products, when the channels it
    writes fill its tiles. The forward when it adds a bias: the kernel adds it as it stores, the products in a
    pass of their own over the output (batch 32, 32x32x32->64: 1.72 -> 1.03 ms; 1.77 -> 1.13 with AVX2 code);
    and with AVX-512 also at stride 2 (it reads the strided positions where a product needs them gathered first:
    256x8x8->512 1.00 -> 0.61 ms, ResNet-20's 16x32x32->32 shortcut at batch 64 0.30 -> 0.24) and on planes to
    8×8 (512x4x4->512 1.29 -> 1.08; 128x8x8->256 0.63 -> 0.50); from 16×16 on they tie or the products win
    (64x32x32->128 at batch 8 0.54 against 0.66). dL/dX at stride 1 on planes to 8×8, where the products per
    sample are short (512x4x4->512 1.60 -> 1.17 ms; with AVX2 code 128x8x8->256 1.17 -> 0.89, 512x4x4->512 a
    tie), and with AVX-512 to 16×16 (64x16x16->128 at batch 64 1.39 -> 1.22; on 32×32 the products win:
    64x32x32->128 6.0 against 11.4). dL/dW with AVX-512 at stride 1 on planes to 8×8 (512x4x4->512 1.55 ->
    1.23 ms, 128x8x8->256 1.10 -> 0.85), and with AVX2 on planes to 16×16 (on Zen 3 they win or tie there and
    lose on 32×32; benchmarks/RESULTS.md)."""
    def fills(count):
        return count >= 32 or _fills_tiles(count)
    if direction == "grad_input":  # the forward of dL/dO: C outputs from M inputs
        return stride == (1, 1) and plane <= (256 if VECTOR_BYTES == 64 else 64) and fills(channels) and \
            out_channels >= 32
    if direction == "grad_weight":
        return stride == (1, 1) and plane <= (64 if VECTOR_BYTES == 64 else 256) and fills(out_channels) and \
            channels >= 32
    wide = VECTOR_BYTES == 64 and (stride != (1, 1) or plane <= 64)
    return fills(out_channels) and channels >= 9 and (bias or wide)


def _blocked_wins(direction, group_in, group_out, taps_in, taps_out, stride, plane, groups, padded_reads, batch):
    """choose_algorithm's rule for the register-blocked kernels on planes of 16 positions or more."""
    def filled(channels):
        return channels >= 32 or channels >= 16 and plane <= 256 or _fills_tiles(channels)
    written = group_in if direction == "grad_input" else group_out
    if VECTOR_BYTES == 64 and 5 <= written <= 8:  # the half tile
        return (taps_out if direction == "grad_input" else taps_in) >= 9 and (
            direction != "grad_input" or stride == (1, 1) or plane >= 256)
    if direction == "forward":
        wide_gemm = VECTOR_BYTES == 64 and plane < 64 and (taps_in >= 2304 or group_out >= 384) and batch < 8
        return filled(group_out) and taps_in >= 9 and not wide_gemm
    if direction == "grad_input":
        if not filled(group_in) or taps_out < 64:
            return False
        if stride != (1, 1):  # phase by phase of the input
            return plane >= 256 and (group_in <= 64 or VECTOR_BYTES == 64 and (group_in <= 128 or plane >= 1024))
        if padded_reads > 1.5:
            return False
        most_taps = 1152 if plane < 64 else 2304 if plane <= 256 else 4096
        return VECTOR_BYTES == 64 or taps_out <= most_taps and (group_in <= 128 or group_in <= 256 and plane <= 256)
    if not (group_out >= 32 or _fills_tiles(group_out) or groups > 1 and filled(group_out)):
        return False
    if VECTOR_BYTES == 64:
        return taps_in >= 9
    return 64 <= taps_in <= 2304 and (group_out <= 128 or group_out <= 256 and plane >= 64) and (
        stride == (1, 1) or plane >= 64 or taps_in <= 144)


def _fills_tiles(channels):
    """Whether `channels` (16 or more) fill whole float32 register tiles (register_tile.tile_width: 16 channels
    fill a narrow tile with AVX-512, a wide one with AVX2)."""
    return channels >= 16 and channels % tile_width(channels, 4) == 0


def _depthwise_algorithm(weight_shape, stride, padding, positions, dilation):
    """The depthwise pick. With AVX-512 'depthwise_same' where it fits (its masked loads take a bit mask
    directly; with AVX2 a mask must be widened to a vector per load, and it loses to both others), else planes
    at stride 1 on planes of 32×32 and more, where rows fill the vectors, and channels-last below that and at
    stride 2. With AVX2 channels-last everywhere: with its moves transposed in registers and its sums taken in
    strips it wins or ties on every shape measured (Zen 3, each direction, planes of 4×4 to 112×112, stride 1
    and 2, 3×3 and 5×5; benchmarks/RESULTS.md). The AVX-512 rule predates those two changes."""
    if VECTOR_BYTES == 64 and conv_depthwise_same.fits(weight_shape, stride, padding, dilation):
        return "depthwise_same"
    long_rows = positions is None or positions > 1023
    return "depthwise_planes" if VECTOR_BYTES == 64 and stride == (1, 1) and long_rows else "depthwise"


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


def _algorithm(algorithm, weight_shape, stride, padding, dilation, groups, direction, positions=None,
               out_positions=None, batch=None, bias=False):
    """The forced `algorithm` after checking it fits, else choose_algorithm's pick."""
    if algorithm is None:
        return choose_algorithm(weight_shape, stride, padding, groups, direction, positions, dilation, out_positions,
                                batch, bias)
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
    out = empty((batch, out_channels, out_h, out_w), x.dtype)
    algorithm = _algorithm(algorithm, weight.shape, stride, padding, dilation, groups, "forward", out_h * out_w,
                           batch=batch, bias=bias is not None)
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
                           input_shape[2] * input_shape[3], grad_out.shape[2] * grad_out.shape[3])
    if algorithm == "blocked":
        return _grad_input_blocked(grad_out, weight, input_shape, stride, padding, dilation, groups)
    grad_in = empty(input_shape, grad_out.dtype)
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
    """dL/dX literally as the rule says, on the register-blocked forward: dL/dO zero-padded by D·(K−1), fully
    convolved with the 180°-rotated filter (transposed: C_in outputs from C_out inputs) and cropped by P. Padding
    dL/dO by D·(K−1) − P instead of cropping is the same; where that is negative, dL/dO is cropped. At a stride
    S > 1 the dilation of dL/dO by S is left out phase by phase of the input (conv_blocked.grad_input)."""
    grad_in = empty(input_shape, grad_out.dtype)
    if tuple(stride) != (1, 1):
        conv_blocked.grad_input(grad_out, weight, grad_in, stride, padding, dilation, groups)
        return grad_in
    kernel = weight.shape[2:]
    pads = [dilation[i] * (kernel[i] - 1) - padding[i] for i in range(2)]
    crop = [max(0, -p) for p in pads]
    z = grad_out
    if crop != [0, 0]:
        z = np.ascontiguousarray(z[:, :, crop[0]:z.shape[2] - crop[0], crop[1]:z.shape[3] - crop[1]])
    conv_blocked.forward(z, weight, None, grad_in, (1, 1), tuple(max(0, p) for p in pads), dilation, groups,
                         transposed=True)
    return grad_in


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
