"""tinygrad_cnn: NumPy tensors with reverse-mode autograd and Numba-jitted CNN kernels, under PyTorch's names."""
import numpy as _np

from . import autograd, data, nn, onnx, optim, runtime, utils
from .anomaly import AnomalyError, detect_anomaly
from .autograd import Function, enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .device import accelerator, backends, cuda, device, unsupported as _unsupported
from .functions import *  # noqa: F401,F403  tensor, zeros, max, exp, ...: see functions.__all__
from .functions import __all__ as _functions
from .gradcheck import GradcheckError, gradcheck
from .rng import get_rng_state, manual_seed, set_rng_state
from .runtime import get_num_threads, set_num_threads
from .serialization import CheckpointError, load, save
from .summary import summary, to_dot
from .tensor import Tensor

autograd.gradcheck = gradcheck  # tc.autograd.gradcheck, as torch.autograd.gradcheck

# dtype names: NumPy's types, so `x.dtype == tc.float32` holds and NumPy accepts them everywhere
float32 = float = _np.float32
float64 = double = _np.float64
int64 = long = _np.int64
int32 = int = _np.int32
int16 = short = _np.int16
int8 = _np.int8
uint8 = _np.uint8
bool = bool_ = _np.bool_
dtype = _np.dtype

_UNSUPPORTED = {"float16": "half precision", "half": "half precision", "bfloat16": "bfloat16",
                "complex64": "complex dtypes", "complex128": "complex dtypes", "cfloat": "complex dtypes",
                "cdouble": "complex dtypes", "sparse_coo": "sparse tensors", "sparse_csr": "sparse tensors",
                "sparse_coo_tensor": "sparse tensors", "compile": "torch.compile", "jit": "TorchScript"}


def __getattr__(name):
    """PyTorch names this package deliberately lacks say so instead of a bare AttributeError."""
    if name in _UNSUPPORTED:
        raise AttributeError(f"tinygrad_cnn.{name}: " + _unsupported(_UNSUPPORTED[name]))
    raise AttributeError(f"module 'tinygrad_cnn' has no attribute {name!r}")


__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "inference_mode",
           "gradcheck", "GradcheckError", "manual_seed", "get_rng_state", "set_rng_state", "save", "load",
           "CheckpointError", "summary", "to_dot", "set_num_threads", "get_num_threads", "detect_anomaly",
           "AnomalyError", "nn", "optim", "data", "utils", "onnx", "runtime", "autograd", "device", "cuda",
           "accelerator", "backends", "float32", "float", "float64", "double", "int64", "long", "int32", "int",
           "int16", "short", "int8", "uint8", "bool", "bool_", "dtype", *_functions]
