"""tc.utils.data: datasets, samplers, random_split and the DataLoader, against index arithmetic done here."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler, Subset,
                                     SubsetRandomSampler, TensorDataset, default_collate, random_split)


def xy(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return x, np.arange(n, dtype=np.int64) % 4


class Squares(Dataset):
    """Sample i: (an array [i, i²] as float64, the int i, a string)."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float64), i, f"s{i}"


def test_tensor_dataset_indexes_every_tensor():
    x, y = xy()
    dataset = TensorDataset(tc.tensor(x), y)
    assert len(dataset) == 10
    sample = dataset[3]
    assert isinstance(sample, tuple) and all(isinstance(t, Tensor) for t in sample)
    np.testing.assert_array_equal(sample[0].numpy(), x[3])
    assert sample[1].item() == 3 and sample[1].dtype == np.int64
    with pytest.raises(ValueError, match=r"TensorDataset: all tensors need the same size.*\(10, 3\), \(9,\)"):
        TensorDataset(x, y[:9])


def test_loader_yields_tensor_batches_in_order_with_len_and_dataset():
    x, y = xy(10)
    dataset = TensorDataset(x, y)
    loader = DataLoader(dataset, batch_size=4)
    batches = list(loader)
    assert loader.dataset is dataset and len(loader) == 3 == len(batches) and len(loader.dataset) == 10
    for k, (bx, by) in enumerate(batches):
        assert isinstance(bx, Tensor) and isinstance(by, Tensor) and by.dtype == np.int64
        np.testing.assert_array_equal(bx.numpy(), x[4 * k:4 * k + 4])
        np.testing.assert_array_equal(by.numpy(), y[4 * k:4 * k + 4])
    assert [len(b[0]) for b in DataLoader(dataset, batch_size=4, drop_last=True)] == [4, 4]
    assert len(DataLoader(dataset, batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(dataset)) == 10  # batch_size defaults to 1


def test_shuffle_is_seeded_by_manual_seed_and_fresh_each_epoch():
    x, y = xy(12)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True)
    tc.manual_seed(7)
    first = np.concatenate([by.numpy() for _, by in loader])
    second = np.concatenate([bx.numpy()[:, 0] / 3 for bx, _ in loader]).astype(np.int64)
    expected = np.random.default_rng(7)  # the package generator after manual_seed(7): one permutation per epoch
    np.testing.assert_array_equal(first, y[expected.permutation(12)])
    np.testing.assert_array_equal(second, expected.permutation(12))
    own = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(np.concatenate([bx.numpy()[:, 0] / 3 for bx, _ in own]),
                                  np.random.default_rng(3).permutation(12))


def test_the_batched_fast_path_equals_collating_samples_and_workers_change_nothing():
    x, y = xy(11)
    dataset = TensorDataset(x, y)
    results = []
    for kwargs in (dict(), dict(collate_fn=lambda samples: default_collate(samples)), dict(num_workers=2)):
        tc.manual_seed(0)
        results.append([[t.numpy() for t in batch] for batch in DataLoader(dataset, batch_size=3, shuffle=True,
                                                                           **kwargs)])
    for other in results[1:]:
        assert len(other) == len(results[0])
        for a, b in zip(results[0], other):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
                assert u.dtype == v.dtype


def test_default_collate_keeps_the_structure_and_pytorchs_dtypes():
    arrays, ints, names = next(iter(DataLoader(Squares(), batch_size=3)))
    np.testing.assert_array_equal(arrays.numpy(), [[0, 0], [1, 1], [2, 4]])
    assert arrays.dtype == np.float64 and ints.dtype == np.int64 and names == ["s0", "s1", "s2"]
    assert default_collate([1.5, 2.0]).dtype == np.float64 and default_collate([True, False]).dtype == np.bool_
    batch = default_collate([{"a": tc.tensor(np.ones(2)), "b": 1}, {"a": tc.tensor(np.zeros(2)), "b": 2}])
    np.testing.assert_array_equal(batch["a"].numpy(), [[1, 1], [0, 0]])
    np.testing.assert_array_equal(batch["b"].numpy(), [1, 2])
    with pytest.raises(TypeError, match="default_collate: cannot batch samples of type object"):
        default_collate([object()])


def test_subset_concat_and_custom_collate():
    subset = Subset(Squares(), [5, 1])
    assert len(subset) == 2 and subset[0][1] == 5
    both = ConcatDataset([Squares(), subset])
    assert len(both) == 9 and both[7][1] == 5 and both[-1][1] == 1
    sums = list(DataLoader(Squares(), batch_size=4, collate_fn=lambda s: sum(i for _, i, _ in s)))
    assert sums == [0 + 1 + 2 + 3, 4 + 5 + 6]


def test_random_split_partitions_by_lengths_or_fractions_seeded():
    data = TensorDataset(np.arange(10))
    tc.manual_seed(5)
    parts = random_split(data, [3, 7])
    order = np.random.default_rng(5).permutation(10)
    assert [p.indices for p in parts] == [order[:3].tolist(), order[3:].tolist()]
    thirds = random_split(data, [1 / 3, 1 / 3, 1 / 3], generator=np.random.default_rng(0))
    assert [len(p) for p in thirds] == [4, 3, 3]  # ⌊10/3⌋ = 3 each; the one left over goes to the first part
    assert sorted(sum((p.indices for p in thirds), [])) == list(range(10))
    with pytest.raises(ValueError, match="random_split: lengths must be non-negative integers summing to .* 10"):
        random_split(data, [3, 3])


def test_samplers():
    tc.manual_seed(1)
    draws = list(RandomSampler(range(5), replacement=True, num_samples=8))
    assert draws == np.random.default_rng(1).integers(0, 5, 8).tolist()
    longer = list(RandomSampler(range(3), num_samples=5, generator=np.random.default_rng(2)))
    rng = np.random.default_rng(2)
    assert longer == np.concatenate([rng.permutation(3), rng.permutation(3)])[:5].tolist()
    assert sorted(SubsetRandomSampler([4, 8, 9])) == [4, 8, 9]
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    x, y = xy(6)
    loader = DataLoader(TensorDataset(x, y), batch_sampler=[[5, 0], [2]])
    assert [b[1].numpy().tolist() for b in loader] == [[y[5], y[0]], [y[2]]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "BatchSampler: batch_size must be a positive integer, got 0"),
    (dict(shuffle=True, sampler=[0, 1]), "sampler and shuffle=True are exclusive"),
    (dict(batch_sampler=[[0]], batch_size=4), "batch_sampler replaces"),
    (dict(num_workers=-1), "num_workers must be a non-negative integer, got -1"),
])
def test_loader_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(TensorDataset(np.zeros(4)), **kwargs)
