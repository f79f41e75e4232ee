"""In-place Tensor methods (a mixin of `Tensor`) under PyTorch's rules.

Refused on a leaf that requires grad while grad mode is on (its gradient would lose track of the old
values). Anywhere else they are allowed: with nothing to record the array is changed directly; on a
tensor in a graph (`out += shortcut(x)` in a residual block) the op runs out of place on a copy of the
old value, the result is written into the tensor's memory, and the tensor takes the new op as its origin. Each
change bumps the version counter, so a backward that needs an overwritten saved value raises.
"""
from __future__ import annotations

import numpy as np

from .autograd import TensorBase, is_grad_enabled, no_grad
from .ops import elementwise, movement
from .rng import generator
from .tensor_shape import plain_index


def _requires_grad(value) -> bool:
    return isinstance(value, TensorBase) and value._requires_grad


class InPlaceMethods:
    __slots__ = ()

    def _in_place(self, name, compute, *operands):
        """Replace this tensor's values by compute(self) (a Tensor) and, when grad is recorded, its origin."""
        recording = is_grad_enabled() and (self._requires_grad or any(map(_requires_grad, operands)))
        if recording and self._node is None and self._requires_grad:
            raise RuntimeError(f"{name}: in-place change of a leaf tensor that requires grad; do it inside "
                               "tc.no_grad() (as optimizers do) or use the out-of-place op")
        if recording and self._version_counter is not None and len(self._version_counter) > 1:
            raise RuntimeError(f"{name}: in-place change of a view of another tensor while recording a graph is not "
                               "supported here (the other tensor's graph would miss it); use the out-of-place op")
        if recording:  # the op sees a copy of the old values: what it saves must survive the overwrite below
            old = self._wrap(self._array.copy(), self._node, self._output_index)
            old._requires_grad = self._requires_grad
            result = compute(old)
        else:
            with no_grad():
                result = compute(self)
        if result.shape != self.shape:
            raise ValueError(f"{name}: the result has shape {result.shape}, which does not fit the tensor's "
                             f"{self.shape} (an in-place op cannot broadcast its target)")
        if not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise TypeError(f"{name}: the result's dtype {result.dtype} cannot be stored in this {self.dtype} tensor")
        np.copyto(self._array, result._array, casting="same_kind")
        if recording:
            self._node, self._output_index, self._requires_grad = result._node, result._output_index, True
        self._version += 1
        return self

    def _modify(self, name, change):
        """change(array) in place, recording nothing: the fused updates of optimizers, run under no_grad."""
        if self._requires_grad and is_grad_enabled():
            raise RuntimeError(f"{name}: in-place change of a tensor that requires grad; do it inside "
                               "tc.no_grad() (as optimizers do) or use the out-of-place op")
        change(self._array)
        self._version += 1
        return self

    def add_(self, other, *, alpha=1):
        return self._in_place("add_", lambda x: x + (other if alpha == 1 else other * alpha), other)

    def sub_(self, other, *, alpha=1):
        return self._in_place("sub_", lambda x: x - (other if alpha == 1 else other * alpha), other)

    def mul_(self, other): return self._in_place("mul_", lambda x: x * other, other)
    def div_(self, other): return self._in_place("div_", lambda x: x / other, other)
    def pow_(self, other): return self._in_place("pow_", lambda x: x ** other, other)
    def neg_(self): return self._in_place("neg_", lambda x: -x)
    def exp_(self): return self._in_place("exp_", lambda x: x.exp())
    def sqrt_(self): return self._in_place("sqrt_", lambda x: x.sqrt())
    def relu_(self): return self._in_place("relu_", lambda x: x.relu())
    def sigmoid_(self): return self._in_place("sigmoid_", lambda x: x.sigmoid())
    def tanh_(self): return self._in_place("tanh_", lambda x: x.tanh())

    def clamp_(self, min=None, max=None):
        return self._in_place("clamp_", lambda x: x.clamp(min, max))

    clip_ = clamp_

    def __iadd__(self, other): return self._in_place("+=", lambda x: x + other, other)
    def __isub__(self, other): return self._in_place("-=", lambda x: x - other, other)
    def __imul__(self, other): return self._in_place("*=", lambda x: x * other, other)
    def __itruediv__(self, other): return self._in_place("/=", lambda x: x / other, other)

    def _replace_where(self, name, mask, values):
        """values where mask holds, else the old value; the old value's gradient is zero where replaced."""
        return self._in_place(name, lambda x: elementwise.Where.apply(mask, _cast_to(values, x), x), values)

    def zero_(self): return self.fill_(0)

    def fill_(self, value):
        value = value.numpy() if isinstance(value, TensorBase) else value
        try:
            filled = np.full(self.shape, value, self.dtype)
        except (TypeError, ValueError):
            raise TypeError(f"fill_: cannot fill a {self.dtype} tensor with {value!r}") from None
        return self._replace_where("fill_", np.ones(self.shape, bool), self._wrap(filled))

    def copy_(self, src, non_blocking=False):
        src = src if isinstance(src, TensorBase) else self._wrap(np.asarray(src))
        try:
            np.broadcast_shapes(src.shape, self.shape)
        except ValueError:
            raise ValueError(f"copy_: source of shape {src.shape} does not broadcast to {self.shape}") from None
        return self._replace_where("copy_", np.ones(self.shape, bool), src)

    def masked_fill_(self, mask, value):
        mask = mask.numpy() if isinstance(mask, TensorBase) else np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill_: mask must be a bool tensor, got dtype {mask.dtype}")
        value = value if isinstance(value, TensorBase) else self._wrap(np.asarray(value, self.dtype))
        return self._replace_where("masked_fill_", mask, value)

    def normal_(self, mean=0.0, std=1.0):
        drawn = generator().normal(mean, std, self.shape).astype(self.dtype)
        return self._replace_where("normal_", np.ones(self.shape, bool), self._wrap(drawn))

    def uniform_(self, a=0.0, b=1.0):
        drawn = generator().uniform(a, b, self.shape).astype(self.dtype)
        return self._replace_where("uniform_", np.ones(self.shape, bool), self._wrap(drawn))

    def __setitem__(self, index, value):
        index = plain_index(index)
        value = value if isinstance(value, TensorBase) else self._wrap(np.asarray(value))
        try:
            self._in_place("setitem", lambda x: movement.IndexPut.apply(x, _cast_to(value, x), index), value)
        except (ValueError, IndexError) as error:
            if str(error).startswith("setitem:"):
                raise
            raise type(error)(f"setitem: cannot store a value of shape {value.shape} at index {index!r} of a tensor "
                              f"of shape {self.shape} ({error})") from None


def _cast_to(value, x):
    """`value` in x's dtype (it is stored into x's memory)."""
    return value if value.dtype == x.dtype else value.to(x.dtype)
