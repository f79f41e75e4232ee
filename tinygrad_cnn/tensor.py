"""The user-facing Tensor: an ndarray, its gradient, and the graph node that made it.

Every differentiable method calls a `Function`; this module does no maths of its own.
"""
from __future__ import annotations

import operator

import numpy as np

from . import autograd
from .autograd import is_grad_enabled
from .ops import elementwise, movement, reduce as reduction
from .ops.matmul import MatMul
from .rng import generator


def _resolve_dtype(data, dtype):
    """The dtype a new Tensor gets: `dtype` if given, else float32 for floating data unless it is a float64
    NumPy array or scalar (Python floats and lists of them are float64 to NumPy, but float32 here)."""
    if dtype is not None:
        return np.dtype(dtype)
    given = isinstance(data, (np.ndarray, np.generic))
    source = data.dtype if given else np.asarray(data).dtype
    if source.kind == "f":
        return source if given and source == np.float64 else np.dtype(np.float32)
    if source.kind in "biu":
        return source
    raise TypeError(f"Tensor: cannot hold data of dtype {source}; give numbers, bools or a numeric array")


def _shape_args(shape) -> tuple:
    """Shapes given as separate ints or as one tuple/list, as PyTorch accepts them."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Tensor(autograd.TensorBase):
    """An n-dimensional array that records the ops applied to it, so `backward()` can find gradients."""

    __slots__ = ()
    __array_ufunc__ = None  # so `ndarray + Tensor` calls Tensor.__radd__ instead of NumPy's loop

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data._array
        self._array = np.array(data, dtype=_resolve_dtype(data, dtype))
        self.grad = None
        self._node = None
        self._output_index = 0
        self._version_counter = [0]
        self._requires_grad = False
        self.requires_grad = requires_grad

    @staticmethod
    def _wrap(array, node=None, index=0):
        """A Tensor around an existing array, without a copy: op results (a Parameter's too) are plain Tensors."""
        t = Tensor.__new__(Tensor)
        t._array, t.grad, t._node, t._output_index, t._version_counter = array, None, node, index, [0]
        t._requires_grad = node is not None
        return t

    # ---- attributes -------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if value and self._array.dtype.kind != "f":
            raise TypeError(f"Tensor of dtype {self._array.dtype} cannot require grad: only floating tensors can "
                            "(convert with .astype('float32'))")
        if not value and self._node is not None:
            raise RuntimeError("requires_grad cannot be turned off on a tensor made by an op; use .detach()")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set `requires_grad` in place and return self, as PyTorch's."""
        self.requires_grad = requires_grad
        return self

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's memory has had; one counter is shared by every tensor
        viewing the same memory (detach(), and op results that are views), as PyTorch's version counter."""
        return self._version_counter[0]

    @_version.setter
    def _version(self, value: int):
        self._version_counter[0] = value

    @property
    def shape(self) -> tuple:
        return self._array.shape

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def size(self) -> int:
        return self._array.size

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def op(self):
        """Name of the Function that made this tensor, or None for a leaf."""
        return None if self._node is None else self._node.ctx.function.__name__

    def numpy(self) -> np.ndarray:
        """The array behind this tensor (shared, not copied)."""
        return self._array

    @property
    def data(self) -> Tensor:
        """The same memory as a Tensor that records no graph and has its own version counter, as PyTorch's
        `.data`: changes made through it are invisible to autograd (prefer `detach()`, which shares the counter)."""
        return Tensor._wrap(self._array)

    @data.setter
    def data(self, value):
        """Make this tensor hold `value`'s memory (a Tensor or an ndarray); shape and dtype may change, as in
        PyTorch, except that a tensor requiring grad keeps a floating dtype."""
        if isinstance(value, Tensor):
            value = value._array
        elif not isinstance(value, np.ndarray):
            raise TypeError(f"data: expected a Tensor or an ndarray, got {type(value).__name__}")
        if self._requires_grad and value.dtype.kind != "f":
            raise TypeError(f"data: a tensor that requires grad must hold floating data, got dtype {value.dtype}")
        if value.dtype.kind not in "biuf":
            raise TypeError(f"data: a Tensor holds numbers or bools, not dtype {value.dtype}")
        self._array = value

    def __array__(self, dtype=None, copy=None):
        """NumPy's conversion protocol: `np.array(t)` copies, `np.asarray(t)` shares when it can."""
        return np.array(self._array, dtype=dtype, copy=copy)

    def item(self):
        if self._array.size != 1:
            raise ValueError(f"item: only a tensor with one element converts to a Python number; shape is {self.shape}")
        return self._array.item()

    def tolist(self):
        return self._array.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def detach(self) -> Tensor:
        """The same data (and version counter), cut from the graph."""
        detached = Tensor._wrap(self._array)
        detached._version_counter = self._version_counter
        return detached

    def astype(self, dtype) -> Tensor:
        dtype = _named("astype", np.dtype, dtype)
        if dtype.kind not in "biuf":
            raise TypeError(f"astype: a Tensor holds numbers or bools, not {dtype}")
        return elementwise.Cast.apply(self, dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(self._array, separator=", ", prefix="Tensor(")
        extra = f", op={self.op}" if self._node is not None else (", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self._array.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self._array)

    # ---- gradients -------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · grad into `.grad` of every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of the ops that made it "
                               "requires grad, or it was made under no_grad()")
        if grad is None:
            if self._array.size != 1:
                raise RuntimeError(f"backward() of a non-scalar tensor of shape {self.shape} needs grad=, an array "
                                   "of the same shape (the gradient of the final result with respect to it)")
            grad = np.ones(self.shape, self.dtype)
        else:
            grad = np.asarray(grad._array if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape} but the tensor has shape {self.shape}")
        if self._node is None:
            self._accumulate_grad(grad)
        else:
            autograd.run_backward(self, grad, retain_graph)

    def _accumulate_grad(self, grad: np.ndarray, owned: bool = False) -> None:
        """Add `grad` into .grad; the first one is copied (later sums go in place) unless `owned` says nobody
        else holds it."""
        if self.grad is None:
            self.grad = Tensor._wrap(grad if owned else np.array(grad, dtype=self.dtype))
        else:
            self.grad._array += grad

    # ---- in-place changes (no graph; refused where they would corrupt one) -------------------
    def _modify(self, name, change):
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{name}: in-place change of a tensor that requires grad; do it inside "
                               "tc.no_grad() (as optimizers do) or use the out-of-place op")
        change(self._array)
        self._version += 1
        return self

    def __setitem__(self, index, value):
        index = index._array if isinstance(index, Tensor) else index
        value = value._array if isinstance(value, Tensor) else value
        self._modify("setitem", lambda a: a.__setitem__(index, value))

    def zero_(self):
        return self._modify("zero_", lambda a: a.fill(0))

    def fill_(self, value):
        return self._modify("fill_", lambda a: a.fill(value))

    def copy_(self, source):
        source = source._array if isinstance(source, Tensor) else np.asarray(source)
        if source.shape != self.shape:
            raise ValueError(f"copy_: source has shape {source.shape}, expected {self.shape}")
        return self._modify("copy_", lambda a: np.copyto(a, source, casting="unsafe"))

    def _apply_in_place(self, name, ufunc, other):
        other = other._array if isinstance(other, Tensor) else other
        return self._modify(name, lambda a: ufunc(a, other, out=a, casting="unsafe"))

    def __iadd__(self, other): return self._apply_in_place("+=", np.add, other)
    def __isub__(self, other): return self._apply_in_place("-=", np.subtract, other)
    def __imul__(self, other): return self._apply_in_place("*=", np.multiply, other)
    def __itruediv__(self, other): return self._apply_in_place("/=", np.divide, other)

    # ---- factories -------------------------------------------------------------------------
    @classmethod
    def _new(cls, array, dtype, requires_grad):
        return cls(array, requires_grad=requires_grad, dtype=np.float32 if dtype is None else dtype)

    @classmethod
    def zeros(cls, *shape, dtype=None, requires_grad=False):
        return cls._new(np.zeros(_shape_args(shape)), dtype, requires_grad)

    @classmethod
    def ones(cls, *shape, dtype=None, requires_grad=False):
        return cls._new(np.ones(_shape_args(shape)), dtype, requires_grad)

    @classmethod
    def full(cls, shape, fill_value, dtype=None, requires_grad=False):
        return cls._new(np.full(_shape_args((shape,)), fill_value), dtype, requires_grad)

    @classmethod
    def empty(cls, *shape, dtype=None, requires_grad=False):
        return cls(np.empty(_shape_args(shape), np.float32 if dtype is None else dtype), requires_grad)

    @classmethod
    def rand(cls, *shape, dtype=None, requires_grad=False):
        """Uniform on [0, 1)."""
        return cls._new(generator().random(_shape_args(shape)), dtype, requires_grad)

    @classmethod
    def randn(cls, *shape, dtype=None, requires_grad=False):
        """Standard normal."""
        return cls._new(generator().standard_normal(_shape_args(shape)), dtype, requires_grad)

    @classmethod
    def uniform(cls, *shape, low=0.0, high=1.0, dtype=None, requires_grad=False):
        return cls._new(generator().uniform(low, high, _shape_args(shape)), dtype, requires_grad)

    @classmethod
    def arange(cls, start, stop=None, step=1, dtype=None, requires_grad=False):
        """Like np.arange; integer arguments give an int64 tensor and floating ones float32, as PyTorch's."""
        values = np.arange(start, stop, step)
        if dtype is None and values.dtype.kind == "f":
            dtype = np.float32
        return cls(values, requires_grad=requires_grad, dtype=dtype)

    @classmethod
    def eye(cls, n, m=None, dtype=None, requires_grad=False):
        return cls._new(np.eye(n, m), dtype, requires_grad)

    @classmethod
    def zeros_like(cls, other, dtype=None, requires_grad=False):
        return cls._new(np.zeros(other.shape), dtype or other.dtype, requires_grad)

    @classmethod
    def ones_like(cls, other, dtype=None, requires_grad=False):
        return cls._new(np.ones(other.shape), dtype or other.dtype, requires_grad)

    # ---- arithmetic ------------------------------------------------------------------------
    def _operand(self, other):
        """`other` as a constant Tensor. A Python number takes a float tensor's dtype, and an int takes an
        integer tensor's (no upcast); NumPy arrays keep their dtype; lists follow the constructor."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, bool)) and (
                self.dtype.kind == "f" or (self.dtype.kind in "iu" and not isinstance(other, float))):
            return Tensor._wrap(np.asarray(other, dtype=self.dtype))
        if isinstance(other, (np.ndarray, np.generic)):
            return Tensor._wrap(np.asarray(other))
        return Tensor(other)

    def _operands(self, other, reflected=False, promote=True):
        """(self, other) as Tensors, swapped if reflected. With `promote`, PyTorch's rule: an integer or bool
        operand takes the floating operand's dtype."""
        a, b = self, self._operand(other)
        if reflected:
            a, b = b, a
        if promote:
            a, b = _to_float_of(a, b), _to_float_of(b, a)
        return a, b

    def _binary(self, function, other, reflected=False, *extra):
        name = function.__name__.lower()
        if isinstance(other, Tensor) and other._array.dtype == self._array.dtype and self._array.dtype.kind == "f":
            a, b = (other, self) if reflected else (self, other)  # the common case: nothing to convert
        else:
            a, b = _named(name, self._operands, other, reflected, function is not elementwise.Compare)
        if function is elementwise.Div and a.dtype.kind != "f" and b.dtype.kind != "f":  # integers divide to float32
            a, b = Tensor._wrap(a._array.astype(np.float32)), Tensor._wrap(b._array.astype(np.float32))
        try:
            return _named(name, function.apply, a, b, *extra)
        except ValueError as error:
            if "broadcast" not in str(error):
                raise
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast "
                             "together (NumPy rules: trailing axes must be equal or 1)") from None

    def __add__(self, other): return self._binary(elementwise.Add, other)
    def __radd__(self, other): return self._binary(elementwise.Add, other, reflected=True)
    def __sub__(self, other): return self._binary(elementwise.Sub, other)
    def __rsub__(self, other): return self._binary(elementwise.Sub, other, reflected=True)
    def __mul__(self, other): return self._binary(elementwise.Mul, other)
    def __rmul__(self, other): return self._binary(elementwise.Mul, other, reflected=True)
    def __truediv__(self, other): return self._binary(elementwise.Div, other)
    def __rtruediv__(self, other): return self._binary(elementwise.Div, other, reflected=True)
    def __pow__(self, other): return self._binary(elementwise.Pow, other)
    def __rpow__(self, other): return self._binary(elementwise.Pow, other, reflected=True)
    def __matmul__(self, other): return MatMul.apply(*self._operands(other))
    def __rmatmul__(self, other): return MatMul.apply(*self._operands(other, reflected=True))
    def __neg__(self): return _named("neg", elementwise.Neg.apply, self)
    def __abs__(self): return self.abs()

    def matmul(self, other): return self @ other
    def add(self, other): return self + other
    def sub(self, other): return self - other
    def mul(self, other): return self * other
    def div(self, other): return self / other
    def pow(self, other): return self ** other
    def neg(self): return -self

    def maximum(self, other): return self._binary(elementwise.Maximum, other)
    def minimum(self, other): return self._binary(elementwise.Minimum, other)

    def _compare(self, other, op):
        if other is None:  # `t == None` is False and `t < None` a TypeError, as for any Python object
            return NotImplemented
        return self._binary(elementwise.Compare, other, False, op)

    def __eq__(self, other): return self._compare(other, operator.eq)
    def __ne__(self, other): return self._compare(other, operator.ne)
    def __lt__(self, other): return self._compare(other, operator.lt)
    def __le__(self, other): return self._compare(other, operator.le)
    def __gt__(self, other): return self._compare(other, operator.gt)
    def __ge__(self, other): return self._compare(other, operator.ge)

    # ---- unary maths and activations -------------------------------------------------------
    def abs(self): return _named("abs", elementwise.Abs.apply, self)
    def exp(self): return _named("exp", elementwise.Exp.apply, self)
    def log(self): return _named("log", elementwise.Log.apply, self)
    def sqrt(self): return _named("sqrt", elementwise.Sqrt.apply, self)
    def tanh(self): return _named("tanh", elementwise.Tanh.apply, self)
    def sigmoid(self): return _named("sigmoid", elementwise.Sigmoid.apply, self)
    def relu(self): return _named("relu", elementwise.ReLU.apply, self)
    def leaky_relu(self, negative_slope=0.01): return _named("leaky_relu", elementwise.LeakyReLU.apply, self, negative_slope)

    def clip(self, low=None, high=None):
        """Clamp values to [low, high]; either bound may be None."""
        return _named("clip", elementwise.Clip.apply, self, low, high)

    def softmax(self, axis=-1):
        return _named("softmax", reduction.Softmax.apply, self, reduction.normalize_axes(axis, self.ndim, "softmax"))

    def log_softmax(self, axis=-1):
        return _named("log_softmax", reduction.LogSoftmax.apply, self, reduction.normalize_axes(axis, self.ndim, "log_softmax"))

    def logsumexp(self, axis=None, keepdims=False):
        return _named("logsumexp", reduction.LogSumExp.apply, self, axis, keepdims)

    # ---- reductions ------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return reduction.Sum.apply(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        count = int(np.prod([self.shape[a] for a in reduction.normalize_axes(axis, self.ndim, "mean")]))
        return self.sum(axis, keepdims) / count

    def max(self, axis=None, keepdims=False):
        """Largest values over `axis` (values only, as NumPy). Tied maxima share the gradient equally."""
        return reduction.Max.apply(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        """Smallest values over `axis`. Tied minima share the gradient equally."""
        return reduction.Min.apply(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        """Variance over `axis`; `ddof` as NumPy (0: divide by n; PyTorch's default is ddof=1)."""
        count = int(np.prod([self.shape[a] for a in reduction.normalize_axes(axis, self.ndim, "var")]))
        centred = self - self.mean(axis, keepdims=True)
        return (centred * centred).sum(axis, keepdims) / max(count - ddof, 0)

    def std(self, axis=None, keepdims=False, ddof=0):
        return self.var(axis, keepdims, ddof).sqrt()

    def argmax(self, axis=None, keepdims=False):
        return reduction.ArgReduce.apply(self, np.argmax, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return reduction.ArgReduce.apply(self, np.argmin, axis, keepdims)

    # ---- movement --------------------------------------------------------------------------
    def reshape(self, *shape): return movement.Reshape.apply(self, _shape_args(shape))
    view = reshape

    def flatten(self, start_axis=0, end_axis=-1):
        """Merge axes start_axis..end_axis into one (a 0-d tensor becomes shape (1,), as in PyTorch)."""
        start, end = (reduction.normalize_axes(a, self.ndim, "flatten") for a in (start_axis, end_axis))
        if self.ndim == 0:
            return self.reshape(1)
        (start,), (end,) = start, end
        if start > end:
            raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for a tensor with "
                             f"{self.ndim} dimensions")
        merged = int(np.prod(self.shape[start:end + 1]))
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *axes): return movement.Permute.apply(self, _shape_args(axes))

    def transpose(self, axis0=-2, axis1=-1):
        """Swap two axes (a 0-d tensor takes 0 or -1 and stays as it is, as in PyTorch)."""
        axes = list(range(self.ndim))
        first, second = (reduction.normalize_axes(a, self.ndim, "transpose") for a in (axis0, axis1))
        if self.ndim:
            axes[first[0]], axes[second[0]] = axes[second[0]], axes[first[0]]
        return self.permute(axes)

    @property
    def T(self):
        """All axes reversed, as NumPy's `.T`."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def squeeze(self, axis=None):
        axes = reduction.normalize_axes(axis, self.ndim, "squeeze") if axis is not None else \
            tuple(i for i, n in enumerate(self.shape) if n == 1)
        if any(self.shape[a] != 1 for a in axes):
            raise ValueError(f"squeeze: axis {axis} of shape {self.shape} does not have size 1")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def unsqueeze(self, axis):
        """Insert an axis of size 1 at `axis`; a negative axis counts in the result's axes, as PyTorch's."""
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise ValueError(f"unsqueeze: axis {axis} is out of range for a result with {self.ndim + 1} dimensions")
        axis %= self.ndim + 1
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def expand(self, *shape):
        """Broadcast to `shape` without copying; -1 keeps an axis's size, as PyTorch's."""
        shape = _shape_args(shape)
        lead = len(shape) - self.ndim
        if lead < 0 or -1 in shape[:lead] or any(n < -1 for n in shape):
            raise ValueError(f"expand: cannot expand shape {self.shape} to {shape} (new axes go in front; -1 keeps "
                             "the size of an existing axis)")
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return movement.Expand.apply(self, shape)

    def pad(self, pad_width, value=0.0):
        """Constant padding; `pad_width` as NumPy's: an int, one (before, after) pair, or a pair per axis."""
        try:
            given = np.asarray(pad_width, dtype=int)
            widths = np.broadcast_to(given, (self.ndim, 2))
        except (ValueError, TypeError):
            raise ValueError(f"pad: pad_width must be an int, one (before, after) pair or a pair for each of the "
                             f"{self.ndim} axes, got {pad_width!r}") from None
        if (given < 0).any():
            raise ValueError(f"pad: widths must be non-negative, got {pad_width}")
        return movement.Pad.apply(self, tuple(map(tuple, widths.tolist())), value)

    @staticmethod
    def cat(tensors, axis=0):
        """Join tensors along an existing axis."""
        tensors = list(tensors)
        if not tensors:
            raise ValueError("cat: needs at least one tensor")
        if not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError(f"cat: expected Tensors, got {[type(t).__name__ for t in tensors]}")
        if tensors[0].ndim == 0:
            raise ValueError("cat: 0-d tensors have no axis to join along; use stack")
        return movement.Concatenate.apply(reduction.normalize_axes(axis, tensors[0].ndim, "cat")[0], *tensors)

    @staticmethod
    def stack(tensors, axis=0):
        """Join tensors of one shape along a new axis."""
        tensors = list(tensors)
        if not tensors:
            raise ValueError("stack: needs at least one tensor")
        if not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError(f"stack: expected Tensors, got {[type(t).__name__ for t in tensors]}")
        if len({t.shape for t in tensors}) != 1:
            raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
        if not -tensors[0].ndim - 1 <= axis <= tensors[0].ndim:
            raise ValueError(f"stack: axis {axis} is out of range for a result with {tensors[0].ndim + 1} dimensions")
        return Tensor.cat([t.unsqueeze(axis) for t in tensors], axis)  # cat reads a negative axis in the new ndim

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index._array
        elif isinstance(index, tuple):
            index = tuple(i._array if isinstance(i, Tensor) else i for i in index)
        return movement.GetItem.apply(self, index)


def _named(name: str, call, *args):
    """call(*args), with a NumPy error about the operands (a bool negated, an integer to a negative power, a
    Python number that overflows the tensor's dtype) re-raised as a ValueError/TypeError naming the op."""
    try:
        return call(*args)
    except (ValueError, TypeError, OverflowError) as error:
        if str(error).startswith(f"{name}:"):
            raise
        raise (TypeError if isinstance(error, TypeError) else ValueError)(f"{name}: {error}") from error


def _to_float_of(tensor, other):
    """`tensor` cast to `other`'s floating dtype if `tensor` is integer or bool (it has no gradient to keep)."""
    if tensor.dtype.kind in "biu" and other.dtype.kind == "f":
        return Tensor._wrap(tensor._array.astype(other.dtype))
    return tensor


def where(condition, x, y) -> Tensor:
    """Elements of x where condition holds, else of y (broadcasting); the condition takes no gradient."""
    template = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor(x)
    x, y = template._operand(x), template._operand(y)
    return _named("where", elementwise.Where.apply, condition, _to_float_of(x, y), _to_float_of(y, x))


