"""Losses with PyTorch's signatures; every one takes `reduction` in {'mean', 'sum', 'none'} (kl_div also
'batchmean'). Class-index targets may be int arrays or int Tensors; other targets Tensors or arrays."""
import numpy as np

from ..ops.loss import BinaryCrossEntropyWithLogits, CrossEntropy, check_class_targets, class_axis
from ..tensor import Tensor, where


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _array(value) -> np.ndarray:
    return np.asarray(value.numpy() if isinstance(value, Tensor) else value)


def check_deprecated(op: str, size_average, reduce) -> None:
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated in PyTorch and not supported; use reduction=")


def _paired(op: str, input: Tensor, target):
    """target as a Tensor of input's dtype, after checking both have one shape."""
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating Tensor, got "
                        f"{f'dtype {input.dtype}' if isinstance(input, Tensor) else type(input).__name__}")
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=input.dtype)
    if input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} must be equal")
    return target


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """(input − target)², reduced."""
    check_deprecated("mse_loss", size_average, reduce)
    diff = input - _paired("mse_loss", input, target)
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """|input − target|, reduced."""
    check_deprecated("l1_loss", size_average, reduce)
    return _reduce((input - _paired("l1_loss", input, target)).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """½d²/β where |d| < β, else |d| − ½β (d = input − target; β = 0 is the L1 loss), reduced."""
    check_deprecated("smooth_l1_loss", size_average, reduce)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    size = (input - _paired("smooth_l1_loss", input, target)).abs()
    if beta == 0:
        return _reduce(size, reduction, "smooth_l1_loss")
    return _reduce(where(size.numpy() < beta, 0.5 * size * size / beta, size - 0.5 * beta), reduction,
                   "smooth_l1_loss")


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| < δ, else δ·(|d| − ½δ) (d = input − target), reduced."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    size = (input - _paired("huber_loss", input, target)).abs()
    return _reduce(where(size.numpy() < delta, 0.5 * size * size, delta * (size - 0.5 * delta)), reduction,
                   "huber_loss")


def binary_cross_entropy(input: Tensor, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """−w·[y·log x + (1 − y)·log(1 − x)] for probabilities x in [0, 1], each log clamped at −100 as PyTorch's
    (so x = 0 or 1 gives a finite loss), reduced."""
    op = "binary_cross_entropy"
    check_deprecated(op, size_average, reduce)
    target = _paired(op, input, target)
    values = input.numpy()
    if values.size and not (values.min() >= 0 and values.max() <= 1):
        raise ValueError(f"{op}: input must hold probabilities in [0, 1], got values from {values.min()} to "
                         f"{values.max()}")
    with np.errstate(divide="ignore"):  # log 0 = −inf, clamped below
        loss = -(target * input.log().clip(-100.0, None) + (1 - target) * (1 - input).log().clip(-100.0, None))
    if weight is not None:
        loss = loss * (weight if isinstance(weight, Tensor) else Tensor(np.asarray(weight), dtype=input.dtype))
    return _reduce(loss, reduction, op)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """−[y·log σ(x) + (1 − y)·log(1 − σ(x))] computed stably from the logits x, times weight, reduced."""
    op = "binary_cross_entropy_with_logits"
    check_deprecated(op, size_average, reduce)
    if pos_weight is not None:
        raise ValueError(f"{op}: pos_weight is not supported")
    loss = BinaryCrossEntropyWithLogits.apply(input, _paired(op, input, target))
    if weight is not None:
        loss = loss * (weight if isinstance(weight, Tensor) else Tensor(np.asarray(weight), dtype=input.dtype))
    return _reduce(loss, reduction, op)


def kl_div(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Pointwise KL divergence of target from the distribution whose log-probabilities are `input`:
    y·(log y − input), 0 where y = 0 (with log_target, target is log y: e^t·(t − input)). 'batchmean' divides
    the sum by the batch size (the true KL per sample); 'mean', as PyTorch's, by the number of elements."""
    op = "kl_div"
    check_deprecated(op, size_average, reduce)
    target = _paired(op, input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target.numpy() > 0
        safe_log = where(positive, target, Tensor(np.ones(()), dtype=input.dtype)).log()
        loss = where(positive, target * (safe_log - input), Tensor(np.zeros(()), dtype=input.dtype))
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, op)


# ---- class scores -----------------------------------------------------------------------------
def _class_weight(op: str, weight, classes: int, dtype):
    if weight is None:
        return None
    weight = _array(weight).astype(dtype)
    if weight.shape != (classes,):
        raise ValueError(f"{op}: weight must hold one value per class, shape ({classes},), got {weight.shape}")
    return weight


def _picked(op: str, scores: Tensor, target: np.ndarray, ignore_index: int):
    """(−scores at each target class, the mask of targets not ignored, the targets with ignored ones as 0)."""
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    try:
        check_class_targets(op, scores.shape, safe)
    except ValueError as error:
        raise ValueError(f"{error} (ignore_index={ignore_index})") from None
    axis = class_axis(scores.ndim)
    grids = np.indices(safe.shape, sparse=True)
    index = tuple(grids[:axis]) + (safe,) + tuple(grids[axis:])
    return -scores[index], valid, safe


def _weighted_mean(op, loss: Tensor, per_item: np.ndarray, reduction: str) -> Tensor:
    """loss · per_item (weights, 0 where ignored); 'mean' divides the sum by Σ per_item, as PyTorch's."""
    loss = loss * Tensor(per_item, dtype=loss.dtype)
    if reduction == "mean":
        return loss.sum() / float(per_item.sum())
    return _reduce(loss, reduction, op)


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """−w[t]·input[i, t_i] for log-probabilities of shape (N, C) or (N, C, d1, ...); targets equal to
    ignore_index count nothing; 'mean' divides by the sum of the weights of the targets counted."""
    op = "nll_loss"
    check_deprecated(op, size_average, reduce)
    target = _array(target)
    picked, valid, safe = _picked(op, input, target, ignore_index)
    weight = _class_weight(op, weight, input.shape[class_axis(input.ndim)], input.dtype)
    per_item = valid * (1.0 if weight is None else weight[safe])
    if weight is None and valid.all():
        return _reduce(picked, reduction, op)
    return _weighted_mean(op, picked, per_item, reduction)


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """−Σ_c w_c·q_c·log softmax(input)_c for logits of shape (N, C) or (N, C, d1, ...).

    Class-index targets: q is one-hot at t (with label_smoothing ε: (1 − ε)·onehot + ε/C); targets equal to
    ignore_index count nothing, and 'mean' divides by the summed weights w[t] of the targets counted.
    Probability targets (floats, input's shape): q is the target (smoothed likewise); 'mean' divides by N·d1….
    Without weight and ignored targets this is one fused, stable Function."""
    op = "cross_entropy"
    check_deprecated(op, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating Tensor of logits, got "
                        f"{f'dtype {input.dtype}' if isinstance(input, Tensor) else type(input).__name__}")
    if input.ndim == 0:
        raise ValueError(f"{op}: expected logits of shape (C,), (N, C) or (N, C, d1, ...), got a 0-d Tensor")
    target_array = _array(target)
    axis = class_axis(input.ndim)
    classes = input.shape[axis]
    weight = _class_weight(op, weight, classes, input.dtype)
    if target_array.dtype.kind == "f" and target_array.shape == input.shape:
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing, axis)
    if weight is None and not (target_array == ignore_index).any():
        return _reduce(CrossEntropy.apply(input, target_array, float(label_smoothing)), reduction, op)
    log_probs = input.log_softmax(axis)
    nll, valid, safe = _picked(op, log_probs, target_array, ignore_index)
    per_item = valid * (1.0 if weight is None else weight[safe])
    loss = _weighted_mean(op, nll, per_item, reduction)
    if not label_smoothing:
        return loss
    w = np.ones(classes, input.dtype) if weight is None else weight
    shape = (1,) * axis + (classes,) + (1,) * (input.ndim - axis - 1)
    smooth = -(log_probs * Tensor(w.reshape(shape), dtype=input.dtype)).sum(axis) * Tensor(valid, dtype=input.dtype)
    smooth = smooth.sum() / float(per_item.sum()) if reduction == "mean" else _reduce(smooth, reduction, op)
    return (1 - label_smoothing) * loss + (label_smoothing / classes) * smooth


def _soft_cross_entropy(input, target, weight, reduction, label_smoothing, axis):
    op = "cross_entropy"
    target = _paired(op, input, target)
    classes = input.shape[axis]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = input.log_softmax(axis) * target
    if weight is not None:
        shape = (1,) * axis + (classes,) + (1,) * (input.ndim - axis - 1)
        terms = terms * Tensor(weight.reshape(shape), dtype=input.dtype)
    return _reduce(-terms.sum(axis), reduction, op)
