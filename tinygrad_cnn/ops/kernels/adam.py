"""Adam's update in one pass over memory: NumPy would make about ten passes and as many temporaries."""
import math

import numpy as np

from tinygrad_cnn.ops.kernels import parallel_kernel

_BLOCK = 1 << 14  # elements per task: a task is one block of the flat arrays


@parallel_kernel(tasks=lambda param, *rest: -(-param.size // _BLOCK), fastmath={"contract"},
                 elements=lambda param, *rest: param.size)
def _adam_step(param, grad, exp_avg, exp_avg_sq, beta1, beta2, step_size, bias2_root, eps, decay, start, stop):
    """Per element, with g ← g + λ·p:  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
    p ← p − step_size · m / (√v / √(1 − β2^t) + eps), step_size = lr / (1 − β1^t). Flat arrays."""
    size = np.uint64(param.size)
    block = np.uint64(_BLOCK)
    for b in range(start, stop):
        first = np.uint64(b) * block
        for i in range(first, min(first + block, size)):
            g = grad[i] + decay * param[i]
            m = beta1 * exp_avg[i] + (1 - beta1) * g
            v = beta2 * exp_avg_sq[i] + (1 - beta2) * g * g
            exp_avg[i] = m
            exp_avg_sq[i] = v
            param[i] -= step_size * m / (math.sqrt(v) / bias2_root + eps)


def adam_step(param, grad, exp_avg, exp_avg_sq, beta1, beta2, lr, step, eps, decay):
    """Adam's step t = `step` in place on `param`, `exp_avg`, `exp_avg_sq` (C-contiguous arrays of one float
    dtype; a non-contiguous `param` is updated through a copy); `grad` of the same shape, any layout;
    `decay` is the L2 term λ (0 for none)."""
    dtype = param.dtype.type
    target = param if param.flags.c_contiguous else np.ascontiguousarray(param)
    grad = np.ascontiguousarray(grad, param.dtype).reshape(-1)
    _adam_step(target.reshape(-1), grad, exp_avg.reshape(-1), exp_avg_sq.reshape(-1), dtype(beta1), dtype(beta2),
               dtype(lr / (1 - beta1 ** step)), dtype(math.sqrt(1 - beta2 ** step)), dtype(eps), dtype(decay))
    if target is not param:
        param[...] = target
