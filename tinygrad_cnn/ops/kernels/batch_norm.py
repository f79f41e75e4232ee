"""Batch normalisation per channel of x viewed as (N, C, L), L the spatial positions (1 for (N, C) input).

Each kernel's task is one whole channel: a channel's reduction and the elementwise pass
that needs its result run back to back on the same thread, one launch per direction. A channel's sums are
partial sums of up to ROW values in the input's dtype (they vectorise at its full width), added up in float64;
the elementwise passes use per-channel factors of the input's dtype. Summing float32 values in float64
throughout halved the vector width: a ResNet-20 step's batch-norm kernels (batch 64, two threads, AVX-512) took
15.6 ms against 13.1 this way.
"""
import math

import numba

from tinygrad_cnn.ops.kernels import parallel_kernel

ROW = 1024  # values of one row (sample) of a channel in a partial sum: float32 keeps about 7 digits of such a sum

# reassoc lets the channel sums vectorise (their order changes); contract lets x·a + b become one FMA
_FAST = {"reassoc", "contract"}


def _channels(x, *rest):
    """A kernel's tasks: the channels of its first array (the input or its gradient)."""
    return x.shape[1]


def _elements(x, *rest):
    """A pass's size: its first array, the input or its gradient."""
    return x.size


@numba.njit(cache=True, fastmath=_FAST)
def _normalize_channel(x, c, m, a, b, out):
    """out[:, c] = (x[:, c] − m)·a + b. Subtracting the mean first keeps a constant channel exactly at b."""
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            out[n, c, i] = (x[n, c, i] - m) * a + b


@numba.njit(cache=True)
def _two_pass_moments(x, c):
    """(μ, σ²) of channel c as Σx/M, then Σ(x − μ)²/M in float64: for the rare channel whose shifted squares
    overflowed (values more than about 1e154 from the first one, 1e19 in float32), which two passes still get
    right up to the float64 range (as PyTorch's statistics do)."""
    count = x.shape[0] * x.shape[2]
    total = 0.0
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            total += x[n, c, i]
    mu = total / count
    squares = 0.0
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            d = x[n, c, i] - mu
            squares += d * d
    return mu, squares / count


@parallel_kernel(tasks=_channels, fastmath=_FAST, elements=_elements)
def train_forward(x, weight, bias, eps, out, mean, var, factors, start, stop):
    """Per channel c over its M = N·L values: μ = Σx / M and σ² = Σ(x − μ)² / M (biased), both from one pass
    of sums of d = x − k and d², k the channel's first value (σ² = Σd²/M − (Σd/M)²; the shift keeps
    the cancellation small; two passes for a channel whose squares overflow that way: _two_pass_moments), then
    y = (x − μ)·a + β with a = γ / √(σ² + eps). Writes out, mean, var (float64)
    and μ, a in `factors` (C × 2, x's dtype, so that the elementwise pass stays in it). The task of channel c
    writes every value of it."""
    n_batch, channels, length = x.shape
    count = n_batch * length
    zero = x.dtype.type(0)
    for c in range(start, stop):
        first = x[0, c, 0]
        total = 0.0
        squares = 0.0
        for n in range(n_batch):
            for run in range(0, length, ROW):
                values = x[n, c, run:run + ROW]  # a view: indices from 0 keep the loop vectorised
                row = zero
                row_squares = zero
                for i in range(values.size):
                    d = values[i] - first
                    row += d
                    row_squares += d * d
                total += row
                squares += row_squares
        shifted_mean = total / count
        mean[c], var[c] = first + shifted_mean, max(squares / count - shifted_mean * shifted_mean, 0.0)
        if not math.isfinite(squares):
            mean[c], var[c] = _two_pass_moments(x, c)
        mu = mean[c]
        factors[c, 0] = mu
        factors[c, 1] = weight[c] / math.sqrt(var[c] + eps)
        _normalize_channel(x, c, factors[c, 0], factors[c, 1], bias[c], out)


@parallel_kernel(tasks=_channels, fastmath=_FAST, elements=_elements)
def affine(x, factors, bias, out, start, stop):
    """y = (x − μ)·a + β per channel, μ and a in `factors` (C × 2; the evaluation forward, from the running
    statistics). The task of channel c writes every value of it."""
    for c in range(start, stop):
        _normalize_channel(x, c, factors[c, 0], factors[c, 1], bias[c], out)


@parallel_kernel(tasks=_channels, fastmath=_FAST, elements=_elements)
def backward(grad, x, mean, invstd, weight, batch_stats, grad_x, grad_weight, grad_bias, factors, start, stop):
    """With x̂ = (x − μ)·invstd and the sums Σg, Σg·x̂ over a channel's M values:
    dL/dβ = Σg, dL/dγ = Σg·x̂, and dL/dx = γ·invstd·(g − Σg/M − x̂·Σg·x̂/M) when μ, σ² are the batch's
    (they depend on x), else γ·invstd·g (running statistics are constants). dL/dx is evaluated as
    a·g + b·(x − μ) + d, its per-channel factors kept in `factors` (C × 4, x's dtype, with μ) so that the pass
    stays in x's dtype. The task of channel c writes every value of it."""
    n_batch, channels, length = x.shape
    count = n_batch * length
    zero = x.dtype.type(0)
    for c in range(start, stop):
        mu, inv = mean[c], invstd[c]
        centre = x.dtype.type(mu)
        sum_g = 0.0
        sum_gx = 0.0
        for n in range(n_batch):
            for run in range(0, length, ROW):
                grads, values = grad[n, c, run:run + ROW], x[n, c, run:run + ROW]
                row_g = zero
                row_gx = zero
                for i in range(values.size):
                    row_g += grads[i]
                    row_gx += grads[i] * (values[i] - centre)
                sum_g += row_g
                sum_gx += row_gx
        sum_gx *= inv
        grad_bias[c], grad_weight[c] = sum_g, sum_gx
        factors[c, 0] = weight[c] * inv
        factors[c, 1] = -weight[c] * inv * inv * sum_gx / count if batch_stats else 0.0
        factors[c, 2] = -weight[c] * inv * sum_g / count if batch_stats else 0.0
        factors[c, 3] = mu
        a, b, d, m = factors[c, 0], factors[c, 1], factors[c, 2], factors[c, 3]
        for n in range(n_batch):
            for i in range(length):
                grad_x[n, c, i] = a * grad[n, c, i] + b * (x[n, c, i] - m) + d
