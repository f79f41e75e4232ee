"""Optimizers that scale each coordinate's step by a running measure of its gradients' size: RMSprop, Adagrad
and Adadelta, with PyTorch's options, defaults and state names. The updates are a few NumPy expressions on
the parameter's array; they run under `no_grad` (see `Optimizer.step`)."""
import numpy as np

from .optimizer import Optimizer


def _check_non_negative(name: str, **values) -> None:
    for key, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name}: {key} must be >= 0, got {value}")


def _direction(param: np.ndarray, grad: np.ndarray, group: dict) -> np.ndarray:
    """The gradient the update uses: negated under maximize, plus the L2 term λ·p (weight_decay λ)."""
    grad = -grad if group["maximize"] else grad
    return grad + group["weight_decay"] * param if group["weight_decay"] else grad


def _zeros(param: np.ndarray) -> np.ndarray:
    return np.zeros(param.shape, param.dtype)


class RMSprop(Optimizer):
    """PyTorch's RMSprop (Hinton's lecture 6e; centered form from Graves, 2013), per parameter p, gradient g:

        v ← α·v + (1 − α)·g²                         (square_avg)
        centered: ḡ ← α·ḡ + (1 − α)·g, ṽ = v − ḡ²    (grad_avg), else ṽ = v
        momentum μ > 0: b ← μ·b + g / (√ṽ + eps), p ← p − lr·b     (momentum_buffer)
        else:           p ← p − lr·g / (√ṽ + eps)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, maximize: bool = False):
        _check_non_negative("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _update(self, param, grad, state, group):
        p = param.numpy()
        g = _direction(p, grad, group)
        alpha = group["alpha"]
        if not state:
            state.update(step=0, square_avg=_zeros(p))
        state["step"] += 1
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            g_avg = state.setdefault("grad_avg", _zeros(p))
            g_avg *= alpha
            g_avg += (1 - alpha) * g
            denominator = np.sqrt(v - g_avg * g_avg) + group["eps"]
        else:
            denominator = np.sqrt(v) + group["eps"]
        if group["momentum"] > 0:
            buffer = state.setdefault("momentum_buffer", _zeros(p))
            buffer *= group["momentum"]
            buffer += g / denominator
            step = buffer
        else:
            step = g / denominator
        param._modify("RMSprop.step", lambda a: np.subtract(a, group["lr"] * step, out=a, casting="unsafe"))


class Adagrad(Optimizer):
    """PyTorch's Adagrad (Duchi et al., 2011), per parameter p with gradient g at step t:

        lr_t = lr / (1 + (t − 1)·lr_decay)
        s ← s + g²                                   (sum, starting at initial_accumulator_value)
        p ← p − lr_t · g / (√s + eps)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False):
        _check_non_negative("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                            initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))
        for group in self.param_groups:  # as PyTorch, the accumulators exist (and are saved) before any step
            for param in group["params"]:
                self.state[param] = self._initial_state(param, group)

    @staticmethod
    def _initial_state(param, group) -> dict:
        return dict(step=0, sum=np.full(param.shape, group["initial_accumulator_value"], param.dtype))

    def _update(self, param, grad, state, group):
        p = param.numpy()
        g = _direction(p, grad, group)
        if not state:  # a group added after construction
            state.update(self._initial_state(param, group))
        state["step"] += 1
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        step = lr * g / (np.sqrt(state["sum"]) + group["eps"])
        param._modify("Adagrad.step", lambda a: np.subtract(a, step, out=a, casting="unsafe"))


class Adadelta(Optimizer):
    """PyTorch's Adadelta (Zeiler, 2012), per parameter p with gradient g:

        v ← ρ·v + (1 − ρ)·g²                         (square_avg)
        Δ = √(u + eps) / √(v + eps) · g
        u ← ρ·u + (1 − ρ)·Δ²                         (acc_delta)
        p ← p − lr·Δ
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 maximize: bool = False):
        _check_non_negative("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0 <= rho <= 1:
            raise ValueError(f"Adadelta: rho must lie in [0, 1], got {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _update(self, param, grad, state, group):
        p = param.numpy()
        g = _direction(p, grad, group)
        rho, eps = group["rho"], group["eps"]
        if not state:
            state.update(step=0, square_avg=_zeros(p), acc_delta=_zeros(p))
        state["step"] += 1
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        param._modify("Adadelta.step", lambda a: np.subtract(a, group["lr"] * delta, out=a, casting="unsafe"))
