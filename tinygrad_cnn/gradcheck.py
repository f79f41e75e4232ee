"""Check analytical gradients against central finite differences."""
import warnings

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by `gradcheck` when an analytical gradient disagrees with the numerical one."""


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, fast_mode=False, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False, check_backward_ad=True,
              check_forward_ad=False, n_projections=3, seed=0):
    """True if the gradients of `fn(*inputs)` match central differences for every input that requires grad.

    A non-scalar output y is checked through `n_projections` random projections: for a random array v
    (seeded by `seed`), backward(v) must equal the finite-difference derivative of ⟨v, y⟩ — one backward
    per projection and two forward calls per input element. Every Jacobian entry takes part, so a wrong
    entry is caught unless it happens to cancel for every v, which has probability zero. A scalar output
    is checked with v = 1. Inputs should be float64; float32 gives a warning (eps is then too small).
    On a mismatch raises `GradcheckError` naming the input, the first bad index, both values and the
    largest error, or returns False when `raise_exception=False`. `fast_mode=True` checks one random
    directional derivative instead, ⟨v, J u⟩ for random u and v: one backward and two forward calls.
    """
    if check_batched_grad or check_forward_ad:
        raise NotImplementedError("gradcheck: batched and forward-mode checks are not supported here (no vmap, no "
                                  "forward-mode AD); nondet_tol, check_undefined_grad and check_grad_dtypes are accepted "
                                  "and have nothing to check: backward is deterministic, missing gradients are zeros "
                                  "and gradients take their input's dtype")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    if any(inputs[i].dtype != np.float64 for i in checked):
        warnings.warn("gradcheck: inputs should be float64; float32 finite differences are unreliable", stacklevel=2)
    with no_grad():
        output_shape = fn(*inputs).shape
    rng = np.random.default_rng(seed)
    if fast_mode:
        return _fast_check(fn, inputs, checked, rng.standard_normal(output_shape), rng, eps, atol, rtol,
                           raise_exception)
    projections = [np.ones(output_shape)] if output_shape in ((), (1,)) else \
        [rng.standard_normal(output_shape) for _ in range(n_projections)]

    for v in projections:
        analytical = _analytical(fn, inputs, checked, v)
        for i in checked:
            numerical = _numerical(fn, inputs, inputs[i], v, eps)
            error = np.abs(analytical[i] - numerical)
            bad = error > atol + rtol * np.abs(numerical)
            if bad.any():
                if not raise_exception:
                    return False
                index = tuple(int(k) for k in np.argwhere(bad)[0])
                raise GradcheckError(
                    f"gradcheck: gradient of input {i} (shape {inputs[i].shape}) is wrong at index {index}: "
                    f"analytical {analytical[i][index]:.8g}, numerical {numerical[index]:.8g}; "
                    f"largest error {error.max():.3g} (atol={atol}, rtol={rtol})")
    return True


def _analytical(fn, inputs, checked, v):
    saved = {i: inputs[i].grad for i in checked}
    for i in checked:
        inputs[i].grad = None
    try:
        out = fn(*inputs)
        out.backward(v.astype(out.dtype).reshape(out.shape))
        return {i: (np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad.numpy().astype(np.float64))
                for i in checked}
    finally:
        for i in checked:
            inputs[i].grad = saved[i]


def _numerical(fn, inputs, tensor, v, eps):
    """d⟨v, fn⟩/d tensor by central differences, one element at a time."""
    data = tensor.numpy()  # edited in place, element by element (whatever its memory layout)
    result = np.zeros(tensor.shape)
    with no_grad():
        for index in np.ndindex(tensor.shape):
            original = data[index]
            data[index] = original + eps
            plus = np.sum(fn(*inputs).numpy() * v)
            data[index] = original - eps
            minus = np.sum(fn(*inputs).numpy() * v)
            data[index] = original
            result[index] = (plus - minus) / (2 * eps)
    return result


def _fast_check(fn, inputs, checked, v, rng, eps, atol, rtol, raise_exception):
    """⟨v, J u⟩ from backward (Σ_i ⟨∂⟨v, fn⟩/∂x_i, u_i⟩) against (⟨v, fn(x + εu)⟩ − ⟨v, fn(x − εu)⟩) / 2ε."""
    analytical_grads = _analytical(fn, inputs, checked, v)
    directions = {i: rng.standard_normal(inputs[i].shape) for i in checked}
    analytical = sum(float(np.sum(analytical_grads[i] * directions[i])) for i in checked)
    arrays = {i: inputs[i].numpy() for i in checked}
    originals = {i: arrays[i].copy() for i in checked}
    values = []
    with no_grad():
        for sign in (1, -1):
            for i in checked:
                arrays[i][...] = originals[i] + sign * eps * directions[i]
            values.append(float(np.sum(fn(*inputs).numpy() * v)))
        for i in checked:
            arrays[i][...] = originals[i]
    numerical = (values[0] - values[1]) / (2 * eps)
    if abs(analytical - numerical) <= atol + rtol * abs(numerical):
        return True
    if not raise_exception:
        return False
    raise GradcheckError(f"gradcheck (fast_mode): the directional derivative is wrong: analytical {analytical:.8g}, "
                         f"numerical {numerical:.8g} (atol={atol}, rtol={rtol})")
