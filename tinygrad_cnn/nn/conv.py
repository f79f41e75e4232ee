"""Conv2d and ConvTranspose2d."""
import numpy as np

from . import functional as F
from .linear import reset_weight_and_bias
from .module import Module, Parameter
from ..ops.kernels.geometry import pair
from ..tensor import Tensor


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) input with weight (out_channels, in_channels/groups, kH, kW).

    Initialised as PyTorch's: W ~ kaiming_uniform_(a=√5) and b ~ U(−1/√fan_in, 1/√fan_in), fan_in = C/groups·kH·kW.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True):
        super().__init__()
        _check_channels("Conv2d", in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size", "Conv2d"), pair(stride, "stride", "Conv2d")
        self.dilation = pair(dilation, "dilation", "Conv2d")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", "Conv2d")
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size), np.float32))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """PyTorch's: arguments at their defaults are left out."""
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class ConvTranspose2d(Module):
    """Transposed 2-D convolution (the adjoint of Conv2d, used to upsample) with weight
    (in_channels, out_channels/groups, kH, kW), as PyTorch's; initialised as PyTorch's, the fan computed from that
    layout (fan_in = out_channels/groups·kH·kW)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros"):
        super().__init__()
        _check_channels("ConvTranspose2d", in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        op = "ConvTranspose2d"
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size", op), pair(stride, "stride", op)
        self.padding, self.dilation = pair(padding, "padding", op), pair(dilation, "dilation", op)
        self.output_padding = pair(output_padding, "output_padding", op)
        self.weight = Parameter(np.zeros((in_channels, out_channels // groups, *self.kernel_size), np.float32))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1)), ("groups", 1)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text + (", bias=False" if self.bias is None else "")


def _check_channels(layer: str, in_channels, out_channels, groups) -> None:
    """Channel counts and groups are positive ints (a float such as out_planes / 4 is refused by name) and groups
    divides both channel counts."""
    given = {"in_channels": in_channels, "out_channels": out_channels, "groups": groups}
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in given.values()):
        raise TypeError(f"{layer}: in_channels, out_channels and groups must be positive ints, got "
                        + ", ".join(f"{k}={v!r}" for k, v in given.items()))
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                         f"divisible by groups ({groups})")
