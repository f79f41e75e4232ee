"""Activation gradients in one pass over memory."""
from numba import njit


@njit(cache=True)
def relu_backward(grad, out, zero, grad_in):
    """dL/dx[i] = dL/dy[i] where y[i] = max(x[i], 0) > 0, else 0 (PyTorch's gradient at 0), on flat C-contiguous
    arrays; `zero` is 0 of their dtype. One pass: NumPy's grad · (x > 0) builds a mask first and converts it to
    floats. Serial: the pass is memory-bound, and a parallel launch costs more than the second thread gains."""
    for i in range(grad.size):
        grad_in[i] = grad[i] if out[i] > 0 else zero
