"""The optimizers' updates, each in one pass over memory: in NumPy, Adam made about ten passes and as many
temporaries, SGD four to six."""
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


def _in_place(param, grad, update):
    """update(flat param, flat C-ordered grad of param's dtype) on `param`, through a contiguous copy when `param`
    is not C-contiguous (written back after)."""
    target = param if param.flags.c_contiguous else np.ascontiguousarray(param)
    update(target.reshape(-1), np.ascontiguousarray(grad, param.dtype).reshape(-1))
    if target is not param:
        param[...] = target


def adam_step(param, grad, exp_avg, exp_avg_sq, beta1, beta2, lr, step, eps, decay):
    """Adam's step t = `step` in place on `param`, `exp_avg`, `exp_avg_sq` (C-contiguous arrays of one float
    dtype; a non-contiguous `param` is updated through a copy); `grad` of the same shape, any layout;
    `decay` is the L2 term λ (0 for none)."""
    dtype = param.dtype.type
    _in_place(param, grad, lambda p, g: _adam_step(
        p, g, exp_avg.reshape(-1), exp_avg_sq.reshape(-1), dtype(beta1), dtype(beta2),
        dtype(lr / (1 - beta1 ** step)), dtype(math.sqrt(1 - beta2 ** step)), dtype(eps), dtype(decay)))


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
    # without momentum the kernel never touches its buffer argument: param's own array stands in
    _in_place(param, grad, lambda p, g: _sgd_step(
        p, g, p if buffer is None else buffer.reshape(-1), dtype(lr), dtype(momentum), dtype(1 - dampening),
        dtype(decay), dtype(-1 if maximize else 1), nesterov, first))
