"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay."""
import numpy as np

from .optimizer import Optimizer
from ..ops.kernels.optimizer_steps import sgd_step


class SGD(Optimizer):
    """PyTorch's update, per parameter p with gradient g at step t (g ← −g first under maximize):

        g ← g + λ·p                                  (weight_decay λ)
        b_1 = g;  b_t = μ·b_{t−1} + (1 − τ)·g        (momentum μ, dampening τ)
        g ← g + μ·b_t if nesterov else b_t
        p ← p − lr·g
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _update(self, param, grad, state, group):
        momentum, buffer, first = group["momentum"], None, False
        if momentum:
            buffer = state.get("momentum_buffer")
            first = buffer is None
            # a loaded buffer may come in any layout; the kernel wants C order
            buffer = np.empty(param.shape, param.dtype) if first else np.ascontiguousarray(buffer, param.dtype)
            if buffer.shape != param.shape:  # the kernel walks both arrays with one index
                raise ValueError(f"SGD.step: state 'momentum_buffer' has shape {buffer.shape}, its parameter "
                                 f"{param.shape}")
            state["momentum_buffer"] = buffer
        param._modify("SGD.step", lambda p: sgd_step(p, grad, buffer, group["lr"], momentum, group["dampening"],
                                                     group["weight_decay"], group["maximize"], group["nesterov"],
                                                     first))
