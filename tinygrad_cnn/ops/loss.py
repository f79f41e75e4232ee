"""Loss Functions fused for numerical stability: cross-entropy on logits and binary cross-entropy on logits.

Both return the unreduced loss (one value per sample); `nn.functional` applies the reduction.
"""
import numpy as np

from ..autograd import Function
from .reduce import log_softmax_array


def class_axis(ndim: int) -> int:
    """The class axis of logits: 1 for (N, C, d1, ...), 0 for a single sample of shape (C,)."""
    return 1 if ndim >= 2 else 0


def check_class_targets(op: str, scores_shape: tuple, target: np.ndarray) -> None:
    """Raise unless `target` holds integer class indices in [0, C) with the scores' shape minus the class axis."""
    if len(scores_shape) == 0:
        raise ValueError(f"{op}: expected scores of shape (N, C) or (N, C, d1, ...), got a 0-d array")
    axis = class_axis(len(scores_shape))
    expected = scores_shape[:axis] + scores_shape[axis + 1:]
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != expected:
        raise ValueError(f"{op}: scores of shape {scores_shape} need a target of shape {expected}, "
                         f"got {target.shape}")
    classes = scores_shape[axis]
    if classes == 0:
        raise ValueError(f"{op}: scores of shape {scores_shape} have no classes (axis {axis} is empty)")
    if target.size and (target.min() < 0 or target.max() >= classes):
        raise ValueError(f"{op}: target values must lie in [0, {classes}), got values from "
                         f"{target.min()} to {target.max()}")


class CrossEntropy(Function):
    """loss_i = −Σ_c q_ic · log softmax(z_i)_c with q_i = (1 − ε)·onehot(t_i) + ε/C (label smoothing ε).

    Forward takes the stable log-softmax of ops.reduce. Backward: dL/dz_i = (softmax(z_i) − q_i) · g_i.
    """

    @staticmethod
    def forward(ctx, logits, target, label_smoothing):
        if logits.dtype.kind != "f":
            raise TypeError(f"cross_entropy: logits must be float32 or float64, got {logits.dtype}")
        target = np.asarray(target)
        check_class_targets("cross_entropy", logits.shape, target)
        axis = class_axis(logits.ndim)
        z = np.moveaxis(logits, axis, -1)  # (..., C)
        log_probs = log_softmax_array(z, -1)
        nll = -np.take_along_axis(log_probs, target[..., None].astype(np.intp), -1)[..., 0]
        loss = nll if label_smoothing == 0 else \
            (1 - label_smoothing) * nll - label_smoothing * log_probs.mean(axis=-1)
        ctx.save_for_backward(log_probs)
        ctx.target, ctx.label_smoothing, ctx.axis = target, label_smoothing, axis
        return np.asarray(loss, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        (log_probs,) = ctx.saved_tensors
        smoothing = ctx.label_smoothing
        grad_z = np.exp(log_probs)  # softmax
        if smoothing:
            grad_z -= smoothing / log_probs.shape[-1]
        index = ctx.target[..., None].astype(np.intp)
        np.put_along_axis(grad_z, index, np.take_along_axis(grad_z, index, -1) - (1 - smoothing), -1)
        grad_z *= grad[..., None]
        return np.moveaxis(grad_z, -1, ctx.axis), None, None


class BinaryCrossEntropyWithLogits(Function):
    """loss = −[y·log σ(x) + (1 − y)·log(1 − σ(x))] = max(x, 0) − x·y + log(1 + e^−|x|), stable for any x.

    Backward: dL/dx = (σ(x) − y) · g and dL/dy = −x · g.
    """

    @staticmethod
    def forward(ctx, logits, target):
        if np.shape(logits) != np.shape(target):
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {np.shape(target)} must equal "
                             f"the logits' shape {np.shape(logits)}")
        target = np.asarray(target, dtype=logits.dtype)
        ctx.save_for_backward(logits, target)
        return np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        e = np.exp(-np.abs(logits))
        sigmoid = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
        grad_logits = (sigmoid - target) * grad if ctx.needs_input_grad[0] else None
        grad_target = -logits * grad if ctx.needs_input_grad[1] else None
        return grad_logits, grad_target
