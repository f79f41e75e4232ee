"""Dropout."""
from . import functional as F
from .module import Module
from ..tensor import Tensor


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1 − p); identity in eval."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
