"""Embedding: a lookup table of learned vectors, one row per index."""
import numpy as np

from . import functional as F, init
from .module import Module, Parameter
from ..autograd import no_grad


class Embedding(Module):
    """weight (num_embeddings, embedding_dim) ~ N(0, 1), as PyTorch's; the row at padding_idx starts at zero and
    receives no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int = None, max_norm: float = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None):
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), got "
                             f"{padding_idx}")
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise ValueError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        if _weight is not None:
            self.weight = Parameter(np.asarray(_weight.numpy() if hasattr(_weight, "numpy") else _weight))
        else:
            self.weight = Parameter(np.zeros((num_embeddings, embedding_dim), np.float32))
            init.normal_(self.weight)
            if self.padding_idx is not None:
                with no_grad():
                    self.weight[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int = None) -> "Embedding":
        """An Embedding holding a copy of the 2-D `embeddings`; frozen (no gradient) unless freeze=False."""
        rows, dim = embeddings.shape
        layer = cls(rows, dim, padding_idx, _weight=embeddings)
        layer.weight.requires_grad = not freeze
        return layer

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
