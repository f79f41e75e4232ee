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
