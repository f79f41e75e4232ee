"""Anomaly mode: stop at the first op whose result or gradient holds NaN or Inf, and say where it came from."""
import os
import sys

import numpy as np

from . import autograd

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class AnomalyError(FloatingPointError):
    """A forward result or a backward gradient held NaN or Inf while `detect_anomaly` was on."""


def _user_line() -> str:
    """'file:line' of the innermost caller outside this package (the user code that ran the op)."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return "unknown location" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _first_bad(arrays):
    for i, a in enumerate(arrays):
        if a is not None and np.asarray(a).dtype.kind in "fc" and not np.isfinite(a).all():
            return i
    return None


class _Checker:
    def on_forward(self, function, node, outputs):
        where = _user_line()
        if node is not None:
            node.trace = where
        bad = _first_bad(outputs)
        if bad is not None:
            raise AnomalyError(f"{function.__name__} produced NaN or Inf in output {bad} "
                               f"(shape {outputs[bad].shape}), created at {where}")

    def on_backward(self, node, input_grads):
        bad = _first_bad(input_grads)
        if bad is not None:
            raise AnomalyError(f"{node.ctx.function.__name__}.backward produced NaN or Inf in the gradient of "
                               f"input {bad}; the op was created at {node.trace or 'an unknown location'}")


class detect_anomaly:
    """`with tc.detect_anomaly():` checks every op's result and gradient for NaN/Inf. Off by default;
    when off, ops pay one `is None` test."""

    def __enter__(self):
        self._previous = autograd._anomaly_hook
        autograd.set_anomaly_hook(_Checker())
        return self

    def __exit__(self, *exc):
        autograd.set_anomaly_hook(self._previous)
