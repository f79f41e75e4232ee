"""Adam and AdamW (Adam with decoupled weight decay)."""
import numpy as np

from .optimizer import Optimizer
from ..ops.kernels.optimizer_steps import adam_step


class Adam(Optimizer):
    """PyTorch's update (Kingma & Ba, 2015), per parameter p with gradient g at step t (g ← −g under maximize):

        g ← g + λ·p                                  (weight_decay λ, L2 form; AdamW: p ← p·(1 − lr·λ) instead)
        m_t = β1·m_{t−1} + (1 − β1)·g
        v_t = β2·v_{t−1} + (1 − β2)·g²
        p ← p − lr/(1 − β1^t) · m_t / (√v_t / √(1 − β2^t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False):
        if amsgrad:
            raise ValueError(f"{type(self).__name__}: amsgrad=True is not supported")
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0, got lr={lr}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=False,
                                      maximize=maximize))

    def _update(self, param, grad, state, group):
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=np.zeros(param.shape, param.dtype),
                         exp_avg_sq=np.zeros(param.shape, param.dtype))
        for name in ("exp_avg", "exp_avg_sq"):  # loaded state may come in any layout; the kernel wants C order
            state[name] = np.ascontiguousarray(state[name], param.dtype)
            if state[name].shape != param.shape:  # the kernel walks all three arrays with one index
                raise ValueError(f"{type(self).__name__}.step: state {name!r} has shape {state[name].shape}, its "
                                 f"parameter {param.shape}")
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if decay and self.decoupled_weight_decay:
            param *= 1 - lr * decay
        l2 = decay if decay and not self.decoupled_weight_decay else 0.0
        param._modify("Adam.step", lambda p: adam_step(p, grad, state["exp_avg"], state["exp_avg_sq"], beta1, beta2,
                                                       lr, state["step"], group["eps"], l2))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): each step first shrinks p ← p·(1 − lr·λ),
    and the gradient is left without the L2 term."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
