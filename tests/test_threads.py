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
