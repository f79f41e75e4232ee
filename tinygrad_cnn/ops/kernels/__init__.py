"""Numba kernels on plain NumPy arrays: no Tensor, no autograd. Write a parallel kernel as a serial function
over a range of tasks with `@parallel_kernel(tasks=...)` (from the runtime, re-exported here) and call it as a
plain function: the runtime splits the tasks over its threads."""
from tinygrad_cnn.runtime import parallel_kernel

__all__ = ["parallel_kernel"]
