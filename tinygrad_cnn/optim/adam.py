"""Adam and AdamW (Adam with decoupled weight decay)."""
import math

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """PyTorch's update (Kingma & Ba, 2015), per parameter p with gradient g at step t:

        g ← g + λ·p                                  (weight_decay λ, L2 form; AdamW: p ← p·(1 − lr·λ) instead)
        m_t = β1·m_{t−1} + (1 − β1)·g
        v_t = β2·v_{t−1} + (1 − β2)·g²
        p ← p − lr/(1 − β1^t) · m_t / (√v_t / √(1 − β2^t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0, got lr={lr}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, param, grad, state, group):
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param.data), exp_avg_sq=np.zeros_like(param.data))
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if decay and self.decoupled_weight_decay:
            param *= 1 - lr * decay
        elif decay:
            grad = grad + decay * param.data
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        denominator = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step) + group["eps"]
        param -= (lr / (1 - beta1 ** step)) * exp_avg / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): each step first shrinks p ← p·(1 − lr·λ),
    and the gradient is left without the L2 term."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
