"""Shared helpers for the core tests: random inputs in a chosen domain, and one check that runs an op
forward and backward and compares both with a reference."""
import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor


def random_array(rng, shape, domain="any", dtype=np.float64):
    """Random values for an op's input. Domains keep finite differences away from kinks and poles:
    "any" standard normal, "positive" in [0.5, 2], "nonzero" with |x| in [0.2, 2]."""
    if domain == "positive":
        values = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        values = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    else:
        values = rng.standard_normal(shape)
    return np.asarray(values, dtype=dtype)


def assert_forward_backward(fn, arrays, reference, reference_grads, rng, rtol=1e-6, atol=1e-8):
    """`fn` on Tensors made from `arrays` (all requiring grad) must give `reference(*arrays)` forward and, for a
    random upstream gradient g, `reference_grads(g, *arrays)` (one gradient per input) backward; all finite."""
    tensors = [tc.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    upstream = rng.standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    expected = reference(*arrays)
    assert out.shape == np.shape(expected) and np.isfinite(out.numpy()).all()
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=atol)
    for tensor, expected_grad in zip(tensors, reference_grads(upstream, *arrays), strict=True):
        assert tensor.grad is not None and np.isfinite(tensor.grad.numpy()).all()
        np.testing.assert_allclose(tensor.grad.numpy(), expected_grad, rtol=rtol, atol=atol)
