"""Datasets: anything with `__getitem__(i)` and `__len__`; TensorDataset over tensors, Subset, ConcatDataset,
and random_split."""
import bisect
import math

import numpy as np

from ...tensor import Tensor
from .sampler import permutation


class Dataset:
    """Base of map-style datasets: subclasses define `__getitem__(index)` and `__len__()`; `a + b` concatenates."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Sample i is the tuple (t[i] for t in tensors); all tensors share their first dimension. NumPy arrays are
    accepted and wrapped as Tensors."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else _keeping_dtype(np.asarray(t)) for t in tensors)
        if any(t.ndim == 0 for t in self.tensors) or len({t.shape[0] for t in self.tensors}) != 1:
            raise ValueError(f"TensorDataset: all tensors need the same size in their first dimension, got shapes "
                             f"{[t.shape for t in self.tensors]}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _batch(self, indices) -> tuple:
        """The batch of `indices` in one indexing per tensor: what stacking the samples would give."""
        index = np.asarray(indices, dtype=np.int64)
        return tuple(t[index] for t in self.tensors)


def _keeping_dtype(array: np.ndarray) -> Tensor:
    return Tensor(array, dtype=array.dtype)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: needs at least one dataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"ConcatDataset: index {index} is out of range for {len(self)} samples")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> list:
    """Split into non-overlapping Subsets of the given lengths, the indices shuffled by `generator` (default: the
    package generator, seeded by `tc.manual_seed`). Fractions summing to 1 are allowed: each part gets
    ⌊fraction·n⌋ samples and the remainder goes one each to the first parts, as PyTorch does."""
    n, lengths = len(dataset), list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) != n:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not float(k).is_integer() or k < 0 for k in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths must be non-negative integers summing to the dataset's size {n}, "
                         f"or fractions summing to 1; got {lengths}")
    order = permutation(n, generator).tolist()
    splits, start = [], 0
    for k in map(int, lengths):
        splits.append(Subset(dataset, order[start:start + k]))
        start += k
    return splits
