"""Upsample: F.interpolate as a layer."""
from . import functional as F
from .module import Module
from ..tensor import Tensor


class Upsample(Module):
    """Resize to `size` or by `scale_factor` with mode 'nearest', 'nearest-exact', 'linear' or 'bilinear'."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool = None,
                 recompute_scale_factor: bool = None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self) -> str:
        shown = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{shown}, mode={self.mode!r}"
