"""set_num_threads sets Numba's and OpenBLAS's thread counts together."""
import pytest

from tinygrad_cnn.threads import get_blas_num_threads, get_num_threads, set_num_threads


def test_set_num_threads_sets_numba_and_blas():
    numba_before, blas_before = get_num_threads(), get_blas_num_threads()
    try:
        set_num_threads(1)
        assert get_num_threads() == 1
        if blas_before is not None:  # NumPy's OpenBLAS found: it follows
            assert get_blas_num_threads() == 1
    finally:
        set_num_threads(numba_before)
        if blas_before is not None:
            from tinygrad_cnn.threads import _find_openblas_function
            _find_openblas_function("set")(blas_before)
    assert get_num_threads() == numba_before


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_num_threads_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
        set_num_threads(bad)


NUMPY_BLAS_AFTER_KERNELS = """
import ctypes, glob, os, numpy as np
import tinygrad_cnn as tc
import tinygrad_cnn.nn.functional as F
F.conv2d(tc.Tensor.randn(1, 1, 5, 5), tc.Tensor.randn(1, 1, 3, 3))  # Numba loads its kernels (and SciPy's BLAS)
shipped = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
assert shipped, "this test expects NumPy's wheel, which ships its OpenBLAS in numpy.libs/"
library = ctypes.CDLL(shipped[0])
get = next(getattr(library, f"{prefix}_get_num_threads{suffix}") for prefix in ("scipy_openblas", "openblas")
    for suffix in ("64_", "", "_64") if hasattr(library, f"{prefix}_get_num_threads{suffix}"))
for n in (1, 2, 1):
    tc.set_num_threads(n)
    assert get() == n, (n, get())
print("ok")
"""


def test_set_num_threads_reaches_numpys_blas_after_the_kernels_loaded_scipys():
    """Numba loads SciPy's own OpenBLAS with its first kernel; the setter must still reach NumPy's."""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", NUMPY_BLAS_AFTER_KERNELS], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_small_products_run_on_one_blas_thread_and_the_count_comes_back():
    from tinygrad_cnn.threads import MULTITHREADED_BLAS_MACS, blas_for_product
    before = get_blas_num_threads()
    assert before is not None
    with blas_for_product(MULTITHREADED_BLAS_MACS - 1):
        assert get_blas_num_threads() == 1
    assert get_blas_num_threads() == before
    with blas_for_product(MULTITHREADED_BLAS_MACS):
        assert get_blas_num_threads() == before


def test_mnist_models_train_bit_identically_on_one_and_on_all_threads():
    """Their convs take the direct kernels (each thread owns whole outputs) and their matrix products run on one
    BLAS thread, so the thread count changes nothing; three Adam steps of both models, compared bit for bit."""
    import os
    import sys

    import numba
    import numpy as np

    import tinygrad_cnn as tc
    from tinygrad_cnn.nn import functional as F
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "mnist"))
    from models import MODELS

    def train(threads):
        set_num_threads(threads)
        states = []
        for name in ("cnn", "lenet"):
            tc.manual_seed(0)
            model = MODELS[name]()
            optimizer = tc.optim.Adam(model.parameters(), lr=1e-3)
            rng = np.random.default_rng(0)
            for _ in range(3):
                loss = F.cross_entropy(model(tc.Tensor(rng.random((32, 1, 28, 28), dtype=np.float32))),
                                       rng.integers(0, 10, 32))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            states.append(model.state_dict())
        return states

    numba_before, blas_before = get_num_threads(), get_blas_num_threads()
    try:
        one, every = train(1), train(numba.config.NUMBA_NUM_THREADS)
    finally:
        set_num_threads(blas_before or numba_before)
        numba.set_num_threads(numba_before)
    for state_one, state_every in zip(one, every):
        for key in state_one:
            np.testing.assert_array_equal(state_one[key], state_every[key], err_msg=key)


def test_one_thread_runs_the_kernels_serial_twin():
    """A parallel kernel runs its serial twin (no parallel launch) while Numba has one thread, and its parallel
    build otherwise; the two give the same result and are compiled (and cached) apart."""
    import numba
    import numpy as np
    from numba import prange

    from tinygrad_cnn.ops.kernels import parallel_kernel

    def doubled(a, out):
        for i in prange(a.size):
            out[i] = 2 * a[i]
    kernel = parallel_kernel(doubled)
    assert kernel.serial.py_func.__qualname__ != kernel.parallel.py_func.__qualname__
    a = np.arange(1000.0)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        out_serial = np.zeros_like(a)
        kernel(a, out_serial)
        assert kernel.serial.signatures and not kernel.parallel.signatures
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        out_parallel = np.zeros_like(a)
        kernel(a, out_parallel)
        assert bool(kernel.parallel.signatures) == (numba.config.NUMBA_NUM_THREADS > 1)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(out_serial, 2 * a)
    np.testing.assert_array_equal(out_parallel, 2 * a)
