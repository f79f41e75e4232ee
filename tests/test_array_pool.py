"""runtime.array_pool: the ops' large results reuse the memory of freed ones, and autograd treats them as any array."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.runtime import array_pool as pool

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LARGE = (8, 16, 32, 32)  # 512 KiB of float32, above POOLED_BYTES


@pytest.fixture
def fresh_pool(monkeypatch):
    """An empty pool of its own for one test, so blocks other tests freed do not count."""
    own = pool._Pool()
    monkeypatch.setattr(pool, "pool", own)
    return own


@pytest.mark.parametrize("shape, dtype", [(LARGE, np.float32), ((300, 301), np.float64), ((1 << 16,), np.int32),
                                          (5, np.float32), ((2, 3), np.float64)])
def test_empty_is_a_writable_c_contiguous_array_of_the_shape_and_dtype(shape, dtype, fresh_pool):
    a = pool.empty(shape, dtype)
    assert a.shape == ((shape,) if isinstance(shape, int) else shape) and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable
    a[...] = 7
    assert (a == 7).all()
    if a.nbytes >= pool.POOLED_BYTES:
        assert a.ctypes.data % pool.ALIGNMENT == 0
    else:
        assert a.base is None and fresh_pool.cached == 0, "small arrays are NumPy's own"


def test_a_freed_array_s_memory_serves_the_next_one_of_its_size(fresh_pool):
    a = pool.empty(LARGE, np.float32)
    address = a.ctypes.data
    del a
    assert fresh_pool.cached == np.prod(LARGE) * 4
    b = pool.empty(LARGE, np.float32)
    assert b.ctypes.data == address and fresh_pool.cached == 0


def test_a_view_keeps_the_memory_from_being_handed_out_again(fresh_pool):
    a = pool.empty(LARGE, np.float32)
    a[...] = 1.5
    view = a.reshape(-1)[100:]
    del a
    assert fresh_pool.cached == 0
    b = pool.empty(LARGE, np.float32)
    b[...] = -2.0
    assert (view == 1.5).all()
    del view
    assert fresh_pool.cached == np.prod(LARGE) * 4


def test_the_pool_keeps_at_most_its_capacity_dropping_the_oldest_first(fresh_pool):
    fresh_pool.capacity = 3 << 20
    arrays = [pool.empty((1 << 18,), np.float32) for _ in range(5)]  # 1 MiB each
    addresses = [a.ctypes.data for a in arrays]
    while arrays:
        arrays.pop(0)  # freed in order of allocation
    assert fresh_pool.cached == 3 << 20
    again = [pool.empty((1 << 18,), np.float32) for _ in range(3)]
    assert {a.ctypes.data for a in again} == set(addresses[2:])


def test_empty_cache_frees_the_pooled_memory(fresh_pool):
    pool.empty(LARGE, np.float32)  # freed at once
    assert fresh_pool.cached > 0
    tc.runtime.empty_cache()
    assert fresh_pool.cached == 0


@pytest.mark.parametrize("change", [
    lambda y: y.detach().fill_(0.0),
    lambda y: y.reshape(-1)[:5].zero_(),
    lambda y: y[0].fill_(0.0),
], ids=["through-detach", "through-reshape", "through-slice"])
def test_a_pooled_saved_output_changed_in_place_through_a_view_is_caught(change):
    """ReLU saves its (pooled) output; a view's base is that array, whose base is the lease: one owner still."""
    x = tc.randn(*LARGE, requires_grad=True)
    y = F.relu(x)
    assert y.numpy().nbytes >= pool.POOLED_BYTES
    with tc.no_grad():
        change(y)
    with pytest.raises(RuntimeError, match="ReLU.*modified in place"):
        y.sum().backward()


STEPS_FAULTS = """
import resource, numpy as np, tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                      nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 16 * 16, 10))
optimizer = tc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = tc.randn(32, 3, 32, 32), np.arange(32) % 10
def step():
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator is the one measured")
def test_training_steps_after_the_first_fault_in_almost_no_memory():
    """Each 2 MiB activation freed and made again would fault in 512 pages a step (about 6,000 here) on glibc's
    defaults; from the pool, none. A fresh process: other tests' heap does not count."""
    result = subprocess.run([sys.executable, "-c", STEPS_FAULTS], cwd=ROOT, capture_output=True, text=True,
                            check=True, timeout=600)
    assert int(result.stdout.split()[-1]) < 300


class _PooledGradient(tc.Function):
    """y = 2x whose backward returns a pooled array: alone, or while ctx keeps a view of it."""

    returned_ids = []

    @staticmethod
    def forward(ctx, x, keep_view):
        ctx.keep_view = keep_view
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        fresh = pool.empty(grad.shape, grad.dtype)
        np.multiply(grad, 2, out=fresh)
        if ctx.keep_view:
            ctx.view = fresh.reshape(-1)
        _PooledGradient.returned_ids.append(id(fresh))
        return fresh, None


def test_a_leaf_keeps_a_pooled_gradient_without_copying_it_unless_a_view_of_it_lives():
    upstream = np.random.default_rng(1).standard_normal(LARGE).astype(np.float32)
    alone, viewed = (tc.tensor(np.ones(LARGE, np.float32), requires_grad=True) for _ in range(2))
    _PooledGradient.apply(alone, False).backward(upstream)
    assert id(alone.grad.numpy()) == _PooledGradient.returned_ids[-1]
    _PooledGradient.apply(viewed, True).backward(upstream)
    assert id(viewed.grad.numpy()) != _PooledGradient.returned_ids[-1]
    for leaf in (alone, viewed):
        np.testing.assert_array_equal(leaf.grad.numpy(), 2 * upstream)
