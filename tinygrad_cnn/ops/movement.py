"""Movement ops: they change shape or pick elements, and their backward puts gradients back in place."""
import numpy as np

from ..autograd import Function
from .broadcast import unbroadcast


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < -1 for n in shape):
            raise ValueError(f"reshape: sizes must be non-negative ints, or -1 for one inferred size; got {tuple(shape)}")
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                             f"into shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ndim = x.ndim
        normalized = [a % ndim for a in axes if -ndim <= a < ndim]
        if len(normalized) != len(axes) or sorted(normalized) != list(range(ndim)):
            raise ValueError(f"permute: {tuple(axes)} is not a permutation of the {x.ndim} axes of shape {x.shape}")
        ctx.axes = normalized
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.axes)  # axis a of the output came from input axis i: the gradient goes back there
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return np.transpose(grad, inverse), None


class Expand(Function):
    """Broadcast to a larger shape (a view); backward sums over the stretched axes."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {x.shape} to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape), None


class Pad(Function):
    """Constant padding with NumPy's `pad_width` (one (before, after) pair per axis)."""

    @staticmethod
    def forward(ctx, x, pad_width, value):
        ctx.crop = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape))
        if x.ndim == 0:  # nothing to pad (and np.pad cannot take a 0-d array)
            return x.copy()
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.crop], None, None


class Concatenate(Function):
    """Join tensors along an existing axis; backward splits the gradient at the same places."""

    @staticmethod
    def forward(ctx, axis, *arrays):
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError:
            raise ValueError(f"cat: along axis {axis} the other dimensions must match; got shapes "
                             f"{[a.shape for a in arrays]}") from None
        ctx.axis, ctx.splits = axis, np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        return (None, *np.split(grad, ctx.splits, axis=ctx.axis))


class GetItem(Function):
    """x[index] for ints, slices, None, Ellipsis, bool masks and int arrays; backward scatter-adds,
    so repeated indices accumulate."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, grad.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] = grad  # each element picked at most once: plain assignment, ~30x faster than add.at
        else:
            np.add.at(out, ctx.index, grad)
        return out, None


class Gather(Function):
    """out[i][j][k] = x[i][index[i][j][k]][k] along `axis` (PyTorch's gather); backward scatter-adds."""

    @staticmethod
    def forward(ctx, x, axis, index):
        ctx.shape, ctx.index = x.shape, _full_index(index, axis)
        return x[ctx.index]

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, grad.dtype)
        np.add.at(out, ctx.index, grad)
        return out, None, None


def _full_index(index, axis):
    """The advanced index that picks index[...] along `axis` and the same position along every other axis."""
    positions = list(np.indices(index.shape, sparse=True))
    positions[axis] = index
    return tuple(positions)


class IndexPut(Function):
    """x with x[index] replaced by `value` (out of place; item assignment on a recorded tensor uses it):
    dX is the gradient with the written places zeroed, dValue the gradient there, summed to value's shape."""

    @staticmethod
    def forward(ctx, x, value, index):
        out = x.copy()
        out[index] = value
        ctx.index, ctx.value_shape = index, np.shape(value)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = grad.copy()
        grad_x[ctx.index] = 0
        return grad_x, unbroadcast(grad[ctx.index], ctx.value_shape), None


def _is_basic(index) -> bool:
    """True for NumPy basic indexing (ints, slices, None, Ellipsis, alone or in a tuple)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)
