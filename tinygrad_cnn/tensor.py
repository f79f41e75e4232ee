"""The user-facing Tensor: an ndarray, its gradient, and the graph node that made it.

Every differentiable method calls a `Function`; this module does no maths of its own.
"""
from __future__ import annotations

import operator

import numpy as np

from . import autograd
from .arguments import size_args, synonym
from .device import CPU, check_device, resolve_dtype, to_arguments, unsupported
from .ops import elementwise, movement, reduce as reduction
from .ops.matmul import MatMul
from .rng import generator
from .tensor_idioms import IdiomMethods
from .tensor_inplace import InPlaceMethods
from .tensor_reduce import ReductionMethods
from .tensor_shape import ShapeMethods


def _inferred_dtype(data, dtype, op="tensor"):
    """The dtype `tc.tensor(data)` gives, as torch.tensor: `dtype` if given; else Python floats are float32
    (the default dtype), a float64 NumPy array or scalar stays float64, ints are int64 (NumPy arrays keep
    their integer dtype) and bools bool."""
    if dtype is not None:
        return resolve_dtype(dtype, op)
    given = isinstance(data, (np.ndarray, np.generic))
    try:
        source = data.dtype if given else np.asarray(data).dtype
    except ValueError as error:
        raise ValueError(f"{op}: data must be a number or a rectangular (nested) list of numbers: {error}") from None
    if source.kind == "f":
        return source if given and source == np.float64 else np.dtype(np.float32)
    if source.kind in "biu":
        return source
    if source.kind == "c":
        raise TypeError(f"{op}: " + unsupported("complex data"))
    raise TypeError(f"{op}: cannot hold data of dtype {source}; give numbers, bools or a numeric array")


def _constructor_dtype(data, dtype):
    """The dtype `Tensor(data)` gives, as torch.Tensor: float32, except that a float64 NumPy array (or
    Tensor) keeps float64 (a deliberate difference: float64 gradchecks read naturally) and `dtype` wins."""
    if dtype is not None or isinstance(data, Tensor):
        return _inferred_dtype(data, dtype if dtype is not None else data.dtype, "Tensor")
    inferred = _inferred_dtype(data, None, "Tensor")
    return inferred if inferred == np.float64 else np.dtype(np.float32)


class Tensor(ShapeMethods, ReductionMethods, IdiomMethods, InPlaceMethods, autograd.TensorBase):
    """An n-dimensional array that records the ops applied to it, so `backward()` can find gradients.

    `Tensor(data)` follows torch.Tensor (float32; `Tensor(2, 3)` is an uninitialised 2x3 tensor);
    `tc.tensor(data)` infers the dtype as torch.tensor does.
    """

    __slots__ = ()
    __array_ufunc__ = None  # so `ndarray + Tensor` calls Tensor.__radd__ instead of NumPy's loop

    def __init__(self, *data, requires_grad: bool = False, dtype=None, device=None):
        check_device(device, "Tensor")
        if data and all(isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in data):
            array = np.empty(data, _constructor_dtype(0.0, dtype))  # Tensor(3): shape (3,), as torch.Tensor
        elif len(data) == 1:
            source = data[0]._array if isinstance(data[0], Tensor) else data[0]
            array = np.array(source, dtype=_constructor_dtype(data[0], dtype))
        else:
            raise TypeError(f"Tensor: expected data (a number, list or array) or the ints of a shape, got "
                            f"{tuple(type(d).__name__ for d in data)}")
        self._array, self.grad, self._node, self._output_index = array, None, None, 0
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

    @staticmethod
    def _from_data(data, dtype=None, requires_grad=False, op="tensor"):
        """A new Tensor holding a copy of `data` with tc.tensor's dtype rules."""
        source = data._array if isinstance(data, Tensor) else data
        t = Tensor._wrap(np.array(source, dtype=_inferred_dtype(source, dtype, op)))
        t.requires_grad = requires_grad
        return t

    # ---- attributes -------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if value and self._array.dtype.kind != "f":
            raise TypeError(f"Tensor of dtype {self._array.dtype} cannot require grad: only floating tensors can "
                            "(convert with .float())")
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

    def size(self, dim=None):
        """The shape (a tuple), or the size of dim `dim`, as PyTorch's `size()`."""
        if dim is None:
            return self._array.shape
        if self.ndim == 0:
            raise IndexError(f"size: a 0-d tensor has no dim {dim}")
        return self._array.shape[reduction.normalize_axes(dim, self.ndim, "size")[0]]

    def numel(self) -> int:
        return self._array.size

    nelement = numel

    def dim(self) -> int:
        return self._array.ndim

    ndimension = dim

    @property
    def device(self):
        return CPU

    is_cuda = False
    is_sparse = False
    is_quantized = False
    layout = "strided"

    def element_size(self) -> int:
        return self._array.itemsize

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
        dtype = resolve_dtype(dtype, "astype")
        return self if dtype == self.dtype else elementwise.Cast.apply(self, dtype)

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
        """`.to(dtype)`, `.to(device)`, `.to(device, dtype)` or `.to(other)` (other's dtype), as PyTorch's; the
        only device is the CPU. Returns self when nothing changes (a copy with copy=True)."""
        dtype, _ = to_arguments("to", args, dtype, device, Tensor)
        result = self if dtype is None else self.astype(dtype)
        return result.clone() if copy and result is self else result

    def cpu(self): return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError("cuda: " + unsupported("CUDA"))

    def type(self, dtype=None):
        """With no argument the type's name ('tinygrad_cnn.FloatTensor'), else `.to(dtype)`."""
        if dtype is None:
            names = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "int16": "Short",
                     "int8": "Char", "uint8": "Byte", "bool": "Bool"}
            return f"tinygrad_cnn.{names.get(self.dtype.name, self.dtype.name)}Tensor"
        return self.to(dtype)

    def type_as(self, other): return self.to(other.dtype)

    def clone(self):
        """A copy of the values that stays in the graph (the gradient passes through)."""
        return elementwise.Cast.apply(self, self.dtype)

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
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None, *, grad=None) -> None:
        """Accumulate d(self)/d(leaf) · gradient into `.grad` of every leaf that requires grad."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported here")
        if inputs is not None:
            raise NotImplementedError("backward: inputs= is not supported here; use tc.autograd.grad")
        grad = gradient if grad is None else grad
        retain_graph = bool(retain_graph)
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

    # ---- factories (also tc.zeros, tc.ones, ...: PyTorch's signatures) ----------------------
    @staticmethod
    def _new(array, dtype, requires_grad, device, op, default=np.float32):
        """A leaf around a fresh `array`, cast to `dtype` (float32 unless the factory has another default)."""
        check_device(device, op)
        dtype = resolve_dtype(dtype, op) or np.dtype(default)
        t = Tensor._wrap(array if array.dtype == dtype else array.astype(dtype))
        t.requires_grad = requires_grad
        return t

    @staticmethod
    def zeros(*size, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.zeros(size_args(size, "zeros")), dtype, requires_grad, device, "zeros")

    @staticmethod
    def ones(*size, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.ones(size_args(size, "ones")), dtype, requires_grad, device, "ones")

    @staticmethod
    def full(size, fill_value, dtype=None, device=None, requires_grad=False):
        """Filled with `fill_value`; its dtype follows the value (bool, int64 or float32) unless given."""
        default = _inferred_dtype(fill_value, None, "full")
        return Tensor._new(np.full(size_args((size,), "full"), fill_value), dtype, requires_grad, device, "full", default)

    @staticmethod
    def empty(*size, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.empty(size_args(size, "empty"), resolve_dtype(dtype, "empty") or np.float32), dtype,
                           requires_grad, device, "empty")

    @staticmethod
    def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
        """Uniform on [0, 1), drawn from the package generator (tc.manual_seed)."""
        return Tensor._new(_generator(generator).random(size_args(size, "rand")), dtype, requires_grad, device, "rand")

    @staticmethod
    def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
        """Standard normal."""
        return Tensor._new(_generator(generator).standard_normal(size_args(size, "randn")), dtype, requires_grad, device,
                           "randn")

    @staticmethod
    def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad=False, generator=None):
        """Integers uniform on [low, high) (`randint(high, size)` starts at 0), int64 as PyTorch's."""
        if size is None:
            low, high, size = 0, low, high
        if size is None or high is None:
            raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
        if high <= low:
            raise ValueError(f"randint: high ({high}) must be larger than low ({low})")
        drawn = _generator(generator).integers(low, high, size_args((size,), "randint"))
        return Tensor._new(drawn, dtype, requires_grad, device, "randint", np.int64)

    @staticmethod
    def uniform(*size, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False):
        return Tensor._new(generator().uniform(low, high, size_args(size, "uniform")), dtype, requires_grad, device, "uniform")

    @staticmethod
    def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
        """Like np.arange; integer arguments give an int64 tensor and floating ones float32, as PyTorch's."""
        if step == 0:
            raise ValueError("arange: step must not be zero")
        values = np.arange(start, end, step)
        return Tensor._new(values, dtype, requires_grad, device, "arange",
                           np.float32 if values.dtype.kind == "f" else np.int64)

    @staticmethod
    def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
        if int(steps) < 0:
            raise ValueError(f"linspace: steps must be non-negative, got {steps}")
        return Tensor._new(np.linspace(start, end, int(steps)), dtype, requires_grad, device, "linspace")

    @staticmethod
    def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.eye(*size_args((n,) if m is None else (n, m), "eye")), dtype, requires_grad, device,
                           "eye")

    @staticmethod
    def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.zeros(input.shape), dtype or input.dtype, requires_grad, device, "zeros_like")

    @staticmethod
    def ones_like(input, *, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.ones(input.shape), dtype or input.dtype, requires_grad, device, "ones_like")

    @staticmethod
    def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.full(input.shape, fill_value), dtype or input.dtype, requires_grad, device, "full_like")

    @staticmethod
    def empty_like(input, *, dtype=None, device=None, requires_grad=False):
        return Tensor._new(np.empty(input.shape), dtype or input.dtype, requires_grad, device, "empty_like")

    @staticmethod
    def rand_like(input, *, dtype=None, device=None, requires_grad=False):
        return Tensor.rand(input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)

    @staticmethod
    def randn_like(input, *, dtype=None, device=None, requires_grad=False):
        return Tensor.randn(input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return Tensor.zeros(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return Tensor.ones(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return Tensor.full(size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        check_device(device, "new_tensor")
        return Tensor._from_data(data, dtype or self.dtype, requires_grad, "new_tensor")

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
        return Tensor._from_data(other, op="operand")

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
        dtype = self._array.dtype
        if isinstance(other, Tensor) and other._array.dtype == dtype and dtype.kind == "f":
            a, b = (other, self) if reflected else (self, other)  # the common case: nothing to convert
        else:
            a, b = _named(function.__name__.lower(), self._operands, other, reflected,
                          function is not elementwise.Compare)
            if function is elementwise.Div and a.dtype.kind != "f" and b.dtype.kind != "f":  # integers divide to
                a, b = Tensor._wrap(a._array.astype(np.float32)), Tensor._wrap(b._array.astype(np.float32))  # float32
        try:
            return function.apply(a, b, *extra)
        except (ValueError, TypeError, OverflowError) as error:
            name = function.__name__.lower()
            named = _named_error(name, error)
            if isinstance(named, ValueError) and "broadcast" in str(named):
                raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast "
                                 "together (NumPy rules: trailing axes must be equal or 1)") from None
            raise named

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

    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other
    greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

    def equal(self, other) -> bool:
        """True when both have the same shape and values (a Python bool, as torch.equal)."""
        return self.shape == other.shape and bool(np.array_equal(self._array, other._array))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        return bool(np.allclose(self._array, self._operand(other)._array, rtol, atol, equal_nan))

    def mm(self, mat2):
        if self.ndim != 2 or getattr(mat2, "ndim", None) != 2:
            raise ValueError(f"mm: expects two 2-D tensors, got shapes {self.shape} and {np.shape(mat2)}")
        return self @ mat2

    def bmm(self, mat2):
        if self.ndim != 3 or getattr(mat2, "ndim", None) != 3 or self.shape[0] != mat2.shape[0]:
            raise ValueError(f"bmm: expects two 3-D tensors with the same batch size, got shapes {self.shape} and "
                             f"{np.shape(mat2)}")
        return self @ mat2

    def dot(self, other):
        if self.ndim != 1 or getattr(other, "ndim", None) != 1:
            raise ValueError(f"dot: expects two 1-D tensors, got shapes {self.shape} and {np.shape(other)}")
        return self @ other

    # ---- unary maths and activations -------------------------------------------------------
    def abs(self): return _named("abs", elementwise.Abs.apply, self)
    def exp(self): return _named("exp", elementwise.Exp.apply, self)
    def log(self): return _named("log", elementwise.Log.apply, self)
    def sqrt(self): return _named("sqrt", elementwise.Sqrt.apply, self)
    def sin(self): return _named("sin", elementwise.Sin.apply, self)
    def cos(self): return _named("cos", elementwise.Cos.apply, self)
    def tanh(self): return _named("tanh", elementwise.Tanh.apply, self)
    def sigmoid(self): return _named("sigmoid", elementwise.Sigmoid.apply, self)
    def relu(self): return _named("relu", elementwise.ReLU.apply, self)
    def leaky_relu(self, negative_slope=0.01): return _named("leaky_relu", elementwise.LeakyReLU.apply, self, negative_slope)
    def square(self): return self * self
    def rsqrt(self): return 1 / self.sqrt()
    def reciprocal(self): return 1 / self
    def log2(self): return self.log() / float(np.log(2))
    def log10(self): return self.log() / float(np.log(10))
    def absolute(self): return self.abs()

    def log1p(self): return (self + 1).log()
    def is_floating_point(self) -> bool: return self.dtype.kind == "f"

    # ---- piecewise-constant maths, masks and bit ops: no gradient (it is zero almost everywhere) -----
    def _constant(self, name, ufunc, *others):
        arrays = [o._array if isinstance(o, Tensor) else np.asarray(o) for o in others]
        try:
            return Tensor._wrap(np.asarray(ufunc(self._array, *arrays)))
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name}: cannot apply to tensors of dtype {self.dtype} and "
                            f"{[a.dtype.name for a in arrays]} and shapes {self.shape}, "
                            f"{[a.shape for a in arrays]}") from error

    def sign(self): return self._constant("sign", np.sign)
    def round(self): return self._constant("round", np.round)
    def floor(self): return self._constant("floor", np.floor)
    def ceil(self): return self._constant("ceil", np.ceil)
    def trunc(self): return self._constant("trunc", np.trunc)
    def isnan(self): return self._constant("isnan", np.isnan)
    def isinf(self): return self._constant("isinf", np.isinf)
    def isfinite(self): return self._constant("isfinite", np.isfinite)
    def logical_not(self): return self._constant("logical_not", np.logical_not)
    def logical_and(self, other): return self._constant("logical_and", np.logical_and, other)
    def logical_or(self, other): return self._constant("logical_or", np.logical_or, other)

    def _bitwise(self, name, ufunc, other, reflected=False):
        if self.dtype.kind not in "biu" or (isinstance(other, Tensor) and other.dtype.kind not in "biu"):
            raise TypeError(f"{name}: needs bool or integer tensors, got dtype {self.dtype}")
        other = self._operand(other)
        return other._constant(name, ufunc, self) if reflected else self._constant(name, ufunc, other)

    def __invert__(self):
        if self.dtype.kind not in "biu":
            raise TypeError(f"~: needs a bool or integer tensor, got dtype {self.dtype}")
        return self._constant("~", np.invert)
    def __and__(self, other): return self._bitwise("&", np.bitwise_and, other)
    def __rand__(self, other): return self._bitwise("&", np.bitwise_and, other, True)
    def __or__(self, other): return self._bitwise("|", np.bitwise_or, other)
    def __ror__(self, other): return self._bitwise("|", np.bitwise_or, other, True)
    def __xor__(self, other): return self._bitwise("^", np.bitwise_xor, other)
    def __rxor__(self, other): return self._bitwise("^", np.bitwise_xor, other, True)

    def __floordiv__(self, other): return self._constant("floor_divide", np.floor_divide, self._operand(other))
    def __rfloordiv__(self, other): return self._operand(other)._constant("floor_divide", np.floor_divide, self)
    def __mod__(self, other): return self._constant("remainder", np.remainder, self._operand(other))
    def __rmod__(self, other): return self._operand(other)._constant("remainder", np.remainder, self)

    def nonzero(self, *, as_tuple=False):
        """The indices of the non-zero elements: an (n, ndim) int64 tensor, or one tensor per dim."""
        found = np.nonzero(self._array)
        if as_tuple:
            return tuple(Tensor._wrap(i.astype(np.int64)) for i in found)
        return Tensor._wrap(np.stack(found, axis=1).astype(np.int64) if found else np.zeros((0, 0), np.int64))

    def count_nonzero(self, dim=None):
        dims = reduction.normalize_axes(dim, self.ndim, "count_nonzero")
        return Tensor._wrap(np.asarray(np.count_nonzero(self._array, axis=dims), np.int64))

    def narrow(self, dim, start, length):
        """The `length` elements from `start` along `dim` (a view, as PyTorch's)."""
        axis = reduction.normalize_axes(dim, self.ndim, "narrow")[0]
        if not 0 <= start % max(self.shape[axis], 1) <= self.shape[axis] - length or length < 0:
            raise ValueError(f"narrow: start {start} and length {length} do not fit dim {dim} of size "
                             f"{self.shape[axis]}")
        start %= max(self.shape[axis], 1)
        return self[(slice(None),) * axis + (slice(start, start + length),)]

    def index_select(self, dim, index):
        """The entries `index` (a 1-D integer tensor) along `dim`."""
        axis = reduction.normalize_axes(dim, self.ndim, "index_select")[0]
        index = index._array if isinstance(index, Tensor) else np.asarray(index)
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise TypeError(f"index_select: index must be a 1-D integer tensor, got dtype {index.dtype} and shape "
                            f"{index.shape}")
        return self[(slice(None),) * axis + (index,)]

    def clamp(self, min=None, max=None):
        """Clamp values to [min, max]; either bound may be None (not both, as PyTorch)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        bounds = [b.numpy() if isinstance(b, Tensor) else b for b in (min, max)]
        return _named("clamp", elementwise.Clip.apply, self, *bounds)

    clip = clamp

    def clamp_min(self, min): return self.clamp(min, None)
    def clamp_max(self, max): return self.clamp(None, max)

    def masked_fill(self, mask, value):
        """`value` where `mask` (a bool tensor broadcasting to self) holds, else self."""
        mask = mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {mask.dtype}")
        return where(mask, self._operand(value).to(self.dtype), self)

    def float(self): return self.to(np.float32)
    def double(self): return self.to(np.float64)
    def long(self): return self.to(np.int64)
    def int(self): return self.to(np.int32)
    def short(self): return self.to(np.int16)
    def byte(self): return self.to(np.uint8)
    def bool(self): return self.to(np.bool_)

    def half(self):
        raise TypeError("half: " + unsupported("half precision"))

    bfloat16 = half

    @staticmethod
    def cat(tensors, dim=0, *, axis=None):
        """Join tensors along an existing dim."""
        dim = synonym("cat", dim if axis is None else None, 0, axis, "dim and axis")
        tensors = list(tensors)
        if not tensors:
            raise ValueError("cat: needs at least one tensor")
        if not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError(f"cat: expected Tensors, got {[type(t).__name__ for t in tensors]}")
        if tensors[0].ndim == 0:
            raise ValueError("cat: 0-d tensors have no dim to join along; use stack")
        return movement.Concatenate.apply(reduction.normalize_axes(dim, tensors[0].ndim, "cat")[0], *tensors)

    @staticmethod
    def stack(tensors, dim=0, *, axis=None):
        """Join tensors of one shape along a new dim."""
        dim = synonym("stack", dim if axis is None else None, 0, axis, "dim and axis")
        tensors = list(tensors)
        if not tensors:
            raise ValueError("stack: needs at least one tensor")
        if not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError(f"stack: expected Tensors, got {[type(t).__name__ for t in tensors]}")
        if len({t.shape for t in tensors}) != 1:
            raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
        if not -tensors[0].ndim - 1 <= dim <= tensors[0].ndim:
            raise ValueError(f"stack: dim {dim} is out of range for a result with {tensors[0].ndim + 1} dimensions")
        return Tensor.cat([t.unsqueeze(dim) for t in tensors], dim)  # cat reads a negative dim in the new ndim


def _named(name: str, call, *args):
    """call(*args), with a NumPy error about the operands (a bool negated, an integer to a negative power, a
    Python number that overflows the tensor's dtype) re-raised as a ValueError/TypeError naming the op."""
    try:
        return call(*args)
    except (ValueError, TypeError, OverflowError) as error:
        raise _named_error(name, error)


def _named_error(name: str, error: Exception) -> Exception:
    """`error` itself if its message starts with the op's name, else a ValueError/TypeError saying so, caused
    by it."""
    if str(error).startswith(f"{name}:"):
        return error
    named = (TypeError if isinstance(error, TypeError) else ValueError)(f"{name}: {error}")
    named.__cause__ = error
    return named


def _generator(given):
    """The package generator, or a NumPy Generator the caller passed (PyTorch's `generator=`)."""
    if given is None:
        return generator()
    if not isinstance(given, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator, got {type(given).__name__}")
    return given


def _to_float_of(tensor, other):
    """`tensor` cast to `other`'s floating dtype if `tensor` is integer or bool (it has no gradient to keep)."""
    if tensor.dtype.kind in "biu" and other.dtype.kind == "f":
        return Tensor._wrap(tensor._array.astype(other.dtype))
    return tensor


def where(condition, x, y) -> Tensor:
    """Elements of x where condition holds, else of y (broadcasting); the condition takes no gradient."""
    template = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor._from_data(x, op="where")
    x, y = template._operand(x), template._operand(y)
    return _named("where", elementwise.Where.apply, condition, _to_float_of(x, y), _to_float_of(y, x))


