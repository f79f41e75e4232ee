"""Record one forward pass: every op call with all its arguments, and which layer made it.

The autograd graph keeps an op's Tensor inputs but not its constants (a pooling window, a reshape's target),
and none of the ops that record no graph (comparisons, argmax); the trace hook sees every call, so the export
walks this fuller record of the same graph.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from .. import autograd
from ..autograd import no_grad
from ..tensor import Tensor

_exporting = threading.Lock()  # one trace at a time: the hook is process-wide


@dataclass
class Call:
    """One op call: `function` applied to `args` (Tensors and constants) inside layer `layer`, with the version
    (count of in-place changes) of each input when it was read and of each output when made, so that the export
    can tell a tensor changed in place between the op that made it and one that read it."""

    function: type
    args: tuple
    kwargs: dict
    outputs: tuple
    layer: str

    def __post_init__(self):
        self.read = [x._version for x in self.inputs]
        self.made = [y._version for y in self.outputs]

    @property
    def inputs(self):
        return [a for a in (*self.args, *self.kwargs.values()) if isinstance(a, Tensor)]

    @property
    def name(self) -> str:
        return self.function.__name__


def record(model, inputs: tuple):
    """(outputs, producers): the model's outputs and, for every Tensor made during the forward, the Call that
    made it (by id; the Calls keep their Tensors alive)."""
    producers, layers = {}, []
    thread = threading.get_ident()

    def on_call(function, args, kwargs, outputs):
        if threading.get_ident() == thread:
            call = Call(function, args, kwargs, outputs, layers[-1] if layers else "")
            for output in outputs:
                producers.setdefault(id(output), call)

    def wrap(name, module, forward):
        label = f"{name} ({type(module).__name__})" if name else type(module).__name__

        def wrapped(*args, **kwargs):
            layers.append(label)
            try:
                out = forward(*args, **kwargs)
            finally:
                layers.pop()
            return out
        return wrapped

    modules = list(model.named_modules())
    own = [(module, module.__dict__.get("forward")) for _, module in modules]  # a forward set on an instance
    with _exporting:
        try:
            for name, module in modules:
                object.__setattr__(module, "forward", wrap(name, module, module.forward))
            autograd.set_trace_hook(on_call)
            with no_grad():
                outputs = model(*inputs)
        finally:
            autograd.set_trace_hook(None)
            for module, forward in own:
                if forward is None:
                    module.__dict__.pop("forward", None)
                else:
                    object.__setattr__(module, "forward", forward)
    return outputs, producers
