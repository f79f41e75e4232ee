"""Samplers: iterables over dataset indices (SequentialSampler, RandomSampler, SubsetRandomSampler), and
BatchSampler, which groups any sampler's indices into lists."""
import numbers

import numpy as np

from ...rng import generator as package_generator


def permutation(n: int, generator=None) -> np.ndarray:
    """A random order of range(n) from `generator` (a NumPy Generator), else from the package generator at call
    time, so `tc.manual_seed` decides it."""
    return (generator if generator is not None else package_generator()).permutation(n)


class Sampler:
    """Base: an iterable over indices, with `__len__` when its length is known."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, …, len(data_source) − 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random order of the indices on every pass; with replacement, num_samples independent draws."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int = None, generator=None):
        if num_samples is not None and (not isinstance(num_samples, numbers.Integral) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        source = self.generator if self.generator is not None else package_generator()
        if self.replacement:
            return iter(source.integers(0, n, self.num_samples).tolist())
        passes = -(-self.num_samples // n) if n else 0
        order = np.concatenate([source.permutation(n) for _ in range(passes)] or [np.zeros(0, np.int64)])
        return iter(order[:self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a fresh random order on every pass."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        return iter([self.indices[i] for i in permutation(len(self.indices), self.generator)])

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Lists of `batch_size` consecutive indices from `sampler`; the last shorter one unless drop_last."""

    def __init__(self, sampler, batch_size: int, drop_last: bool = False):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"BatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        count, remainder = divmod(len(self.sampler), self.batch_size)
        return count + (1 if remainder and not self.drop_last else 0)
