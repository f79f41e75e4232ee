"""Slow, obvious references for conv, pool and batch norm (and the draws behind dropout's mask): forward and gradients written straight from the
definitions.

They loop over the kernel offsets (conv) or the output windows (pool) and use NumPy only inside one offset
or one window, so they share no code and no derivation with the kernels under test: the gradients here are
the chain rule applied tap by tap (each tap's contribution scattered back), not the full-convolution rule.
"""
import math

import numpy as np


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _tap_windows(input_shape, weight_shape, stride, padding, dilation):
    """For each filter tap (kh, kw): the slices of the padded input that meet it, one per output position."""
    _, _, height, width = input_shape
    _, _, kernel_h, kernel_w = weight_shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    out_h = (height + 2 * ph - dh * (kernel_h - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kernel_w - 1) - 1) // sw + 1
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            rows = slice(kh * dh, kh * dh + sh * (out_h - 1) + 1, sh)
            cols = slice(kw * dw, kw * dw + sw * (out_w - 1) + 1, sw)
            yield kh, kw, rows, cols


def _padded(x, padding):
    ph, pw = _pair(padding)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, m, i, j] = b[m] + Σ_{c in m's group, kh, kw} w[m, c, kh, kw] · x_pad[n, c, i·s + kh·d, j·s + kw·d]."""
    x_pad = _padded(x, padding)
    out_channels, group_in = weight.shape[0], weight.shape[1]
    group_out = out_channels // groups
    out = None
    for kh, kw, rows, cols in _tap_windows(x.shape, weight.shape, stride, padding, dilation):
        patch = x_pad[:, :, rows, cols]
        if out is None:
            out = np.zeros((x.shape[0], out_channels) + patch.shape[2:], np.result_type(x, weight))
        for g in range(groups):
            ins, outs = slice(g * group_in, (g + 1) * group_in), slice(g * group_out, (g + 1) * group_out)
            out[:, outs] += np.einsum("nchw,mc->nmhw", patch[:, ins], weight[outs, :, kh, kw])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def conv2d_reference_grads(x, weight, grad_out, stride=1, padding=0, dilation=1, groups=1):
    """(dL/dx, dL/dw, dL/db) for upstream gradient grad_out: every tap's forward term differentiated and summed."""
    ph, pw = _pair(padding)
    x_pad = _padded(x, padding)
    grad_x_pad = np.zeros_like(x_pad)
    grad_w = np.zeros_like(weight)
    out_channels, group_in = weight.shape[0], weight.shape[1]
    group_out = out_channels // groups
    for kh, kw, rows, cols in _tap_windows(x.shape, weight.shape, stride, padding, dilation):
        for g in range(groups):
            ins, outs = slice(g * group_in, (g + 1) * group_in), slice(g * group_out, (g + 1) * group_out)
            grad_x_pad[:, ins, rows, cols] += np.einsum("nmhw,mc->nchw", grad_out[:, outs], weight[outs, :, kh, kw])
            grad_w[outs, :, kh, kw] = np.einsum("nmhw,nchw->mc", grad_out[:, outs], x_pad[:, ins, rows, cols])
    height, width = x.shape[2], x.shape[3]
    grad_x = grad_x_pad[:, :, ph:ph + height, pw:pw + width]
    return grad_x, grad_w, grad_out.sum(axis=(0, 2, 3))


def _pool_windows(input_shape, kernel_size, stride, padding):
    """(i, j, row slice, col slice) of every pooling window, slices clipped to the unpadded input."""
    _, _, height, width = input_shape
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(stride if stride is not None else kernel_size)
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * sh - ph, j * sw - pw
            yield i, j, slice(max(top, 0), min(top + kh, height)), slice(max(left, 0), min(left + kw, width))


def max_pool2d_reference(x, kernel_size, stride=None, padding=0):
    """(out, grad function): each window's maximum; the gradient goes to the first maximum in row-major order."""
    windows = list(_pool_windows(x.shape, kernel_size, stride, padding))
    out_h, out_w = windows[-1][0] + 1, windows[-1][1] + 1
    out = np.empty(x.shape[:2] + (out_h, out_w), x.dtype)
    winners = {}
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i, j, rows, cols in windows:
                window = x[n, c, rows, cols]
                r, q = np.unravel_index(np.argmax(window), window.shape)  # argmax: first maximum, row-major
                out[n, c, i, j] = window[r, q]
                winners[n, c, i, j] = (rows.start + r, cols.start + q)

    def grad(grad_out):
        grad_x = np.zeros_like(x)
        for (n, c, i, j), (r, q) in winners.items():
            grad_x[n, c, r, q] += grad_out[n, c, i, j]
        return grad_x

    return out, grad


def avg_pool2d_reference(x, kernel_size, stride=None, padding=0):
    """(out, grad function): window sum divided by the full kernel area (zero padding counts)."""
    windows = list(_pool_windows(x.shape, kernel_size, stride, padding))
    area = math.prod(_pair(kernel_size))
    out_h, out_w = windows[-1][0] + 1, windows[-1][1] + 1
    out = np.empty(x.shape[:2] + (out_h, out_w), x.dtype)
    for i, j, rows, cols in windows:
        out[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / area

    def grad(grad_out):
        grad_x = np.zeros_like(x)
        for i, j, rows, cols in windows:
            grad_x[:, :, rows, cols] += grad_out[:, :, i, j][:, :, None, None] / area
        return grad_x

    return out, grad


def adaptive_avg_pool2d_reference(x, output_size):
    """(out, grad function): output (i, j) averages rows floor(i·H/oh) … ceil((i+1)·H/oh) − 1, likewise columns."""
    out_h, out_w = _pair(output_size)
    height, width = x.shape[2], x.shape[3]
    bins = [(i, j,
             slice(i * height // out_h, -(-(i + 1) * height // out_h)),
             slice(j * width // out_w, -(-(j + 1) * width // out_w)))
            for i in range(out_h) for j in range(out_w)]
    out = np.empty(x.shape[:2] + (out_h, out_w), x.dtype)
    for i, j, rows, cols in bins:
        out[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))

    def grad(grad_out):
        grad_x = np.zeros_like(x)
        for i, j, rows, cols in bins:
            area = (rows.stop - rows.start) * (cols.stop - cols.start)
            grad_x[:, :, rows, cols] += grad_out[:, :, i, j][:, :, None, None] / area
        return grad_x

    return out, grad


def batch_norm_reference(x, weight, bias, eps):
    """Training-mode output, the batch mean, and the unbiased batch variance (what the running update uses)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    n = x.size // x.shape[1]
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * weight.reshape(shape) + bias.reshape(shape)
    return out, mean, var * n / (n - 1)


def batch_norm_reference_grads(x, weight, eps, g):
    """dL/dx, dL/dweight, dL/dbias of training-mode batch norm, from the closed form
    dx = γ/(n·σ) · (n·g − Σg − x̂·Σ(g·x̂))."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    n = x.size // x.shape[1]
    sigma = np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / sigma
    sum_g = g.sum(axis=axes, keepdims=True)
    sum_gx = (g * x_hat).sum(axis=axes, keepdims=True)
    grad_x = weight.reshape(shape) / (n * sigma) * (n * g - sum_g - x_hat * sum_gx)
    return grad_x, sum_gx.reshape(-1), sum_g.reshape(-1)


def dropout_uniform_reference(seed, count):
    """The documented draw of each element i: SplitMix64's output of seed + (i + 1)·0x9E3779B97F4A7C15, its
    top 53 bits over 2^53 (NumPy's uint64 arithmetic wraps as the kernel's does)."""
    with np.errstate(over="ignore"):
        z = seed + (np.arange(count, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
