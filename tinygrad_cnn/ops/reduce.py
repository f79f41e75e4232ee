"""Reductions over NumPy-style `axis` (int, tuple or None) with `keepdims`, and the softmax family."""
import numpy as np

from ..autograd import Function


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """`axis` as a sorted tuple of non-negative axes (None means all); errors name `op`. A 0-d tensor takes
    axis 0 or -1, as in PyTorch. Repeated axes are refused, as NumPy and PyTorch do."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) or np.ndim(axis) == 0 else tuple(axis)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    normalized = [int(a) % max(ndim, 1) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis!r} names the same axis twice")
    return tuple(sorted(normalized)) if ndim else ()


def _expand_to_input(grad, axes, keepdims, shape):
    """Bring a reduced gradient back to the input's shape (a broadcast view, no copy)."""
    if not keepdims:  # the reduced axes back as length 1 (a reshape: np.expand_dims costs several times more)
        grad = grad.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return np.broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, x.ndim, "sum"), keepdims, x.shape
        return np.sum(x, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand_to_input(grad, ctx.axes, ctx.keepdims, ctx.shape), None, None


class Max(Function):
    """Largest value over `axis`. Tied maxima share the gradient equally (each gets grad / count)."""

    reduce = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, x, axis, keepdims):
        name = cls.__name__.lower()
        axes = normalize_axes(axis, x.ndim, name)
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{name}: cannot reduce over an empty axis: shape {x.shape}, axis {axis}")
        out = cls.reduce(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x, out)
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else np.squeeze(out, axes)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        winners = (x == out)
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        share = grad / winners.sum(axis=ctx.axes, keepdims=True)
        return np.where(winners, share, np.zeros((), grad.dtype)), None, None


class Min(Max):
    """Smallest value over `axis`. Tied minima share the gradient equally."""

    reduce = staticmethod(np.min)


class ArgReduce(Function):
    """argmax / argmin over one axis (None: the flattened array); no gradient."""

    differentiable = False

    @staticmethod
    def forward(ctx, x, pick, axis, keepdims):
        name = pick.__name__
        if axis is not None and np.ndim(axis) != 0:
            raise TypeError(f"{name}: axis must be None or one int, got {axis!r}")
        axes = normalize_axes(axis, x.ndim, name)
        if x.size == 0 and any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{name}: cannot reduce over an empty axis: shape {x.shape}, axis {axis}")
        return pick(x, axis=None if x.ndim == 0 else axis, keepdims=keepdims)  # a 0-d tensor takes axis 0 or -1


class Prod(Function):
    """Product over `axis`. dX_i is the product of the other elements, computed from exclusive running
    products from both ends, so a zero element gets its exact gradient instead of prod / 0."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        axes = normalize_axes(axis, x.ndim, "prod")
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdims = axes, keepdims
        return np.prod(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        kept = [a for a in range(x.ndim) if a not in ctx.axes]
        moved = np.transpose(x, kept + list(ctx.axes))
        rows = moved.reshape(moved.shape[:len(kept)] + (-1,))
        ones = np.ones(rows.shape[:-1] + (1,), x.dtype)
        before = np.cumprod(np.concatenate([ones, rows[..., :-1]], -1), -1)
        after = np.flip(np.cumprod(np.concatenate([ones, np.flip(rows, -1)[..., :-1]], -1), -1), -1)
        others = np.transpose((before * after).reshape(moved.shape), np.argsort(kept + list(ctx.axes)))
        return _expand_to_input(grad, ctx.axes, ctx.keepdims, x.shape) * others, None, None


class CumSum(Function):
    """Running sum along one axis; dX is the running sum of the gradient taken from the other end."""

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return np.flip(np.cumsum(np.flip(grad, ctx.axis), axis=ctx.axis), ctx.axis), None


class CumProd(Function):
    """Running product y_i = x_0 ... x_i along one axis. dx_k = (x_0 ... x_(k-1)) * s_k with s_k = g_k + x_(k+1) s_(k+1)
    (the sum over i >= k of g_i times the product of x_(k+1)..x_i), so zeros in x need no division."""

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        ctx.save_for_backward(x)
        return np.cumprod(x, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x, grad = np.moveaxis(x, ctx.axis, 0), np.moveaxis(grad, ctx.axis, 0)
        before = np.concatenate([np.ones_like(x[:1]), np.cumprod(x[:-1], axis=0)])
        tail = np.empty_like(grad)
        tail[-1] = grad[-1]
        for k in range(len(x) - 2, -1, -1):
            tail[k] = grad[k] + x[k + 1] * tail[k + 1]
        return np.moveaxis(before * tail, 0, ctx.axis), None


def shifted_logsumexp(x, axes):
    """(x − m, log Σ e^(x − m), m) with m the maximum over `axes` (kept dims): no exp overflows, and
    subtracting m before anything else keeps log-softmax = (x − m) − log Σ e^(x − m) accurate at ±1e4.
    Integers are taken as float64, as NumPy's exp takes them."""
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)  # an empty sum: m = −∞, log Σ = log 0 = −∞
    m = np.where(np.isfinite(m), m, np.zeros((), x.dtype))
    shifted = x - m
    return shifted, np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True)), m


def log_softmax_array(x, axes):
    """log softmax of an array along `axes`, computed stably."""
    shifted, log_sum, _ = shifted_logsumexp(x, axes)
    return shifted - log_sum


class LogSumExp(Function):
    """log Σ exp(x) over `axis`; its gradient is softmax(x)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        axes = normalize_axes(axis, x.ndim, "logsumexp")
        shifted, log_sum, m = shifted_logsumexp(x, axes)
        ctx.save_for_backward(np.exp(shifted - log_sum))
        ctx.axes, ctx.keepdims = axes, keepdims
        out = m + log_sum
        return out if keepdims else np.squeeze(out, axes)

    @staticmethod
    def backward(ctx, grad):
        (softmax,) = ctx.saved_tensors
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        return grad * softmax, None, None


class Softmax(Function):
    """e^x / Σ e^x along `axis`; backward: s · (g − Σ g·s)."""

    @staticmethod
    def forward(ctx, x, axis):
        e = np.exp(shifted_logsumexp(x, axis)[0])
        out = e / np.sum(e, axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        return s * (grad - np.sum(grad * s, axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """x − logsumexp(x) along `axis`; backward: g − softmax · Σ g."""

    @staticmethod
    def forward(ctx, x, axis):
        out = log_softmax_array(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - np.exp(out) * np.sum(grad, axis=ctx.axis, keepdims=True), None
