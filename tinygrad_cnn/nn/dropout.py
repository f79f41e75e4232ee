"""Dropout and Dropout2d (`inplace=` accepted; the output is a new tensor either way)."""
from . import functional as F
from .module import Module
from ..tensor import Tensor


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1 − p); identity in eval."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: probability must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """In training, zero whole channels with probability p and scale the rest by 1/(1 − p); identity in eval."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training)
