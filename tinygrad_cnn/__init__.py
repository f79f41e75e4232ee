"""tinygrad_cnn: NumPy tensors with reverse-mode autograd and Numba-jitted CNN kernels."""
import numpy as _np

from . import data, nn, onnx, optim, runtime, utils
from .anomaly import AnomalyError, detect_anomaly
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .rng import get_rng_state, manual_seed, set_rng_state
from .runtime import get_num_threads, set_num_threads
from .serialization import CheckpointError, load, save
from .summary import summary, to_dot
from .tensor import Tensor, where

float32 = _np.float32
float64 = _np.float64
int64 = _np.int64
int32 = _np.int32
uint8 = _np.uint8
bool_ = _np.bool_

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck", "GradcheckError",
           "manual_seed", "get_rng_state", "set_rng_state", "where", "save", "load", "CheckpointError",
           "summary", "to_dot", "set_num_threads", "get_num_threads", "detect_anomaly", "AnomalyError", "nn", "optim", "data", "utils", "onnx",
           "runtime",
           "float32", "float64", "int64", "int32", "uint8", "bool_"]
