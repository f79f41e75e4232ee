"""More Tensor methods PyTorch scripts use (a mixin of `Tensor`): flips and rolls, triangles and
diagonals, scatter, masked_select, repeat_interleave, erf, unique, bincount, isclose.

The differentiable ones are compositions of recorded ops (getitem, cat, where, index_put) or a
Function of their own (scatter, erf), so their gradients follow from those.
"""
from __future__ import annotations

import numpy as np

from .autograd import TensorBase
from .ops import elementwise, movement
from .ops.reduce import normalize_axes
from .ops.scatter import Scatter


def _array(value, op, what="index"):
    array = value._array if isinstance(value, TensorBase) else np.asarray(value)
    if what == "index" and array.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be an integer tensor, got dtype {array.dtype}")
    return array


class IdiomMethods:
    __slots__ = ()

    def flip(self, *dims):
        """The elements in reverse order along each of `dims`."""
        axes = normalize_axes(dims[0] if len(dims) == 1 else dims, self.ndim, "flip")
        return self[tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(self.ndim))]

    def roll(self, shifts, dims=None):
        """Elements shifted by `shifts` along `dims`, those past the end coming back at the start; without
        dims the flattened tensor is rolled and the shape restored."""
        if dims is None:
            return self.flatten().roll(shifts, 0).view(self.shape)
        shifts, dims = np.atleast_1d(shifts).tolist(), np.atleast_1d(dims).tolist()
        if len(shifts) != len(dims):
            raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
        out = self
        for shift, dim in zip(shifts, dims):
            axis = normalize_axes(dim, self.ndim, "roll")[0]
            n = self.shape[axis]
            cut = n - shift % n if n else 0
            before = (slice(None),) * axis
            out = type(self).cat([out[before + (slice(cut, None),)], out[before + (slice(0, cut),)]], axis)
        return out

    def _triangle(self, op, keep):
        if self.ndim < 2:
            raise ValueError(f"{op}: expected a tensor with at least 2 dims, got shape {self.shape}")
        return elementwise.Where.apply(keep, self, self._wrap(np.zeros((), self.dtype)))

    def tril(self, diagonal=0):
        """The lower triangle of the last two dims (j <= i + diagonal), zeros above."""
        return self._triangle("tril", np.tri(*self.shape[-2:], diagonal, dtype=bool))

    def triu(self, diagonal=0):
        """The upper triangle of the last two dims (j >= i + diagonal), zeros below."""
        return self._triangle("triu", ~np.tri(*self.shape[-2:], diagonal - 1, dtype=bool))

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The entries (i, i + offset) of dims dim1 and dim2, as the last dim of the result."""
        a, b = normalize_axes((dim1, dim2), self.ndim, "diagonal") if self.ndim >= 2 else (None, None)
        if a is None or a == b:
            raise ValueError(f"diagonal: needs two different dims of a tensor with at least 2 dims, got dims "
                             f"{dim1}, {dim2} for shape {self.shape}")
        moved = self.permute(*[d for d in range(self.ndim) if d not in (a, b)], a, b)
        rows, cols = moved.shape[-2:]
        start_row, start_col = max(-offset, 0), max(offset, 0)
        length = max(min(rows - start_row, cols - start_col), 0)
        steps = np.arange(length)
        return moved[..., steps + start_row, steps + start_col]

    def diag(self, diagonal=0):
        """A 1-D tensor: the square matrix with it on diagonal `diagonal`; a 2-D tensor: that diagonal."""
        if self.ndim == 2:
            return self.diagonal(diagonal)
        if self.ndim != 1:
            raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape {self.shape}")
        n = self.shape[0] + abs(diagonal)
        steps = np.arange(self.shape[0])
        where = (steps + max(-diagonal, 0), steps + max(diagonal, 0))
        return movement.IndexPut.apply(self._wrap(np.zeros((n, n), self.dtype)), self, where)

    def trace(self):
        if self.ndim != 2:
            raise ValueError(f"trace: expected a 2-D tensor, got shape {self.shape}")
        return self.diagonal().sum()

    def outer(self, vec2):
        if self.ndim != 1 or vec2.ndim != 1:
            raise ValueError(f"outer: expected two 1-D tensors, got shapes {self.shape} and {vec2.shape}")
        return self.reshape(-1, 1) * vec2.reshape(1, -1)

    ger = outer

    def masked_select(self, mask):
        """The elements where `mask` (a bool tensor broadcasting with self) holds, as a 1-D tensor."""
        mask = _array(mask, "masked_select", "mask")
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_select: mask must be a bool tensor, got dtype {mask.dtype}")
        try:
            shape = np.broadcast_shapes(self.shape, mask.shape)
        except ValueError:
            raise ValueError(f"masked_select: mask of shape {mask.shape} does not broadcast with {self.shape}") from None
        return self.expand(shape)[np.broadcast_to(mask, shape)]

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        """Each element repeated `repeats` times (an int or one count per element) along `dim`, or of the
        flattened tensor without dim; `tc.repeat_interleave(counts)` repeats each position by its count."""
        if repeats is None:
            counts = _array(self, "repeat_interleave", "index")
            return self._wrap(np.repeat(np.arange(len(counts)), counts))
        source = self.flatten() if dim is None else self
        axis = 0 if dim is None else normalize_axes(dim, self.ndim, "repeat_interleave")[0]
        counts = _array(repeats, "repeat_interleave", "index")
        try:
            positions = np.repeat(np.arange(source.shape[axis]), counts)
        except ValueError:
            raise ValueError(f"repeat_interleave: repeats of shape {counts.shape} do not fit dim {axis} of size "
                             f"{source.shape[axis]}") from None
        return source.index_select(axis, positions)

    def _scatter(self, op, dim, index, src, value, reduce, add):
        if reduce is not None:
            raise ValueError(f"{op}: reduce={reduce!r} is not supported here; use scatter_add for sums")
        if src is None:
            src = value
        axis = normalize_axes(dim, self.ndim, op)[0] if self.ndim else 0
        index = _array(index, op)
        if index.ndim != self.ndim:
            raise ValueError(f"{op}: index must have the tensor's {self.ndim} dims, got shape {index.shape}")
        if index.size and (index.min() < -self.shape[axis] or index.max() >= self.shape[axis]):
            raise IndexError(f"{op}: index out of range for dim {axis} of size {self.shape[axis]}")
        if isinstance(src, TensorBase):
            if src.ndim != self.ndim or any(i > s for i, s in zip(index.shape, src.shape)):
                raise ValueError(f"{op}: src of shape {src.shape} must cover the index's shape {index.shape}")
            src = src if src.dtype == self.dtype else src.to(self.dtype)
        elif src is None or np.ndim(src) != 0:
            raise TypeError(f"{op}: src must be a Tensor or a number, got {type(src).__name__}")
        return Scatter.apply(self, src, axis, index, add)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        """A copy with src[i][j] written at [index[i][j]][j] for dim 0 (and so on); src may be a number."""
        return self._scatter("scatter", dim, index, src, value, reduce, False)

    def scatter_add(self, dim, index, src):
        """A copy with src[i][j] added at [index[i][j]][j] for dim 0 (and so on); repeated indices add up."""
        return self._scatter("scatter_add", dim, index, src, None, None, True)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return self._in_place("scatter_", lambda x: x._scatter("scatter_", dim, index, src, value, reduce, False),
                              src)

    def scatter_add_(self, dim, index, src):
        return self._in_place("scatter_add_", lambda x: x._scatter("scatter_add_", dim, index, src, None, None, True),
                              src)

    def index_add(self, dim, index, source, *, alpha=1):
        """A copy with alpha * source's entry k along `dim` added at position index[k] of that dim."""
        axis = normalize_axes(dim, self.ndim, "index_add")[0]
        index = _array(index, "index_add")
        if index.ndim != 1 or source.ndim != self.ndim or index.shape[0] != source.shape[axis]:
            raise ValueError(f"index_add: index of shape {index.shape} and source of shape {source.shape} do not "
                             f"fit dim {axis} of a tensor of shape {self.shape}")
        spread = np.broadcast_to(index.reshape([-1 if d == axis else 1 for d in range(self.ndim)]), source.shape)
        return self.scatter_add(axis, spread, source if alpha == 1 else source * alpha)

    def retain_grad(self):
        raise NotImplementedError("retain_grad: keeping a non-leaf's .grad is not supported here; use "
                                  "tc.autograd.grad(output, [tensor]) to get its gradient")

    def register_hook(self, hook):
        raise NotImplementedError("register_hook: a gradient hook on a tensor is not supported here; use "
                                  "tc.autograd.grad(output, [tensor]) to see or change a gradient")

    def detach_(self):
        """Cut this tensor from the graph where it stands: it becomes a leaf that requires no grad."""
        self._node, self._output_index, self._requires_grad = None, 0, False
        return self

    def atan(self): return elementwise.Atan.apply(self)
    arctan = atan

    def atan2(self, other):
        """The angle of the point (other, self) in radians, elementwise (broadcasting)."""
        return elementwise.Atan2.apply(*self._operands(other))

    arctan2 = atan2

    def lerp(self, end, weight):
        """self + weight · (end − self)."""
        return self + weight * (end - self)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        """beta · self + alpha · (mat1 @ mat2)."""
        if mat1.ndim != 2 or mat2.ndim != 2:
            raise ValueError(f"addmm: expected two matrices, got shapes {mat1.shape} and {mat2.shape}")
        product = mat1.mm(mat2)
        return (self if beta == 1 else beta * self) + (product if alpha == 1 else alpha * product)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN replaced by `nan`, ±inf by `posinf`/`neginf` (the dtype's largest finite values by default)."""
        return self._constant("nan_to_num", lambda a: np.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf))

    def erf(self): return elementwise.Erf.apply(self)
    def erf_(self): return self._in_place("erf_", lambda x: x.erf())
    def abs_(self): return self._in_place("abs_", lambda x: x.abs())

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self − other| <= atol + rtol·|other| elementwise (a bool tensor, no gradient)."""
        return self._constant("isclose", lambda a, b: np.isclose(a, b, rtol, atol, equal_nan), other)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values, sorted (as PyTorch's CPU unique always is), and optionally the position of each
        element's value in them and how often each occurs."""
        axis = None if dim is None else normalize_axes(dim, self.ndim, "unique")[0]
        found = np.unique(self._array, return_inverse=return_inverse, return_counts=return_counts, axis=axis)
        if not (return_inverse or return_counts):
            return self._wrap(found)
        values, *rest = found
        if return_inverse:
            rest[0] = rest[0].reshape(self.shape if axis is None else -1)
        return (self._wrap(values), *(self._wrap(r.astype(np.int64)) for r in rest))

    def bincount(self, weights=None, minlength=0):
        """How often each value 0..max occurs in this 1-D non-negative integer tensor (or the sum of `weights` there)."""
        values = _array(self, "bincount")
        if values.ndim != 1 or (values.size and values.min() < 0):
            raise ValueError(f"bincount: expected a 1-D tensor of non-negative integers, got shape {values.shape}")
        w = None if weights is None else _array(weights, "bincount", "weights")
        counts = np.bincount(values, w, minlength)
        return self._wrap(counts if w is None else counts.astype(w.dtype if w.dtype.kind == "f" else np.float64))
