"""Register-blocked direct convolution: O = X ⋆ W + b with a tile of outputs (PIXELS positions × BLOCKS vectors of
output channels) held in registers across all C·K_h·K_w taps (register_tile.tile_taps), so each output is
stored once, not once per few taps.

Weights are packed channel-blocked: packed[mb, t, l] = W[mb·V + l, t] for tap t = (c, kh, kw) and V = BLOCKS
vectors of output channels (zero past M), so a tap's weights for a tile are contiguous. The input is zero-padded
and split into its stride phases (padding.pad_split), as on the GEMM path: tap (c, kh, kw) of wide position k
reads phase plane (c, kh·D mod S_h, kw·D mod S_w) at shift ⌊kh·D/S_h⌋·pitch + ⌊kw·D/S_w⌋ + k, so consecutive
output positions of a row are consecutive inputs at any stride. The few wide positions that straddle a row end
are computed and dropped. A a task owns the outputs of one (sample, channel block), and every output is one sum
in tap order: the same bits on any thread count.
"""
import numpy as np

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.padding import pad_split
from tinygrad_cnn.ops.kernels.register_tile import BLOCKS, PIXELS, lanes, tile_taps
from tinygrad_cnn.runtime import workspace


def _tile_tasks(planes, sample_size, packed, bias, out, offsets, pitch, width):
    return out.shape[0] * (packed.shape[0] // (offsets.shape[0] * width))


@parallel_kernel(tasks=_tile_tasks)
def forward_tiles(planes, sample_size, packed, bias, out, offsets, pitch, width, start, stop):
    """O[n, m, oh, ow] = b[m] + Σ_t packed[m // width, t, m mod width] · planes[n·sample_size + offsets[t] + oh·pitch
    + ow], tile by tile (width = BLOCKS·lanes output channels per tile). A task is one (sample, block)."""
    batch, out_channels, out_h, out_w = out.shape
    taps, blocks = offsets.shape[0], packed.shape[0] // (offsets.shape[0] * width)
    span = (out_h - 1) * pitch + out_w
    out_flat = out.reshape(out.size)
    for task in range(start, stop):
        n, block = task // blocks, task % blocks
        acc = np.empty(PIXELS * width, out.dtype)
        channels = min(width, out_channels - block * width)
        for first in range(0, span, PIXELS):
            tile_taps(acc, packed, block * taps * width, planes, n * sample_size + first, offsets, taps)
            for p in range(min(PIXELS, span - first)):
                oh = (first + p) // pitch
                ow = first + p - oh * pitch
                if ow < out_w:
                    for lane in range(channels):
                        m = block * width + lane
                        out_flat[((n * out_channels + m) * out_h + oh) * out_w + ow] = acc[p * width + lane] + bias[m]


def forward(x, weight, bias, out, stride, padding, dilation):
    """O = X ⋆ W + b into `out` (groups = 1): the packing and phase planes in NumPy, the sums in forward_tiles."""
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = stride, padding, dilation
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    q_h, q_w = -(-(height + 2 * pad_h) // stride_h), -(-(width + 2 * pad_w) // stride_w)
    phases = stride_h * stride_w
    sample_size = channels * phases * q_h * q_w
    # the last tile of the last sample reads up to PIXELS − 1 positions past the end: zeros
    planes = workspace.get("blocked_planes", (batch * sample_size + PIXELS,), x.dtype)
    planes[batch * sample_size:] = 0
    if (phases, pad_h, pad_w) == (1, 0, 0):  # the planes are the input: NumPy's copy is faster, and compiles nothing
        planes[:batch * sample_size] = x.reshape(-1)
    else:
        pad_split(x, stride_h, stride_w, pad_h, pad_w,
                  planes[:batch * sample_size].reshape(batch, channels * phases, q_h, q_w))
    kh, kw = np.divmod(np.arange(kernel_h * kernel_w), kernel_w)
    tap_phase = (kh * dil_h % stride_h) * stride_w + kw * dil_w % stride_w
    tap_shift = (kh * dil_h // stride_h) * q_w + kw * dil_w // stride_w
    offsets = ((np.arange(channels)[:, None] * phases + tap_phase) * q_h * q_w + tap_shift).reshape(-1)
    tile_width = BLOCKS * lanes(x.itemsize)
    blocks = -(-out_channels // tile_width)
    rows = np.zeros((blocks * tile_width, offsets.size), x.dtype)
    rows[:out_channels] = weight.reshape(out_channels, -1)
    packed = np.ascontiguousarray(rows.reshape(blocks, tile_width, offsets.size).transpose(0, 2, 1)).reshape(-1)
    forward_tiles(planes, sample_size, packed, np.zeros(out_channels, x.dtype) if bias is None else bias, out,
                  offsets.astype(np.int64), q_w, tile_width)
