"""Numba kernels on plain NumPy arrays: no Tensor, no autograd. Write a parallel kernel with
`@parallel_kernel` (from the runtime, re-exported here) and call it as a plain function: the runtime picks
its serial or parallel build and takes the launch lock when the threading layer needs it."""
from tinygrad_cnn.runtime import parallel_kernel

__all__ = ["parallel_kernel"]
