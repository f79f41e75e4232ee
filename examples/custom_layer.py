"""Writing your own layer: a learnable PReLU with its own Numba kernels and a hand-written backward.

    y = x            where x > 0
    y = a[c] · x     elsewhere, with one learnable slope a[c] per channel

Three steps, the same for any op:
  1. kernels: `@parallel_kernel` functions on plain NumPy arrays (no Tensor inside), one per direction. The
     decorator compiles a parallel and a serial build with Numba (cached on disk) and gives back a plain
     function that picks the build (serial on one thread or for a pass below `SMALL_PASS` elements, as the
     kernel declares with `elements=`) and takes the launch lock when Numba's threading layer needs it, so the
     kernel is safe to call from several Python threads;
  2. a Function: `forward` gets arrays and saves what `backward` needs; `backward` gets dL/dy and returns
     one gradient per forward argument (None for arguments that are not Tensors);
  3. a Module that owns the Parameter and calls `Function.apply`.
Check the backward with `tc.gradcheck` in float64 (tests/test_custom_layer.py does).

    python examples/custom_layer.py
"""
import numpy as np
from numba import prange

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.runtime import parallel_kernel


def elements(x, *rest):
    """The size of a PReLU pass, for the launch path's serial-or-parallel rule."""
    return x.size


@parallel_kernel(elements=elements)
def prelu_forward_kernel(x, slope):
    """x: (N, C, L) array, slope: (C,). Each parallel iteration owns one sample's output."""
    out = np.empty_like(x)
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(x.shape[2]):
                value = x[n, c, i]
                out[n, c, i] = value if value > 0 else slope[c] * value
    return out


@parallel_kernel(elements=elements)
def prelu_backward_kernel(x, slope, grad_out):
    """dL/dx = dL/dy · (1 if x > 0 else a[c]);  dL/da[c] = Σ_{n,i: x ≤ 0} dL/dy · x.
    Each parallel iteration owns one channel, so no two threads add into the same dL/da[c]."""
    grad_x = np.empty_like(x)
    grad_slope = np.zeros_like(slope)
    for c in prange(x.shape[1]):
        for n in range(x.shape[0]):
            for i in range(x.shape[2]):
                value, grad = x[n, c, i], grad_out[n, c, i]
                if value > 0:
                    grad_x[n, c, i] = grad
                else:
                    grad_x[n, c, i] = slope[c] * grad
                    grad_slope[c] += grad * value
    return grad_x, grad_slope


class PReLUFunction(tc.Function):
    @staticmethod
    def forward(ctx, x, slope):
        x = np.ascontiguousarray(x)
        flat = x.reshape(x.shape[0], x.shape[1], -1)  # any (N, C, ...) shape as (N, C, L)
        ctx.save_for_backward(flat, slope)
        ctx.shape = x.shape
        return prelu_forward_kernel(flat, slope).reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        flat, slope = ctx.saved_tensors
        grad_flat = np.ascontiguousarray(grad).reshape(flat.shape)
        grad_x, grad_slope = prelu_backward_kernel(flat, slope, grad_flat)
        return grad_x.reshape(ctx.shape), grad_slope


class PReLU(nn.Module):
    """PReLU with one learnable slope per channel, initialised to `init` (PyTorch's default 0.25)."""

    def __init__(self, num_channels: int, init: float = 0.25):
        super().__init__()
        self.weight = nn.Parameter(np.full(num_channels, init, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"PReLU: expected input (N, {self.weight.shape[0]}, ...), got shape {x.shape}")
        return PReLUFunction.apply(x, self.weight)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3, 5, 5)), requires_grad=True)
    slope = Tensor(rng.uniform(0.1, 0.5, 3), requires_grad=True)
    print("gradcheck:", tc.gradcheck(PReLUFunction.apply, (x, slope)))

    layer = PReLU(3)
    y = layer(Tensor(rng.standard_normal((4, 3, 5, 5)), dtype=np.float32))
    y.sum().backward()
    print("output", y.shape, y.dtype, "| slope gradient", layer.weight.grad.numpy())
