"""The bottom layer, imported by the kernels and importing nothing else of the package: thread counts
(Numba's and BLAS's), Numba's threading layer, the one launch path of parallel kernels, the kernels' scratch
buffers, and an opt-in allocator tuning.

Importing it changes nothing process-wide, with one exception the user can override: when no threading layer
was chosen (see layer.py), Numba's `workqueue` layer is selected.
"""
from .allocator import tune_allocator
from .launch import SMALL_PASS, parallel_kernel
from .layer import active_layer, choose_default_layer
from .scratch import workspace
from .threads import get_blas_num_threads, get_num_threads, one_blas_thread, set_num_threads

choose_default_layer()

__all__ = ["tune_allocator", "parallel_kernel", "SMALL_PASS", "active_layer", "workspace", "set_num_threads",
           "get_num_threads", "get_blas_num_threads", "one_blas_thread"]
