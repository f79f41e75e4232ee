"""Tensor reductions (a mixin of `Tensor`) with PyTorch's `dim`/`keepdim` (NumPy's `axis`/`keepdims` accepted).

`max(dim)`, `min(dim)`, `sort` and `topk` return named tuples (values, indices) as PyTorch's do, so
`_, predicted = outputs.max(1)` unpacks the indices; `max()` with no dim is a 0-d tensor.
"""
from __future__ import annotations

import collections
import math
import warnings

import numpy as np

from .arguments import synonym
from .autograd import TensorBase
from .ops import reduce as reduction

ValuesIndices = {name: collections.namedtuple(name, ["values", "indices"])
                 for name in ("max", "min", "sort", "topk", "kthvalue", "median", "mode")}


def _dims(op, dim, axis, keepdim, keepdims):
    return synonym(op, dim, None, axis, "dim and axis"), bool(synonym(op, keepdim, False, keepdims, "keepdim and keepdims"))


def _count(tensor, dim, op) -> int:
    return math.prod(tensor.shape[a] for a in reduction.normalize_axes(dim, tensor.ndim, op))


def _reduced_dims(tensor, dim, op) -> tuple:
    """The dims an extreme-value reduction runs over; refused, naming `op`, if one of them is empty."""
    dims = reduction.normalize_axes(dim, tensor.ndim, op)
    if any(tensor.shape[a] == 0 for a in dims) or (tensor.ndim == 0 and tensor.numel() == 0):
        raise ValueError(f"{op}: cannot reduce over an empty dim: shape {tensor.shape}, dim {dim}")
    return dims


def _correction(op, unbiased, correction, ddof) -> float:
    """PyTorch's default is the unbiased estimate (divide by n − 1); `unbiased=False` or `correction=0` (NumPy's
    `ddof`) divide by n."""
    given = [v for v in (unbiased, correction, ddof) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: give one of unbiased, correction and ddof")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if not given else given[0]


def implicit_softmax_dim(op: str, ndim: int) -> int:
    """PyTorch's choice when softmax gets no dim (0 for 0-, 1- and 3-dim input, else 1), with its warning."""
    warnings.warn(f"{op}: implicit dimension choice is deprecated, as in PyTorch; pass dim=", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class ReductionMethods:
    __slots__ = ()

    def sum(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        dim, keepdim = _dims("sum", dim, axis, keepdim, keepdims)
        source = self if dtype is None else self.to(dtype)
        return reduction.Sum.apply(source, dim, keepdim)

    def mean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        dim, keepdim = _dims("mean", dim, axis, keepdim, keepdims)
        count = _count(self, dim, "mean")
        return (self if dtype is None else self.to(dtype)).sum(dim, keepdim) / count

    def _extreme(self, op, function, pick, dim, keepdim, axis, keepdims):
        if isinstance(dim, TensorBase):  # tc.max(a, b) / a.max(b): elementwise
            return self.maximum(dim) if op == "max" else self.minimum(dim)
        dim, keepdim = _dims(op, dim, axis, keepdim, keepdims)
        if dim is None:
            _reduced_dims(self, None, op)
            return function.apply(self, None, False)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{op}: dim must be one int (use a{op} for several dims), got {dim!r}")
        indices = pick(self, dim, True)
        values = self.gather(dim, indices.numpy()) if self.ndim else self.clone()
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return ValuesIndices[op](values, indices)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest element (0-d), or (values, indices) along `dim`, or the elementwise maximum with a tensor.
        Over all elements tied maxima share the gradient; along a dim it goes to the returned index."""
        return self._extreme("max", reduction.Max, type(self).argmax, dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest element (0-d), or (values, indices) along `dim`, or the elementwise minimum with a tensor.
        Over all elements tied minima share the gradient; along a dim it goes to the returned index."""
        return self._extreme("min", reduction.Min, type(self).argmin, dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Largest values over one or several dims (values only); tied maxima share the gradient."""
        dim, keepdim = _dims("amax", dim, axis, keepdim, keepdims)
        _reduced_dims(self, dim, "amax")
        return reduction.Max.apply(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _dims("amin", dim, axis, keepdim, keepdims)
        _reduced_dims(self, dim, "amin")
        return reduction.Min.apply(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduction.ArgReduce.apply(self, np.argmax, *_dims("argmax", dim, axis, keepdim, keepdims))

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduction.ArgReduce.apply(self, np.argmin, *_dims("argmin", dim, axis, keepdim, keepdims))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None, ddof=None):
        """Variance over `dim`, dividing by n − correction: unbiased (correction 1) by default, as PyTorch's."""
        return self._variance("var", dim, unbiased, keepdim, correction, axis, keepdims, ddof)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None, ddof=None):
        """Standard deviation: the square root of `var` (unbiased by default, as PyTorch's)."""
        return self._variance("std", dim, unbiased, keepdim, correction, axis, keepdims, ddof).sqrt()

    def _variance(self, op, dim, unbiased, keepdim, correction, axis, keepdims, ddof):
        if isinstance(dim, bool):  # the old var(unbiased) form
            dim, unbiased = None, dim
        dim, keepdim = _dims(op, dim, axis, keepdim, keepdims)
        divisor = _count(self, dim, op) - _correction(op, unbiased, correction, ddof)
        centred = self - self.mean(dim, keepdim=True)
        return (centred * centred).sum(dim, keepdim) / max(divisor, 0)

    def prod(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        dim, keepdim = _dims("prod", dim, axis, keepdim, keepdims)
        return reduction.Prod.apply(self if dtype is None else self.to(dtype), dim, keepdim)

    def cumsum(self, dim, *, dtype=None): return self._running("cumsum", reduction.CumSum, dim, dtype)
    def cumprod(self, dim, *, dtype=None): return self._running("cumprod", reduction.CumProd, dim, dtype)

    def _running(self, op, function, dim, dtype):
        source = self if dtype is None else self.to(dtype)
        axis = reduction.normalize_axes(dim, self.ndim, op)
        return function.apply(source, axis[0] if axis else None) if self.ndim else source.clone()

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The p-norm over `dim` (all elements by default): 'fro' or 2, 1, inf, -inf or any other p."""
        x = self if dtype is None else self.to(dtype)
        if p in ("fro", 2):
            return (x * x).sum(dim, keepdim).sqrt()
        source = x.abs()
        if p in (np.inf, float("inf")):
            return source.amax(dim, keepdim)
        if p in (-np.inf, float("-inf")):
            return source.amin(dim, keepdim)
        if isinstance(p, str) or isinstance(p, bool):
            raise ValueError(f"norm: p must be a number or 'fro', got {p!r}")
        if p == 1:
            return source.sum(dim, keepdim)
        return (source ** p).sum(dim, keepdim) ** (1.0 / p)

    def logsumexp(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return reduction.LogSumExp.apply(self, *_dims("logsumexp", dim, axis, keepdim, keepdims))

    def softmax(self, dim=None, *, axis=None, dtype=None):
        dim = synonym("softmax", dim, None, axis, "dim and axis")
        dim = implicit_softmax_dim("softmax", self.ndim) if dim is None else dim
        source = self if dtype is None else self.to(dtype)
        return reduction.Softmax.apply(source, reduction.normalize_axes(dim, self.ndim, "softmax"))

    def log_softmax(self, dim=None, *, axis=None, dtype=None):
        dim = synonym("log_softmax", dim, None, axis, "dim and axis")
        dim = implicit_softmax_dim("log_softmax", self.ndim) if dim is None else dim
        source = self if dtype is None else self.to(dtype)
        return reduction.LogSoftmax.apply(source, reduction.normalize_axes(dim, self.ndim, "log_softmax"))

    def sort(self, dim=-1, descending=False, stable=False):
        """(values, indices) sorted along `dim`; ties keep their order (a stable sort is always used)."""
        axis = reduction.normalize_axes(dim, self.ndim, "sort")
        keys = self._array if self.dtype.kind != "b" else self._array.astype(np.int8)
        if not axis:
            return ValuesIndices["sort"](self.clone(), self._wrap(np.zeros((), np.int64)))
        order = np.argsort(-keys if descending else keys, axis=axis[0], kind="stable")
        return ValuesIndices["sort"](self.gather(axis[0], order), self._wrap(order.astype(np.int64)))

    def argsort(self, dim=-1, descending=False, stable=False):
        return self.sort(dim, descending, stable).indices

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """(values, indices) of the k largest (or smallest) elements along `dim`, largest first."""
        axis = reduction.normalize_axes(dim, self.ndim, "topk")
        size = self.shape[axis[0]] if axis else 1
        if not 0 <= k <= size:
            raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {size}")
        ordered = self.sort(dim, descending=largest)
        pick = (slice(None),) * (axis[0] if axis else 0) + (slice(0, k),)
        return ValuesIndices["topk"](ordered.values[pick], ordered.indices[pick])

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _dims("all", dim, axis, keepdim, keepdims)
        return self._wrap(np.all(self._array, axis=reduction.normalize_axes(dim, self.ndim, "all"), keepdims=keepdim))

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _dims("any", dim, axis, keepdim, keepdims)
        return self._wrap(np.any(self._array, axis=reduction.normalize_axes(dim, self.ndim, "any"), keepdims=keepdim))
