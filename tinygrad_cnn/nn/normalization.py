"""BatchNorm1d and BatchNorm2d, with PyTorch's parameters and buffers so state dicts exchange strictly."""
import numpy as np

from . import functional as F
from .module import Module, Parameter
from ..autograd import no_grad
from ..tensor import Tensor


class _BatchNorm(Module):
    """y = (x − μ) / √(σ² + eps) · weight + bias per channel.

    Training (or track_running_stats=False): μ, σ² are the batch's mean and biased variance, and the running
    statistics move towards the batch's, the variance unbiased: running ← (1 − m)·running + m·batch
    (m = momentum; momentum=None averages all batches so far, m = 1/num_batches_tracked). Evaluation: μ, σ²
    are the running statistics.
    """

    expected_ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self.expected_ndims or x.shape[1] != self.num_features:
            wanted = " or ".join(f"{n}-D" for n in self.expected_ndims)
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected {wanted} input with "
                             f"{self.num_features} channels on axis 1, got shape {x.shape}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked += 1
            if momentum is None:
                momentum = 1.0 / int(self.num_batches_tracked.item())
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats,
                            momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input over N (and L)."""

    expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input over N, H and W."""

    expected_ndims = (4,)
