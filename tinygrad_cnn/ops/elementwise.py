"""Elementwise ops: arithmetic, unary maths and activations. Binary ops broadcast as NumPy does."""
import math

import numpy as np

from ..autograd import Function
from ..runtime.array_pool import empty_like
from .broadcast import shape_of, unbroadcast
from .kernels import elementwise as kernels


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (shape_of(a), shape_of(b))
        return kernels.sum_of(a, b)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(grad, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (shape_of(a), shape_of(b))
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(-grad, ctx.shapes[1])


class Mul(Function):
    """a · b; each gradient needs only the other operand, so only the operand a wanted gradient needs is saved."""

    @staticmethod
    def forward(ctx, a, b):
        needs_a, needs_b = ctx.needs_input_grad
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(a if needs_b else None, b if needs_a else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = unbroadcast(grad * b, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * a, ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """a / b; dA needs b, dB needs a and b: a is saved only when b's gradient is needed."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = unbroadcast(grad / b, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad * a / (b * b), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Pow(Function):
    """a ** b; d/da = b·a^(b−1), d/db = a^b·log(a) (computed only when b requires grad). As PyTorch's, d/da is 0
    where b = 0 and d/db is 0 where a = 0 and b >= 0 (their limits), not 0·∞ = NaN."""

    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):  # the 0·∞ places are replaced below
            if ctx.needs_input_grad[0]:
                grad_a = unbroadcast(grad * np.where(b == 0, 0, b * a ** (b - 1)), np.shape(a))
            if ctx.needs_input_grad[1]:
                grad_b = unbroadcast(grad * np.where((a == 0) & (b >= 0), 0, out * np.log(a)), np.shape(b))
        return grad_a, grad_b


class Maximum(Function):
    """Elementwise max; on ties each input gets half the gradient, as PyTorch does."""

    pick = staticmethod(np.maximum)

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        return cls.pick(a, b)

    @classmethod
    def backward(cls, ctx, grad):
        a, b = ctx.saved_tensors
        share_a = np.where(a == b, 0.5, (cls.pick(a, b) == a)).astype(grad.dtype)
        return unbroadcast(grad * share_a, np.shape(a)), unbroadcast(grad * (1 - share_a), np.shape(b))


class Minimum(Maximum):
    """Elementwise min; on ties each input gets half the gradient."""

    pick = staticmethod(np.minimum)


class Where(Function):
    """where(condition, a, b); the condition takes no gradient."""

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition, dtype=bool)
        ctx.save_for_backward(condition)  # saved, so an in-place change to a mask Tensor is caught in backward
        ctx.shapes = (shape_of(a), shape_of(b))
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        zero = np.zeros((), grad.dtype)
        return (None, unbroadcast(np.where(condition, grad, zero), ctx.shapes[0]),
                unbroadcast(np.where(condition, zero, grad), ctx.shapes[1]))


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Abs(Function):
    """|x|; the gradient at 0 is 0, as PyTorch's."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.sign(x)


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class _OfInput(Function):
    """y = value(x) with dy/dx = slope(x), computed from the saved input."""

    @classmethod
    def forward(cls, ctx, x):
        ctx.save_for_backward(x)
        return cls.value(x)

    @classmethod
    def backward(cls, ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * cls.slope(x)


class Sin(_OfInput):
    """sin x, d/dx = cos x; Cos reuses it with its own pair of functions."""

    value, slope = staticmethod(np.sin), staticmethod(np.cos)


class Cos(Sin):
    """cos x, d/dx = −sin x."""

    value, slope = staticmethod(np.cos), staticmethod(lambda x: -np.sin(x))


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Clip(Function):
    """Clamp to [low, high] (either may be None); the gradient passes where low <= x <= high."""

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        inside = np.ones(x.shape, bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        return grad * inside, None, None


class ReLU(Function):
    """max(x, 0); the gradient at 0 is 0, as PyTorch's."""

    KERNEL_FROM = 1 << 13  # elements; below, np.maximum's one call costs less than the kernel's launch

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind == "f" and x.flags.c_contiguous and x.size >= ReLU.KERNEL_FROM:
            out = empty_like(x)
            kernels.relu_forward(x.reshape(-1), x.dtype.type(0), out.reshape(-1))
        else:
            out = np.maximum(x, 0, order="C")
        if out.dtype.kind == "f":
            ctx.save_for_backward(out)  # y > 0 exactly where x > 0: the output is the mask, as PyTorch keeps it
        return out

    @staticmethod
    def backward(ctx, grad):
        out, = ctx.saved_tensors
        grad_in = empty_like(out)
        kernels.relu_backward(np.ascontiguousarray(grad, out.dtype).reshape(-1), out.reshape(-1), out.dtype.type(0),
                              grad_in.reshape(-1))
        return grad_in


class Dropout(Function):
    """x·m/(1 − p) with m[i] = 1 with probability 1 − p, else 0, as PyTorch's dropout; the mask comes from
    `seed` (kernels.elementwise.dropout: one counter-based draw per element), so the backward makes it again
    instead of keeping it: dL/dx = dL/dy·m/(1 − p)."""

    @staticmethod
    def forward(ctx, x, p, seed):
        ctx.p, ctx.seed = p, seed
        return _dropout(x, p, seed)

    @staticmethod
    def backward(ctx, grad):
        return _dropout(grad, ctx.p, ctx.seed), None, None


def _dropout(x, p, seed):
    x = np.asarray(x, order="C")  # not ascontiguousarray: it makes a 0-d array 1-d
    out = empty_like(x)
    scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1 - p))
    kernels.dropout(x.reshape(-1), np.uint64(seed), float(p), scale, out.reshape(-1))
    return out


class LeakyReLU(Function):
    """max(x, 0) + slope·min(x, 0). The gradient at 0 is the slope, as PyTorch's."""

    @staticmethod
    def forward(ctx, x, slope):
        positive = x > 0
        ctx.positive, ctx.slope = positive, slope
        return np.where(positive, x, x * slope)

    @staticmethod
    def backward(ctx, grad):
        scale = np.where(ctx.positive, np.ones((), grad.dtype), np.asarray(ctx.slope, grad.dtype))
        return grad * scale, None


class Sigmoid(Function):
    """1 / (1 + e^−x), computed through e^−|x| so that no exp overflows."""

    @staticmethod
    def forward(ctx, x):
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


_erf = np.vectorize(math.erf, otypes=[np.float64])


class Erf(_OfInput):
    """erf(x) = 2/sqrt(pi) * integral of exp(-t^2) from 0 to x (math.erf per element); d/dx = 2/sqrt(pi) exp(-x^2)."""

    @staticmethod
    def value(x): return _erf(x).astype(x.dtype, copy=False)

    @staticmethod
    def slope(x): return (2 / math.sqrt(math.pi)) * np.exp(-x * x)


class Atan(_OfInput):
    """atan(x); d/dx = 1 / (1 + x^2)."""

    @staticmethod
    def value(x): return np.arctan(x)

    @staticmethod
    def slope(x): return 1 / (1 + x * x)


class Atan2(Function):
    """atan2(y, x), the angle of the point (x, y); d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2)."""

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved_tensors
        scaled = grad / (x * x + y * y)
        return unbroadcast(scaled * x, np.shape(y)), unbroadcast(-scaled * y, np.shape(x))


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.input_dtype), None


class Compare(Function):
    """A comparison (==, <, ...) giving a bool array; no gradient."""

    differentiable = False

    @staticmethod
    def forward(ctx, a, b, op):
        return op(a, b)
