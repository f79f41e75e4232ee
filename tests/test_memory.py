"""Memory: backward frees the graph and what it saved, no_grad records nothing, nothing needs the cycle collector,
and a long training run of the MNIST `cnn` does not grow."""
import gc
import os
import sys
import weakref

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.runtime import get_blas_num_threads

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "mnist"))
from models import cnn  # noqa: E402


@pytest.fixture
def no_cycle_collector():
    """Everything below must be freed by reference counting alone: a reference cycle would keep a whole graph
    (and its saved arrays) alive until the cycle collector happens to run."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def build(rng, requires_grad=True):
    """A small conv net's forward by hand. Returns the loss, the parameters, and weak references to every
    intermediate Tensor and to every array the ops saved for backward (the max-pool's winner indices, kept on ctx,
    included; the parameters' own arrays, which the caller keeps, left out)."""
    x = tc.tensor(rng.standard_normal((2, 1, 8, 8)), dtype=np.float32)
    weight = tc.tensor(rng.standard_normal((3, 1, 3, 3)), dtype=np.float32, requires_grad=requires_grad)
    dense = tc.tensor(rng.standard_normal((75, 4)), dtype=np.float32, requires_grad=requires_grad)
    conv = F.conv2d(x, weight, padding=1)
    pooled = F.max_pool2d(conv.relu(), 2, stride=2, padding=1)
    logits = pooled.reshape(2, -1) @ dense
    loss = F.cross_entropy(logits.tanh() * 3, np.array([1, 3]))
    intermediates = [conv, pooled, logits]
    saved = [array for t in intermediates + [loss] if t._node is not None
             for array in list(t._node.ctx._saved) + list(vars(t._node.ctx).values())
             if isinstance(array, np.ndarray) and not any(array is p.numpy() for p in (weight, dense))]
    return loss, (weight, dense), [weakref.ref(t) for t in intermediates], [weakref.ref(a) for a in saved]


def test_backward_frees_intermediates_and_saved_arrays(no_cycle_collector):
    rng = np.random.default_rng(0)
    loss, params, tensors, arrays = build(rng)
    assert len(arrays) >= 4 and all(r() is not None for r in tensors + arrays)  # the loss holds the whole graph
    loss.backward()
    assert all(r() is None for r in tensors), "an intermediate Tensor outlived backward"
    assert all(r() is None for r in arrays), "an array saved for backward outlived backward"
    assert all(p.grad is not None for p in params)


def test_retain_graph_keeps_it_until_the_loss_goes(no_cycle_collector):
    loss, _, tensors, arrays = build(np.random.default_rng(1))
    loss.backward(retain_graph=True)
    assert all(r() is not None for r in tensors + arrays)
    loss.backward()  # a second pass through the retained graph, then it is released
    assert all(r() is None for r in tensors + arrays)


def test_dropping_the_loss_without_backward_frees_the_graph(no_cycle_collector):
    loss, _, tensors, arrays = build(np.random.default_rng(2))
    del loss
    assert all(r() is None for r in tensors + arrays)


def test_tensors_made_under_no_grad_hold_no_graph(no_cycle_collector):
    rng = np.random.default_rng(3)
    weight = tc.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    x = tc.tensor(rng.standard_normal((5, 3)))
    with tc.no_grad():
        hidden = x @ weight.T
        out = (hidden.relu() * 2).sum(axis=1)
    assert out._node is None and hidden._node is None and not out.requires_grad
    inputs = weakref.ref(x), weakref.ref(hidden)
    del x, hidden
    assert all(r() is None for r in inputs), "a no_grad result kept its inputs alive"

    loss, _, tensors, arrays = build(rng, requires_grad=False)  # nothing requires grad: no graph either
    assert loss._node is None and all(r() is None for r in tensors + arrays)


def test_a_graph_with_a_tensor_used_twice_is_freed_without_the_cycle_collector(no_cycle_collector):
    x = tc.tensor(np.random.default_rng(4).standard_normal(6), requires_grad=True)
    shared = x.exp()
    loss = (shared * shared + shared.sum()).sum()
    reference = weakref.ref(shared)
    del shared
    loss.backward()
    assert reference() is None


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def one_thread():
    """One kernel and BLAS thread: memory does not depend on it, and on a busy machine two BLAS threads waiting
    for each other made the 8×9216 @ 9216×128 product of `cnn` up to 200× slower."""
    kernel_threads, blas_threads = tc.get_num_threads(), get_blas_num_threads()
    tc.set_num_threads(1)
    yield
    tc.set_num_threads(blas_threads or kernel_threads)  # sets both: BLAS's count back,
    tc.set_num_threads(kernel_threads)                  # then the kernels' own


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc (Linux)")
def test_300_training_steps_of_the_mnist_cnn_do_not_grow_resident_memory(one_thread):
    """Batch 8 through conv, pool, dropout, linear and Adam: after 20 warm-up steps (kernels compiled, workspaces
    and optimizer state allocated) resident memory grows by less than 50 MB over the remaining 280 steps."""
    tc.manual_seed(0)
    model = cnn()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    losses = []
    for step in range(300):
        if step == 20:
            gc.collect()
            baseline = resident_bytes()
        batch = slice(8 * (step % 8), 8 * (step % 8) + 8)
        loss = F.cross_entropy(model(tc.tensor(images[batch])), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    gc.collect()
    growth = resident_bytes() - baseline
    assert growth < 50 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MB over 280 steps"
    assert np.isfinite(losses).all() and np.mean(losses[-20:]) < np.mean(losses[:20])  # it did train
