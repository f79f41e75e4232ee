"""Shared helpers for the core tests: random inputs in a chosen domain, and one check that runs an op
forward and backward and compares both with a reference."""
import numpy as np

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


def forward_backward(fn, arrays, rng):
    """Run `fn` on Tensors made from `arrays` (all requiring grad) and backpropagate a random upstream
    gradient. Returns (output array, upstream, list of input gradients, None where none arrived)."""
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    upstream = rng.standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    return out.numpy(), upstream, [None if t.grad is None else t.grad.numpy() for t in tensors]


def assert_forward_backward(fn, arrays, reference, reference_grads, rng, rtol=1e-6, atol=1e-8):
    """`fn` on Tensors must give `reference(*arrays)` forward and `reference_grads(upstream, *arrays)`
    (one gradient per input) backward, for a random upstream gradient; also finite everywhere."""
    out, upstream, grads = forward_backward(fn, arrays, rng)
    expected = reference(*arrays)
    assert out.shape == np.shape(expected) and np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
    for grad, expected_grad in zip(grads, reference_grads(upstream, *arrays), strict=True):
        assert grad is not None and np.isfinite(grad).all()
        np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=atol)
