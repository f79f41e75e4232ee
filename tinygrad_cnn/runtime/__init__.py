"""The bottom layer, imported by the kernels and importing nothing else of the package: thread counts
(the kernels' and BLAS's), the one launch path of parallel kernels, the kernels' scratch buffers, the pool
of the ops' large results, and an opt-in allocator tuning. Importing it changes nothing process-wide and starts
no thread."""
from .allocator import tune_allocator
from .array_pool import empty_cache
from .launch import SMALL_PASS, parallel_kernel
from .scratch import workspace
from .threads import get_blas_num_threads, get_num_threads, one_blas_thread, set_num_threads

__all__ = ["tune_allocator", "empty_cache", "parallel_kernel", "SMALL_PASS", "workspace", "set_num_threads",
           "get_num_threads", "get_blas_num_threads", "one_blas_thread"]
