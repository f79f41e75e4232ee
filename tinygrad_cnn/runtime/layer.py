"""Numba's threading layer: `workqueue` when the user has chosen none, and whether kernel launches need a lock.

Why `workqueue` by default: the OpenMP and TBB layers keep their workers spinning after a parallel loop, and
the spinning takes the cores from the BLAS product that usually comes next; `workqueue`'s workers sleep.
A user's choice (the NUMBA_THREADING_LAYER variable, or `numba.config.THREADING_LAYER` set before this
package is imported) is kept, and so is a layer that already started.
"""
import os

import numba
from numba.np.ufunc import parallel as _numba_parallel

PREFERRED_LAYER = "workqueue"
THREAD_SAFE_LAYERS = ("omp", "tbb")  # Numba's documentation: `workqueue` aborts on concurrent launches


def choose_default_layer() -> bool:
    """Select PREFERRED_LAYER if nobody chose a layer yet; True when it was selected."""
    chosen = "NUMBA_THREADING_LAYER" in os.environ or numba.config.THREADING_LAYER != "default"
    if chosen or _numba_parallel._is_initialized:
        return False
    numba.config.THREADING_LAYER = PREFERRED_LAYER
    return True


def active_layer():
    """The name of the threading layer in use, or None before the first parallel launch has started one."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None
