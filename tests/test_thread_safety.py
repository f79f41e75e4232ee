"""Several Python threads using the framework at once: one launch at a time has the kernels' workers, and a
launch meanwhile runs on its own thread. The case runs in a subprocess because a regression (a deadlock, a
crash) would take the interpreter with it, not just a test."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

WORKERS = """
import sys, threading
import numpy as np
import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.runtime import parallel_kernel

def train(seed, steps=6):
    '''conv, max-pool, avg-pool, adaptive pool, linear and Adam: every kind of kernel, forward and backward.'''
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, stride=2),
                          nn.AvgPool2d(2, stride=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    for i, p in enumerate(model.parameters()):
        p.numpy()[...] = np.random.default_rng(i).standard_normal(p.shape) * 0.3
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(model(tc.tensor(rng.standard_normal((8, 3, 16, 16)), dtype=np.float32)),
                               rng.integers(0, 4, 8))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.concatenate([p.numpy().ravel() for p in model.parameters()])

serial = [train(seed) for seed in range(4)]
results, errors = {}, []
def worker(seed):
    try:
        results[seed] = train(seed)
    except BaseException as error:
        errors.append(repr(error))
threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not errors, errors
for seed in range(4):  # BLAS may split a product differently when two threads call it at once: rounding only
    np.testing.assert_allclose(results[seed], serial[seed], rtol=1e-4, atol=1e-6)

@parallel_kernel(tasks=lambda a, out: a.size)
def doubled_checked(a, out, start, stop):
    if out.size != a.size:
        raise ValueError("doubled_checked: out must have a's size")
    for i in range(start, stop):
        out[i] = 2 * a[i]

raised = []
def misuse(seed):  # an error raised inside a kernel reaches its caller and releases the launch path
    a = np.arange(1 << 20, dtype=np.float64)
    for _ in range(20):
        try:
            doubled_checked(a, np.empty(3))
        except ValueError as error:
            raised.append(str(error))
        out = np.empty_like(a)
        doubled_checked(a, out)
        assert out[-1] == 2 * a[-1]
threads = [threading.Thread(target=misuse, args=(seed,)) for seed in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert raised == ["doubled_checked: out must have a's size"] * 80, raised[:3]
print("ok", len(results))
"""


def test_training_in_four_python_threads_at_once_neither_crashes_nor_mixes_results(tmp_path):
    script = tmp_path / "workers.py"  # a file, not `-c`: the script's own kernel is cached beside it
    script.write_text(textwrap.dedent(WORKERS))
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip() == "ok 4"


def test_grad_mode_is_per_thread():
    """no_grad in one thread leaves another thread's graph recording alone."""
    inside, recorded = threading.Event(), []
    release = threading.Event()

    def without_grad():
        with tc.no_grad():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=without_grad)
    thread.start()
    inside.wait(10)
    x = tc.tensor(np.arange(3.0), requires_grad=True)
    recorded.append((x * 2).requires_grad)
    release.set()
    thread.join()
    assert recorded == [True]
