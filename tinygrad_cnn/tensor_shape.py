"""Tensor methods that change shape or pick elements (a mixin of `Tensor`), with PyTorch's signatures."""
from __future__ import annotations

import math

import numpy as np

from .arguments import shape_args, synonym
from .autograd import TensorBase
from .ops import movement
from .ops.reduce import normalize_axes


def _one_axis(axis, ndim: int, op: str) -> int:
    """`axis` as one non-negative dim (a 0-d tensor takes 0 or -1, as in PyTorch, and gives 0)."""
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: dim must be one int, got {axis!r}")
    axes = normalize_axes(axis, ndim, op)
    return axes[0] if axes else 0


class ShapeMethods:
    """view/reshape, permute/transpose, squeeze/unsqueeze, expand/repeat, split/chunk, flatten, gather."""

    __slots__ = ()

    def reshape(self, *shape): return movement.Reshape.apply(self, shape_args(shape, "reshape"))
    view = reshape

    def view_as(self, other): return self.reshape(other.shape)
    reshape_as = view_as

    def contiguous(self):
        """self when its memory is already C-ordered, else a C-ordered copy (flattening copies into C order)."""
        return self if self._array.flags.c_contiguous else self.reshape(-1).reshape(self.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims start_dim..end_dim into one (a 0-d tensor becomes shape (1,), as in PyTorch)."""
        start, end = (_one_axis(a, self.ndim, "flatten") for a in (start_dim, end_dim))
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor with "
                             f"{self.ndim} dimensions")
        merged = math.prod(self.shape[start:end + 1])
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *dims): return movement.Permute.apply(self, shape_args(dims, "permute"))

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dims (a 0-d tensor takes 0 or -1 and stays as it is, as in PyTorch)."""
        ndim = self._array.ndim
        dims = list(range(ndim))
        first, second = _one_axis(dim0, ndim, "transpose"), _one_axis(dim1, ndim, "transpose")
        if ndim:
            dims[first], dims[second] = dims[second], dims[first]
        return movement.Permute.apply(self, tuple(dims))

    swapaxes = transpose

    def t(self):
        """Transpose of a tensor of at most 2 dims, as PyTorch's."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {self.shape}; use transpose")
        return self.transpose(0, -1) if self.ndim == 2 else self

    @property
    def T(self):
        """All dims reversed, as NumPy's `.T`."""
        return self.permute(tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def squeeze(self, dim=None, *, axis=None):
        """Drop dims of size 1 (only `dim` if given; a dim of another size stays, as in PyTorch)."""
        dim = synonym("squeeze", dim, None, axis, "dim and axis")
        dims = range(self.ndim) if dim is None else normalize_axes(dim, self.ndim, "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    def unsqueeze(self, dim=None, *, axis=None):
        """Insert a dim of size 1 at `dim`; a negative dim counts in the result's dims, as PyTorch's."""
        dim = synonym("unsqueeze", dim, None, axis, "dim and axis")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"unsqueeze: dim must be an int, got {dim!r}")
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise ValueError(f"unsqueeze: dim {dim} is out of range for a result with {self.ndim + 1} dimensions")
        dim %= self.ndim + 1
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *sizes):
        """Broadcast to `sizes` without copying; -1 keeps a dim's size, as PyTorch's."""
        shape = shape_args(sizes, "expand")
        lead = len(shape) - self.ndim
        if lead < 0 or -1 in shape[:lead] or any(n < -1 for n in shape) or any(
                n not in (-1, 1, m) and m != 1 for n, m in zip(shape[lead:], self.shape)):
            raise ValueError(f"expand: cannot expand shape {self.shape} to {shape} (new dims go in front; a dim "
                             "of size 1 grows, -1 keeps a dim's size)")
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return movement.Expand.apply(self, shape)

    def expand_as(self, other): return self.expand(other.shape)

    def repeat(self, *sizes):
        """Tile the tensor `sizes[d]` times along each dim d (extra leading sizes add dims), as np.tile."""
        sizes = shape_args(sizes, "repeat")
        if len(sizes) < self.ndim or any(n < 0 for n in sizes):
            raise ValueError(f"repeat: needs a non-negative count for each of the {self.ndim} dims (or more), "
                             f"got {sizes}")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        spread = self.reshape(tuple(x for n in shape for x in (1, n)))
        tiled = spread.expand(tuple(x for r, n in zip(sizes, shape) for x in (r, n)))
        return tiled.reshape(tuple(r * n for r, n in zip(sizes, shape)))

    def split(self, split_size_or_sections, dim=0):
        """Pieces of `split_size` along `dim` (the last may be smaller), or pieces of the listed sizes."""
        dim = _one_axis(dim, self.ndim, "split")
        length = self.shape[dim]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = list(split_size_or_sections)
            if sum(sizes) != length or any(n < 0 for n in sizes):
                raise ValueError(f"split: sizes {sizes} must be non-negative and add up to {length}, the size of dim "
                                 f"{dim}")
        else:
            if split_size_or_sections <= 0:
                raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, length - s) for s in range(0, length, split_size_or_sections)]
        starts = np.cumsum([0] + sizes)
        lead = (slice(None),) * dim
        return tuple(self[lead + (slice(int(a), int(b)),)] for a, b in zip(starts[:-1], starts[1:]))

    def chunk(self, chunks, dim=0):
        """At most `chunks` pieces of ceil(size / chunks) along `dim`, as PyTorch's."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        length = self.shape[_one_axis(dim, self.ndim, "chunk")]
        return self.split(max(-(-length // chunks), 1), dim)

    def unbind(self, dim=0):
        dim = _one_axis(dim, self.ndim, "unbind")
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim]))

    def gather(self, dim, index):
        """out[i][j] = self[i][index[i][j]] for dim=1, and so on, as PyTorch's gather."""
        dim = _one_axis(dim, self.ndim, "gather")
        index = np.asarray(index._array if isinstance(index, TensorBase) else index)
        if index.dtype.kind not in "iu" or index.ndim != self.ndim:
            raise TypeError(f"gather: index must be an integer tensor with {self.ndim} dims, got dtype {index.dtype} "
                            f"and shape {index.shape}")
        if any(i > n for d, (i, n) in enumerate(zip(index.shape, self.shape)) if d != dim):
            raise ValueError(f"gather: index of shape {index.shape} is larger than the input {self.shape} outside "
                             f"dim {dim}")
        if index.size and (index.min() < -self.shape[dim] or index.max() >= self.shape[dim]):
            raise IndexError(f"gather: index out of range for dim {dim} of size {self.shape[dim]}")
        return movement.Gather.apply(self, dim, index)

    def pad(self, pad_width, value=0.0):
        """Constant padding; `pad_width` as NumPy's: an int, one (before, after) pair, or a pair per dim."""
        try:
            given = np.asarray(pad_width, dtype=int)
            widths = np.broadcast_to(given, (self.ndim, 2))
        except (ValueError, TypeError):
            raise ValueError(f"pad: pad_width must be an int, one (before, after) pair or a pair for each of the "
                             f"{self.ndim} dims, got {pad_width!r}") from None
        if (given < 0).any():
            raise ValueError(f"pad: widths must be non-negative, got {pad_width}")
        return movement.Pad.apply(self, tuple(map(tuple, widths.tolist())), value)

    def __getitem__(self, index):
        return movement.GetItem.apply(self, plain_index(index))


def plain_index(index):
    """An index with its Tensors replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(i._array if isinstance(i, TensorBase) else i for i in index)
    return index._array if isinstance(index, TensorBase) else index
