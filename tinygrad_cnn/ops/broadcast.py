"""The helpers that undo NumPy broadcasting in a backward pass: the operands' shapes, and the sum back to one."""
import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, giving an array of `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)


def shape_of(x) -> tuple:
    """x.shape for an array (one attribute read, on every binary op), np.shape(x) for a constant such as 2.0."""
    return x.shape if isinstance(x, np.ndarray) else np.shape(x)
