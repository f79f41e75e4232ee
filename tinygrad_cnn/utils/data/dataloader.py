"""DataLoader: batches of a dataset's samples, collated into Tensors."""
import numbers

import numpy as np

from ...tensor import Tensor
from .dataset import TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler


def default_collate(batch):
    """Stack a list of samples into a batch, structure kept (PyTorch's rule): Tensors and arrays are stacked along
    a new first dimension; Python floats become a float64 Tensor, ints an int64 one, bools a bool one; tuples and lists are
    collated position by position (into a list), dicts key by key; strings stay a list."""
    first = batch[0]
    if isinstance(first, Tensor):
        return Tensor.stack(batch, 0)
    if isinstance(first, (np.ndarray, np.generic)):
        stacked = np.stack(batch)
        return Tensor(stacked, dtype=stacked.dtype)
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.asarray(batch), dtype=np.bool_)
    if isinstance(first, numbers.Integral):
        return Tensor(np.asarray(batch), dtype=np.int64)
    if isinstance(first, numbers.Real):
        return Tensor(np.asarray(batch), dtype=np.float64)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, dict):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        if len({len(sample) for sample in batch}) != 1:
            raise ValueError(f"default_collate: the samples of a batch must have the same number of fields, got "
                             f"{sorted({len(sample) for sample in batch})}")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; expected Tensors, "
                    "NumPy arrays, numbers, strings, or tuples/lists/dicts of them (or pass a collate_fn)")


class DataLoader:
    """Iterate over `dataset` in batches, as torch.utils.data.DataLoader (same arguments and defaults).

    The order comes from `sampler` (default: sequential, or a RandomSampler with `generator` when shuffle=True:
    a fresh order each epoch, drawn from the package generator unless a NumPy Generator is given, so
    `tc.manual_seed` fixes it). `batch_sampler` replaces batch_size/shuffle/sampler/drop_last. Each batch is
    `collate_fn(list of samples)`, by default `default_collate` (Tensors stacked; an (x, y) sample gives [x, y]).
    A TensorDataset with the default collate is indexed once per batch instead of once per sample (same result).

    num_workers, pin_memory, timeout, worker_init_fn, prefetch_factor and persistent_workers are accepted for
    compatibility; every batch is loaded in the main process, in order, so the results equal num_workers=0.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn=None, pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, generator=None, *, prefetch_factor=None, persistent_workers: bool = False):
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are exclusive (the sampler decides the order)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler replaces batch_size, shuffle, sampler and drop_last; "
                             "give either it or them")
        if batch_sampler is None:
            if batch_size is None:
                raise ValueError("DataLoader: batch_size=None (unbatched loading) is not supported; give an int")
            if sampler is None:
                sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.num_workers = sampler, batch_sampler, int(num_workers)
        self.generator, self.pin_memory, self.timeout = generator, pin_memory, timeout
        self.collate_fn = default_collate if collate_fn is None else collate_fn

    def __iter__(self):
        by_batch = isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate
        for indices in self.batch_sampler:
            if by_batch:
                yield list(self.dataset._batch(indices))
            else:
                yield self.collate_fn([self.dataset[i] for i in indices])

    def __len__(self) -> int:
        """The number of batches per epoch."""
        return len(self.batch_sampler)
