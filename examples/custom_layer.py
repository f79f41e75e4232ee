"""Writing your own layer: a learnable PReLU with its own Numba kernels and a hand-written backward.

    y = x            where x > 0
    y = a[c] · x     elsewhere, with one learnable slope a[c] per channel

Three steps, the same for any op:
  1. kernels: `@parallel_kernel` functions on plain NumPy arrays (no Tensor inside), one per direction. A
     kernel computes tasks `start` … `stop − 1` of the `tasks` its arguments make (say one per sample), each
     task writing only output of its own, into arrays it is given. The decorator compiles it with Numba
     (`nogil`, cached on disk) and gives back a plain function without `start, stop` that splits the tasks
     over the package's threads (all on the calling thread for one thread, or for a pass below `SMALL_PASS`
     elements as the kernel declares with `elements=`), safe to call from several Python threads;
  2. a Function: `forward` gets arrays and saves what `backward` needs; `backward` gets dL/dy and returns
     one gradient per forward argument (None for arguments that are not Tensors);
  3. a Module that owns the Parameter and calls `Function.apply`.
Check the backward with `tc.gradcheck` in float64 (tests/test_custom_layer.py does).

    python examples/custom_layer.py
"""
import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.runtime import parallel_kernel


def elements(x, *rest):
    """The size of a PReLU pass, for the launch path's split-or-not rule."""
    return x.size


@parallel_kernel(tasks=lambda x, slope, out: x.shape[0], elements=elements)
def prelu_forward_kernel(x, slope, out, start, stop):
    """x, out: (N, C, L) arrays, slope: (C,). A task is one sample's output."""
    for n in range(start, stop):
        for c in range(x.shape[1]):
            for i in range(x.shape[2]):
                value = x[n, c, i]
                out[n, c, i] = value if value > 0 else slope[c] * value


@parallel_kernel(tasks=lambda x, slope, grad_out, grad_x, grad_slope: x.shape[1], elements=elements)
def prelu_backward_kernel(x, slope, grad_out, grad_x, grad_slope, start, stop):
    """dL/dx = dL/dy · (1 if x > 0 else a[c]);  dL/da[c] = Σ_{n,i: x ≤ 0} dL/dy · x.
    A task is one channel, so no two threads add into the same dL/da[c]."""
    for c in range(start, stop):
        grad_slope[c] = 0
        for n in range(x.shape[0]):
            for i in range(x.shape[2]):
                value, grad = x[n, c, i], grad_out[n, c, i]
                if value > 0:
                    grad_x[n, c, i] = grad
                else:
                    grad_x[n, c, i] = slope[c] * grad
                    grad_slope[c] += grad * value


class PReLUFunction(tc.Function):
    @staticmethod
    def forward(ctx, x, slope):
        x = np.ascontiguousarray(x)
        flat = x.reshape(x.shape[0], x.shape[1], -1)  # any (N, C, ...) shape as (N, C, L)
        ctx.save_for_backward(flat, slope)
        ctx.shape = x.shape
        out = np.empty_like(flat)
        prelu_forward_kernel(flat, slope, out)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        flat, slope = ctx.saved_tensors
        grad_flat = np.ascontiguousarray(grad).reshape(flat.shape)
        grad_x, grad_slope = np.empty_like(flat), np.empty_like(slope)
        prelu_backward_kernel(flat, slope, grad_flat, grad_x, grad_slope)
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
