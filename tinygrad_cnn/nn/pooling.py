"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and AdaptiveMaxPool2d. Arguments are kept as given, as PyTorch's; stride defaults to
the kernel size."""
from . import functional as F
from .module import Module
from ..tensor import Tensor


class _Pool2d(Module):
    function = None  # the functional form: F.max_pool2d or F.avg_pool2d

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """The maximum of each kernel_size window (zero padding never wins: padded cells are −∞)."""

    function = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """The mean of each kernel_size window; padded zeros count towards the mean, as PyTorch's default."""

    function = staticmethod(F.avg_pool2d)


class AdaptiveAvgPool2d(Module):
    """Average over bins chosen so that the output is output_size (an int or (H, W)) for any input size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Maximum over the same bins as AdaptiveAvgPool2d."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)
