"""The torch-like free functions: `tc.tensor`, `tc.zeros`, `tc.max`, `tc.exp`, ...

Each is the Tensor factory or method of the same name, so there is one implementation of every rule.
"""
import numpy as np

from .device import check_device, resolve_dtype
from .ops.einsum import Einsum
from .sampling import bernoulli, multinomial, normal, randperm
from .tensor import Tensor, where as _where

__all__ = ["tensor", "as_tensor", "from_numpy", "is_tensor", "is_floating_point", "numel", "where", "cat", "concat",
           "concatenate", "stack", "get_default_dtype", "Size", "randperm", "normal", "bernoulli", "multinomial", "einsum", "meshgrid", "std_mean", "var_mean"]

Size = tuple  # what `x.size()` and `x.shape` are here (PyTorch's torch.Size is a tuple subclass)


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of `data`, its dtype inferred as torch.tensor's: Python floats float32,
    ints int64, bools bool; a NumPy array keeps its dtype."""
    check_device(device, "tensor")
    return Tensor._from_data(data, dtype, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` itself when it is a Tensor of that dtype, a Tensor sharing a NumPy array's memory when no
    conversion is needed, else a new tensor as `tc.tensor`."""
    check_device(device, "as_tensor")
    dtype = resolve_dtype(dtype, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None or dtype == data.dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or dtype == data.dtype):
        return from_numpy(data)
    return Tensor._from_data(data, dtype, op="as_tensor")


def from_numpy(ndarray) -> Tensor:
    """A Tensor sharing `ndarray`'s memory (changes show through both), with its dtype."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    resolve_dtype(ndarray.dtype, "from_numpy")
    return Tensor._wrap(ndarray)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    return _tensor_input("is_floating_point", input).dtype.kind == "f"


def numel(input) -> int:
    return _tensor_input("numel", input).numel()


def get_default_dtype():
    return np.float32


def where(condition, input=None, other=None) -> Tensor:
    """Elements of input where condition holds, else of other; with the condition alone, its nonzero indices
    as a tuple of tensors (`condition.nonzero(as_tuple=True)`)."""
    if input is None and other is None:
        return _tensor_input("where", condition).nonzero(as_tuple=True)
    return _where(condition, input, other)


def einsum(equation, *operands) -> Tensor:
    """Sum of products over the named indices of `equation` ("ij,jk->ik"; '...' and an implicit output as in
    PyTorch); operands as arguments or one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {type(equation).__name__}")
    for operand in operands:
        _tensor_input("einsum", operand)
    if len({t.dtype for t in operands}) > 1:
        raise TypeError(f"einsum: operands must have one dtype, got {[t.dtype.name for t in operands]}")
    return Einsum.apply(equation, *operands)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids of 1-D tensors: output k varies along dim k ("ij", the default) or with the first two
    dims swapped ("xy", as NumPy's meshgrid)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if [t for t in tensors if _tensor_input("meshgrid", t).ndim > 1]:
        raise ValueError(f"meshgrid: expected 1-D tensors, got shapes {[t.shape for t in tensors]}")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        order[0], order[1] = 1, 0
    shape = tuple(tensors[k].numel() for k in order)
    grids = [tensors[k].reshape([-1 if j == position else 1 for j in range(len(order))]).expand(shape)
             for position, k in enumerate(order)]
    return tuple(grids[order.index(k)] for k in range(len(tensors)))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over `dim`, the std unbiased by default as `Tensor.std`."""
    return (_tensor_input("std_mean", input).std(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over `dim`, the variance unbiased by default as `Tensor.var`."""
    return (_tensor_input("var_mean", input).var(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim))


cat = concat = concatenate = Tensor.cat
stack = Tensor.stack


def _tensor_input(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a Tensor as input, got {type(input).__name__}")
    return input


def _method_as_function(name):
    def function(input, *args, **kwargs):
        return getattr(_tensor_input(name, input), name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"`tc.{name}(input, ...)` is `input.{name}(...)`."
    return function


_FACTORIES = ["zeros", "ones", "full", "empty", "rand", "randn", "randint", "arange", "linspace", "eye",
              "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like"]
_METHODS = ["abs", "exp", "log", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "square",
            "reciprocal", "sign", "neg", "clamp", "clip", "add", "sub", "mul", "div", "pow", "maximum", "minimum",
            "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod", "cumsum", "norm", "std", "var",
            "logsumexp", "softmax", "log_softmax", "all", "any", "sort", "argsort", "topk", "matmul", "mm", "bmm",
            "dot", "flatten", "reshape", "squeeze", "unsqueeze", "permute", "transpose", "t", "chunk", "split",
            "unbind", "gather", "masked_fill", "eq", "ne", "gt", "ge", "lt", "le", "equal", "allclose", "clone",
            "detach", "log1p", "round", "floor", "ceil", "trunc", "isnan", "isinf", "isfinite", "logical_not",
            "logical_and", "logical_or", "nonzero", "count_nonzero", "narrow", "index_select", "flip", "roll", "tril", "triu",
            "diag", "diagonal", "trace", "outer", "ger", "masked_select", "repeat_interleave", "scatter", "scatter_add",
            "index_add", "erf", "isclose", "unique", "bincount", "atan", "arctan", "atan2", "arctan2", "lerp",
            "addmm", "nan_to_num", "cumprod"]
for _name in _FACTORIES:
    globals()[_name] = getattr(Tensor, _name)
for _name in _METHODS:
    globals()[_name] = _method_as_function(_name)
__all__ += _FACTORIES + _METHODS
