"""Matrix product for 1-D, 2-D and batched operands, with NumPy's matmul rules."""
import math

import numpy as np

from ..autograd import Function
from ..runtime.array_pool import empty
from ..runtime.threads import blas_for_product
from .broadcast import unbroadcast
from .kernels.gemm import gemm

SPLIT_MACS = 1 << 22  # a 2-D product from this many multiply-adds is split into column blocks over the threads


def _macs(a, b) -> int:
    """Multiply-adds of a @ b (batch · rows · inner · columns; a 1-D operand is one row or column)."""
    rows = a.shape[-2] if a.ndim > 1 else 1
    columns = b.shape[-1] if b.ndim > 1 else 1
    batch = math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])) if a.ndim > 2 or b.ndim > 2 else 1
    return batch * rows * a.shape[-1] * columns


def _product(x, y):
    """x @ y for operands of at least 2 dims. When the summed axis has length 1 (a batch of one row in a weight's
    gradient) every entry is one product, so it is the broadcast x * y: the same numbers, without NumPy's matmul,
    which is several times slower on that shape."""
    return x * y if x.shape[-1] == 1 else _matmul(x, y)


def _matmul(x, y):
    """x @ y; a 2-D product of SPLIT_MACS or more runs as column blocks on the kernels' threads, one BLAS thread
    each (kernels/gemm.py: BLAS's own threads would keep spinning after it, taking the cores from the kernels
    that follow), so a Linear layer's products use both cores without that."""
    if x.ndim == 2 and y.ndim == 2 and x.shape[0] * x.shape[1] * y.shape[1] >= SPLIT_MACS:
        out = empty((x.shape[0], y.shape[1]), np.result_type(x, y))
        gemm(x, y, out)
        return out
    return x @ y


class MatMul(Function):
    """a @ b. Backward: dA = g · Bᵀ and dB = Aᵀ · g, with 1-D operands treated as a row / column
    vector and broadcast batch axes summed away."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit: the last axis of the first "
                             "must equal the second-to-last axis (or only axis) of the second")
        try:
            ctx.macs = _macs(a, b)  # each gradient is a product of the same size: its BLAS threads follow this
            with blas_for_product(ctx.macs):
                out = _matmul(a, b)
        except ValueError:
            raise ValueError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} cannot be broadcast "
                             "together") from None
        ctx.save_for_backward(a, b)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:  # first: for 1-D @ 1-D the gradient is 0-d and becomes (1,), then (1, 1)
            grad = np.expand_dims(grad, -1)
        if a.ndim == 1:
            grad = np.expand_dims(grad, -2)
        grad_a = grad_b = None
        with blas_for_product(ctx.macs):
            if ctx.needs_input_grad[0]:
                grad_a = unbroadcast(_product(grad, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
            if ctx.needs_input_grad[1]:
                # (gᵀ·A)ᵀ, not Aᵀ·g: the same numbers, but BLAS writes the wide gᵀ·A faster (benchmarks/RESULTS.md),
                # and for Linear's weight, whose b is Wᵀ, the transposed view is W's own layout: no copy when Wᵀ's
                # backward turns it back.
                product = np.swapaxes(_product(np.swapaxes(grad, -1, -2), a2), -1, -2)
                grad_b = unbroadcast(product, b2.shape).reshape(b.shape)
        return grad_a, grad_b


def _rows(x):
    """x as a matrix of its last axis's vectors (empty axes allowed, where reshape(-1, n) is ambiguous)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


class Linear(Function):
    """x · Wᵀ + b in one op, as PyTorch's addmm; the axes of x before its last are rows. Backward: dX = g · W,
    dW = gᵀ · X, db = Σ g over the rows. One node instead of a transpose, a product and a sum: a small
    network's step records and walks a third of the nodes it did for its Linear layers."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = _rows(x)
        ctx.macs = rows.shape[0] * weight.shape[0] * weight.shape[1]
        with blas_for_product(ctx.macs):
            out = _matmul(rows, weight.T)
        if bias is not None:
            out = out + bias
        ctx.save_for_backward(x, weight)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        grad_rows = _rows(grad)
        grad_x = grad_weight = grad_bias = None
        with blas_for_product(ctx.macs):
            if needs_x:
                grad_x = _product(grad_rows, weight).reshape(x.shape)
            if needs_weight:
                grad_weight = _product(grad_rows.T, _rows(x))
        if needs_bias:
            grad_bias = grad_rows.sum(axis=0)
        return grad_x, grad_weight, grad_bias
