"""Module hooks: removable handles, and the identity Functions that let a full backward hook see a module's
gradients with respect to its inputs and outputs (PyTorch's register_full_backward_hook)."""
from collections import OrderedDict

import numpy as np

from ..autograd import Function
from ..tensor import Tensor


class RemovableHandle:
    """Returned by the register_*_hook methods: `remove()` (or leaving a `with` block) unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict):
        self._hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add_hook(hooks: OrderedDict, hook) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


class _Call:
    """One module call seen by backward hooks: the gradients of its outputs once they arrive."""

    def __init__(self, module, hooks, inputs_require_grad):
        self.module, self.hooks, self.inputs_require_grad = module, list(hooks), inputs_require_grad
        self.grad_output = None

    def run_hooks(self, grad_input: tuple) -> tuple:
        """Call each hook as hook(module, grad_input, grad_output); a hook's non-None result replaces grad_input."""
        as_tensors = tuple(None if g is None else Tensor._wrap(g) for g in grad_input)
        for hook in self.hooks:
            result = hook(self.module, as_tensors, self.grad_output)
            if result is not None:
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != len(as_tensors):
                    raise RuntimeError(f"backward hook of {type(self.module).__name__} returned {len(result)} "
                                       f"gradients for {len(as_tensors)} inputs")
                as_tensors = result
        return tuple(None if g is None else np.asarray(g.numpy() if isinstance(g, Tensor) else g) for g in as_tensors)


def _views(arrays):
    return tuple(a.view() for a in arrays)


class HookInputs(Function):
    """Identity on a module's Tensor inputs; its backward hands dL/d(inputs) to the hooks."""

    @staticmethod
    def forward(ctx, call, *arrays):
        ctx.call = call
        return _views(arrays)

    @staticmethod
    def backward(ctx, *grads):
        return (None,) + ctx.call.run_hooks(grads)


class HookOutputs(HookInputs):
    """Identity on a module's Tensor outputs; its backward records dL/d(outputs) for the hooks (and calls them
    with grad_input None when no input requires grad, as PyTorch does)."""

    @staticmethod
    def backward(ctx, *grads):
        call = ctx.call
        call.grad_output = tuple(Tensor._wrap(g) for g in grads)
        if not call.inputs_require_grad:
            call.run_hooks((None,))
        return (None,) + grads


def call_with_backward_hooks(module, hooks, args, kwargs):
    """module.forward on args whose Tensors pass through HookInputs, its Tensor outputs through HookOutputs."""
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.dtype.kind == "f"]
    call = _Call(module, hooks.values(), any(args[i].requires_grad for i in positions))
    args = list(args)
    if call.inputs_require_grad:
        wrapped = HookInputs.apply(call, *(args[i] for i in positions))
        for i, tensor in zip(positions, wrapped):
            args[i] = tensor
    output = module.forward(*args, **kwargs)
    single = isinstance(output, Tensor)
    outputs = (output,) if single else tuple(output) if isinstance(output, (tuple, list)) else ()
    if not outputs or not all(isinstance(o, Tensor) for o in outputs) or not any(o.requires_grad for o in outputs):
        return output
    wrapped = HookOutputs.apply(call, *outputs)
    return wrapped[0] if single else type(output)(wrapped)
