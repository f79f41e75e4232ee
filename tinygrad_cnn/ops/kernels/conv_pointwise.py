"""The 1×1 convolution (groups 1, any stride and padding) as matrix products on the input itself, no columns.

A 1×1 filter has one tap, so every direction is a channel product at each output position:
  forward      O[n] = W @ X_pad[n] sampled every S-th position (+ b)
  grad_input   dL/dX[n] = Wᵀ @ dL/dO[n] written at the sampled positions, zero elsewhere (the full convolution
               of the dilated dL/dO with a one-tap filter is just that: nothing overlaps, no col2im)
  grad_weight  dL/dW = Σ_n dL/dO[n] @ X_pad[n]ᵀ over the sampled positions
The forward and dL/dX run a product per sample, on the arrays themselves when the conv is plain (stride 1, no
padding), else on the input sampled once: on planes down to 2×2 that beat gathering the batch channel-major,
(C, N·L) for L = OH·OW, for ONE product (512x4x4->512 at batch 32: 1.43 -> 1.32 ms forward, 128x4x4->128
0.23 -> 0.09; the two transposing copies cost more than the narrow products lose). dL/dW sums N products of
M×C, so it gathers both operands for one product when those are larger than the copies (figures in
benchmarks/RESULTS.md).
"""
import numpy as np

from tinygrad_cnn.ops.kernels import parallel_kernel
from tinygrad_cnn.ops.kernels.gemm import gemm, gemm_stack
from tinygrad_cnn.ops.kernels.geometry import valid_range
from tinygrad_cnn.ops.kernels.inner_loops import axpy_strided, copy_strided, fill
from tinygrad_cnn.runtime import workspace

def _planes(array, *rest):
    return array.shape[0] * array.shape[1]


@parallel_kernel(tasks=_planes, elements=lambda x, *rest: rest[-1].size)
def gather(x, stride_h, stride_w, pad_h, pad_w, out_h, out_w, channel_pitch, sample_pitch, out, start, stop):
    """out.flat[c·channel_pitch + n·sample_pitch + i·OW + j] = x[n, c, i·S_h − P_h, j·S_w − P_w] for i < OH,
    j < OW, zero where that falls in the padding: x zero-padded by P, sampled every S-th position. A task is one
    plane of x."""
    batch, channels, height, width = x.shape
    x_flat, out_flat = x.reshape(x.size), out.reshape(out.size)
    i_lo, i_hi = valid_range(-pad_h, stride_h, out_h, height)
    j_lo, j_hi = valid_range(-pad_w, stride_w, out_w, width)
    for task in range(start, stop):
        n, c = task // channels, task % channels
        base = c * channel_pitch + n * sample_pitch
        if i_lo > 0 or i_hi < out_h or j_lo > 0 or j_hi < out_w:
            fill(out_flat, base, out_h * out_w, 0)
        for i in range(i_lo, i_hi):
            copy_strided(out_flat, base + i * out_w + j_lo, 1,
                         x_flat, (task * height + i * stride_h - pad_h) * width + j_lo * stride_w - pad_w, stride_w,
                         j_hi - j_lo)


@parallel_kernel(tasks=lambda src, *rest: _planes(rest[-1]), elements=lambda src, *rest: rest[-1].size)
def scatter(src, stride_h, stride_w, pad_h, pad_w, out_h, out_w, out, start, stop):
    """The adjoint of a per-sample `gather`: out[n, c] = 0, plus src[n, c, i·OW + j] at (i·S_h − P_h, j·S_w − P_w)
    for i < OH, j < OW. A task is one plane of out."""
    batch, channels, height, width = out.shape
    src_flat, out_flat = src.reshape(src.size), out.reshape(out.size)
    i_lo, i_hi = valid_range(-pad_h, stride_h, out_h, height)
    j_lo, j_hi = valid_range(-pad_w, stride_w, out_w, width)
    one = out.dtype.type(1)
    for task in range(start, stop):
        fill(out_flat, task * height * width, height * width, 0)
        for i in range(i_lo, i_hi):
            axpy_strided(out_flat, (task * height + i * stride_h - pad_h) * width + j_lo * stride_w - pad_w, stride_w,
                         src_flat, task * out_h * out_w + i * out_w + j_lo, 1, j_hi - j_lo, one)


def _sampled(array, stride, padding, out_hw, name, channel_major=False):
    """`array` (N, C, H, W) zero-padded and sampled: (N, C, OH·OW) (itself when there is nothing to sample), or
    gathered channel-major into a (C, N·OH·OW) workspace (by NumPy's transposing copy when nothing is sampled:
    one pass, no short rows)."""
    batch, channels = array.shape[:2]
    positions = out_hw[0] * out_hw[1]
    dense = tuple(stride) == (1, 1) and tuple(padding) == (0, 0)
    if dense and not channel_major:
        return array.reshape(batch, channels, positions)
    shape, pitches = ((channels, batch * positions), (batch * positions, positions)) if channel_major else \
        ((batch, channels, positions), (positions, channels * positions))
    matrix = workspace.get(name, shape, array.dtype)
    if dense:
        np.copyto(matrix.reshape(channels, batch, positions),
                  array.reshape(batch, channels, positions).transpose(1, 0, 2))
    else:
        gather(array, *stride, *padding, *out_hw, *(np.int64(p) for p in pitches), matrix)
    return matrix


def forward(x, weight, bias, out, stride, padding):
    """O = W @ X sampled (+ b) into `out`, a product per sample."""
    batch, out_channels, out_h, out_w = out.shape
    weight_matrix, positions = weight.reshape(out_channels, -1), out_h * out_w
    inputs = _sampled(x, stride, padding, (out_h, out_w), "pointwise_input")
    gemm_stack(weight_matrix, inputs, out.reshape(batch, out_channels, positions))
    if bias is not None:
        out += bias[:, None, None]


def grad_input(grad_out, weight, grad_in, stride, padding):
    """dL/dX = Wᵀ @ dL/dO at the sampled positions, zero elsewhere, into `grad_in`, a product per sample."""
    (batch, out_channels, out_h, out_w), channels = grad_out.shape, grad_in.shape[1]
    weight_t, positions = weight.reshape(out_channels, channels).T, out_h * out_w
    grads = grad_out.reshape(batch, out_channels, positions)
    if tuple(stride) == (1, 1) and tuple(padding) == (0, 0):
        gemm_stack(weight_t, grads, grad_in.reshape(batch, channels, positions))
        return
    product = workspace.get("pointwise_product", (batch, channels, positions), grad_out.dtype)
    gemm_stack(weight_t, grads, product)
    scatter(product, *(np.int64(v) for v in (*stride, *padding, out_h, out_w)), grad_in)


def grad_weight(x, grad_out, grad_w, stride, padding):
    """dL/dW = Σ_n dL/dO[n] @ X[n]ᵀ over the sampled positions, into `grad_w`: per sample (then summed), or one
    product of copies gathered channel-major (gathers_grad_weight)."""
    (batch, out_channels, out_h, out_w), channels = grad_out.shape, x.shape[1]
    gathered = gathers_grad_weight(out_channels, channels, out_h * out_w)
    inputs = _sampled(x, stride, padding, (out_h, out_w), "pointwise_input", gathered)
    grads = _sampled(grad_out, (1, 1), (0, 0), (out_h, out_w), "pointwise_grad", gathered)
    if gathered:
        gemm(grads, inputs.T, grad_w.reshape(out_channels, channels))
        return
    products = workspace.get("pointwise_product", (batch, out_channels, channels), x.dtype)
    gemm_stack(grads, inputs.transpose(0, 2, 1), products)
    np.sum(products, axis=0, out=grad_w.reshape(out_channels, channels))


def gathers_grad_weight(out_channels, channels, positions):
    """Whether grad_weight gathers its inputs for one product: when the N products of M×C it would sum otherwise
    outweigh twice the two gathered copies of N·L·(M + C), L = OH·OW. Where the products outweighed the copies
    only a little, per sample was still faster (2 threads, AVX-512: 256x14x14->1024 at batch 8, M·C =
    1.05·L·(M + C), 5.0 -> 3.8 ms; 128x8x8->256 at 32, 1.33×, 1.11 -> 1.02); from 4× the one product wins
    (512x8x8->512 at 32: 5.5 against 7.4 ms)."""
    return out_channels * channels > 2 * positions * (out_channels + channels)
