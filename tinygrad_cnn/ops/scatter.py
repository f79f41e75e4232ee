"""scatter and scatter_add along one axis (PyTorch's rules), the adjoints of gather."""
import numpy as np

from ..autograd import Function
from .movement import _full_index


class Scatter(Function):
    """out = x, then out[index[i][j]][j] = src[i][j] along axis 0 (and so on for other axes); with
    `add`, out[...] += src[i][j] instead, repeated indices accumulating. Only src's leading block of
    index's shape is read. dX is the gradient with the overwritten places zeroed (all of it for add);
    dSrc is the gradient gathered back from those places."""

    @staticmethod
    def forward(ctx, x, src, axis, index, add):
        ctx.index, ctx.add, ctx.src_shape = _full_index(index, axis), add, np.shape(src)
        ctx.block = tuple(map(slice, index.shape))
        block = np.broadcast_to(src, index.shape) if np.ndim(src) == 0 else src[ctx.block]
        out = x.copy()
        if add:
            np.add.at(out, ctx.index, block)
        else:
            out[ctx.index] = block
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = grad
        if not ctx.add:
            grad_x = grad.copy()
            grad_x[ctx.index] = 0
        grad_src = None
        if ctx.src_shape:
            grad_src = np.zeros(ctx.src_shape, grad.dtype)
            grad_src[ctx.block] = grad[ctx.index]
        return grad_x, grad_src, None, None, None
