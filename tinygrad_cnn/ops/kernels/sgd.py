"""SGD's update in one pass over memory: NumPy made four to six passes (decay, momentum, step, subtraction)
and a temporary for each."""
import numpy as np

from tinygrad_cnn.ops.kernels import parallel_kernel

_BLOCK = 1 << 14  # elements per task: a task is one block of the flat arrays


@parallel_kernel(tasks=lambda param, *rest: -(-param.size // _BLOCK), elements=lambda param, *rest: param.size)
def _sgd_step(param, grad, buffer, lr, momentum, damped, decay, sign, nesterov, first, start, stop):
    """Per element, with g ← sign·g + λ·p:  b ← g on the first step, else μ·b + (1 − τ)·g;  g ← g + μ·b with
    Nesterov, else b;  p ← p − lr·g. Without momentum (μ = 0) `buffer` is not touched. Each product and sum
    rounds on its own, as NumPy's separate passes did (no fused multiply-add). Flat arrays."""
    size = np.uint64(param.size)
    block = np.uint64(_BLOCK)
    for b in range(start, stop):
        begin = np.uint64(b) * block
        for i in range(begin, min(begin + block, size)):
            g = sign * grad[i]
            if decay != 0:  # skipped, not added as 0·p: an infinite p would make it NaN
                g += decay * param[i]
            if momentum != 0:
                velocity = g if first else momentum * buffer[i] + damped * g
                buffer[i] = velocity
                g = g + momentum * velocity if nesterov else velocity
            param[i] -= lr * g


def sgd_step(param, grad, buffer, lr, momentum, dampening, decay, maximize, nesterov, first):
    """One SGD step in place on `param` (and on `buffer`, the momentum buffer, when momentum > 0; C-contiguous
    like `param`, or None without momentum); `grad` of the same shape, any layout; `first` starts the buffer
    at the gradient, as PyTorch's first step does."""
    dtype = param.dtype.type
    target = param if param.flags.c_contiguous else np.ascontiguousarray(param)
    grad = np.ascontiguousarray(grad, param.dtype).reshape(-1)
    velocity = target.reshape(-1) if buffer is None else buffer.reshape(-1)  # not read or written without momentum
    _sgd_step(target.reshape(-1), grad, velocity, dtype(lr), dtype(momentum), dtype(1 - dampening), dtype(decay),
              dtype(-1 if maximize else 1), nesterov, first)
    if target is not param:
        param[...] = target
