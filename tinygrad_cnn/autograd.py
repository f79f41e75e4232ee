"""Reverse-mode autograd: `Function`, its context, grad mode and the backward walk.

Every op, built-in or user-defined, is a `Function` subclass with a static `forward` and `backward`
on NumPy arrays. `Function.apply` runs the forward on the arrays behind its Tensor arguments and,
when grad mode is on and an input requires grad, records a node that `backward` later walks.
"""
from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from .ops.kernels.elementwise import sum_of
from .runtime.array_pool import owns_its_memory


class _GradState(threading.local):
    enabled = True  # a class default: each thread starts in grad mode without a failed attribute lookup per op


_grad_state = _GradState()


class TensorBase:
    """What autograd needs of a tensor: its array, gradient, grad flag, the node that made it and its version
    counter. tensor.py's `Tensor` subclasses it and adds the user-facing methods; `Function.apply` recognises
    its arguments with isinstance and builds its results with the first Tensor argument's `_wrap`."""

    __slots__ = ("_array", "grad", "_requires_grad", "_node", "_output_index", "_version_counter", "__weakref__")

    @staticmethod
    def _wrap(array, node=None, index=0):
        """A tensor around `array` (no copy), made by `node`'s output `index`; the subclass defines it."""
        raise NotImplementedError


def is_grad_enabled() -> bool:
    """True when ops record a graph (the default)."""
    return _grad_state.enabled


class _GradMode:
    """Context manager and decorator that sets grad mode and restores the previous one on exit."""

    enabled: bool

    def __new__(cls, fn=None):
        """`@tc.no_grad` also decorates without parentheses, as PyTorch's does."""
        mode = super().__new__(cls)
        return mode if fn is None else mode(fn)

    def __enter__(self):
        self._previous = is_grad_enabled()
        _grad_state.enabled = self.enabled

    def __exit__(self, *exc):
        _grad_state.enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Ops run inside record no graph: `with tc.no_grad(): ...` or `@tc.no_grad()`."""

    enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a `no_grad` region."""

    enabled = True


class set_grad_enabled(_GradMode):
    """`tc.set_grad_enabled(False)` switches grad mode at once; as a context manager it also restores the
    previous mode on exit, as PyTorch's."""

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        self.enabled = bool(mode)
        self._previous = is_grad_enabled()
        _grad_state.enabled = self.enabled

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _grad_state.enabled = self._previous


class inference_mode(_GradMode):
    """As `no_grad` here (PyTorch's inference mode also skips version counting, which this package does not
    need to); `inference_mode(False)` leaves grad mode as it is."""

    def __new__(cls, mode=True):
        if callable(mode):
            return no_grad(mode)
        instance = object.__new__(cls)
        instance.mode = bool(mode)
        return instance

    def __init__(self, mode=True):
        pass

    @property
    def enabled(self):
        return False if self.mode else is_grad_enabled()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(self.mode):
                return fn(*args, **kwargs)
        return wrapper


class Context:
    """What a Function's forward leaves for its backward: saved arrays and any attributes set on it."""

    _saved = ()  # class defaults: a context that saves nothing is made with two attribute stores
    _released = False

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"{self.function.__name__}: backward through a graph that was already released; "
                "pass retain_graph=True to the first backward() to go through it twice")
        return self._saved


class Node:
    """One recorded Function call: its context, its Tensor inputs and facts about its outputs."""

    __slots__ = ("ctx", "inputs", "outputs", "saved_versions", "trace")

    def __init__(self, ctx, inputs, outputs):
        self.ctx = ctx
        self.inputs = inputs  # one entry per forward argument: a Tensor, or None for a constant
        self.outputs = [(o.shape, o.dtype) for o in outputs]  # what a missing output gradient is filled with
        self.saved_versions = ()  # (version counter, version, shape) of every saved array that is a tensor's array
        self.trace = None  # where user code created this node (filled in by anomaly mode)


class Function:
    """Base class of every op. Subclasses define static `forward(ctx, *args)` and `backward(ctx, *grads)`.

    `forward` receives NumPy arrays for Tensor arguments and everything else unchanged, and returns an
    array or a tuple of arrays. `backward` receives one gradient array per output and returns one
    gradient (or None) per forward argument, each of that argument's shape; extra trailing Nones are
    allowed, as in PyTorch. Arrays, not Tensors, on purpose: a backward can call its own `@njit` kernel.
    """

    differentiable = True  # False for ops like comparisons and argmax: they never record a graph

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on Tensors (and constants); return a Tensor, or a tuple for several outputs."""
        if kwargs:
            _refuse_tensor_keywords(cls, kwargs)
        inputs, arrays, needs, first = [], [], [], None
        for a in args:  # one pass: this runs for every op, and generator expressions cost more per item
            if isinstance(a, TensorBase):
                inputs.append(a)
                arrays.append(a._array)
                needs.append(a._requires_grad)
                if first is None:
                    first = a
            else:
                inputs.append(None)
                arrays.append(a)
                needs.append(False)
        if first is None:
            raise TypeError(f"{cls.__name__}.apply: needs at least one Tensor argument, got "
                            f"({', '.join(type(a).__name__ for a in args)})")
        needs = tuple(needs)
        record = True in needs and cls.differentiable and _grad_state.enabled
        ctx = Context(cls, needs)
        try:
            result = cls.forward(ctx, *arrays, **kwargs)
        except AttributeError as error:
            _explain_arrays_not_tensors(cls, "forward", error)
            raise
        single = not isinstance(result, tuple)
        outputs = [np.asarray(result)] if single else [np.asarray(r) for r in result]
        node = Node(ctx, tuple(inputs), outputs) if record else None
        if _anomaly_hook is not None:
            _anomaly_hook.on_forward(cls, node, outputs)
        # integer and bool outputs (astype(int), masks) never require grad, as in PyTorch
        wrap = first._wrap
        if single:
            out = outputs[0]
            tensors = (wrap(out, node if out.dtype.kind == "f" else None, 0),)
            views = out.base is not None
        else:
            tensors = tuple(wrap(o, node if o.dtype.kind == "f" else None, i) for i, o in enumerate(outputs))
            views = True
        if views:
            _share_version_counters_with_views(args, tensors)
        if _trace_hook is not None:
            _trace_hook(cls, args, kwargs, tensors)
        if node is not None and ctx._saved:
            _remember_saved_versions(node, tensors)
        return tensors[0] if single else tensors


def _explain_arrays_not_tensors(function, method, error):
    """A Tensor method called on an array inside a Function (code written for PyTorch) says why it failed."""
    if "numpy.ndarray" in str(error):
        raise AttributeError(f"{function.__name__}.{method}: {error}. A Function's forward and backward receive and "
                             "return NumPy arrays here, not Tensors (write a @ b.T for a.mm(b.t()), see the README's "
                             "'Coming from PyTorch')") from error


def _refuse_tensor_keywords(function, kwargs):
    """Only positional arguments are recorded in the graph, so a Tensor given by keyword would get no gradient."""
    tensors = [name for name, value in kwargs.items() if isinstance(value, TensorBase)]
    if tensors:
        raise TypeError(f"{function.__name__}.apply: Tensor argument(s) {', '.join(tensors)} passed by keyword; "
                        "pass Tensors positionally so autograd records them")


_anomaly_hook = None  # an object with on_forward/on_backward while `detect_anomaly` is active


_trace_hook = None  # while tc.onnx.export records a forward: called with (function, args, kwargs, output Tensors)


def set_trace_hook(hook) -> None:
    """Install (or, with None, remove) the recorder that sees every op call with all its arguments, recorded
    in the graph or not (the graph keeps only Tensor inputs, not constants such as a kernel size)."""
    global _trace_hook
    _trace_hook = hook


def set_anomaly_hook(hook) -> None:
    """Install (or, with None, remove) the checker that anomaly mode runs on every op; free when off."""
    global _anomaly_hook
    _anomaly_hook = hook


def _memory_owner(array):
    """The object owning an array's memory: the array itself, or the end of its chain of bases (NumPy points a view
    at the array owning the memory, but a view of a pooled array points at that array, whose base is its lease)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


def _share_version_counters_with_views(args, outputs):
    """An output viewing an input's memory (reshape, basic indexing, ...) shares that input's version counter,
    so an in-place change made through either one is seen by the saved-version check."""
    for output in outputs:
        if output._array.base is None:
            continue
        owner = _memory_owner(output._array)
        for a in args:
            if isinstance(a, TensorBase) and _memory_owner(a._array) is owner:
                counter = output._version_counter = a._version_counter
                if len(counter) == 1:
                    counter.append("viewed")  # in-place ops on either one while recording are refused
                break


def _remember_saved_versions(node, outputs):
    """Note the version of every tensor whose memory a saved array is (or views), so in-place edits are caught
    in backward (Max and LogSumExp save an array their output is a squeezed view of)."""
    tensors = (*node.inputs, *outputs)
    versions = []
    for array in node.ctx._saved:
        if not isinstance(array, np.ndarray):
            continue
        owner = _memory_owner(array)
        for tensor in tensors:
            if tensor is not None and _memory_owner(tensor._array) is owner:
                versions.append((tensor._version_counter, tensor._version_counter[0], array.shape))
                break
    node.saved_versions = versions


def _check_saved_versions(node):
    for counter, version, shape in node.saved_versions:
        if counter[0] != version:
            raise RuntimeError(
                f"{node.ctx.function.__name__}: an array of shape {shape} it saved for backward was "
                f"modified in place after the op ran (version {counter[0]}, expected {version}); "
                "make a copy before changing it")


def _topological_order(root_node):
    """Nodes reachable from `root_node`, each after every node that consumes its outputs (no recursion)."""
    order, visited = [], set()
    stack = [(root_node, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)  # post-order: after every node it consumes
            continue
        if id(node) in visited:  # pushed twice before its first expansion; marked only when expanded,
            continue             # so a node reached again later is never appended before its consumers
        visited.add(id(node))
        stack.append((node, True))
        for tensor in node.inputs:
            parent = tensor._node if tensor is not None else None
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _check_gradient(node, index, grad):
    """A gradient of another shape than its input is refused; one of another dtype is cast to the input's."""
    tensor = node.inputs[index]
    if grad.shape != tensor.shape:
        raise RuntimeError(
            f"{node.ctx.function.__name__}.backward returned a gradient of shape {grad.shape} for input {index}, "
            f"which has shape {tensor.shape}")
    if grad.dtype != tensor.dtype:
        grad = grad.astype(tensor.dtype)
    return grad


def _reference_count(array) -> int:
    """References to `array` as seen from a function its caller passed a local variable to."""
    return sys.getrefcount(array)


def _sole_reference_count() -> int:
    """What `_reference_count` reports for an array held by nothing but one local variable of its caller
    (measured, not assumed: interpreters differ in the references they count). If the count seen in
    `run_backward` ever differs from this probe's, one of test_autograd.py's two leaf-gradient tests fails:
    a fresh gradient gets copied, or one held elsewhere is kept and later changed in place."""
    probe = np.empty(0)
    return _reference_count(probe)


_SOLE_REFERENCE = _sole_reference_count()


def run_backward(root, grad, retain_graph=False, wanted=None):
    """Walk the graph behind `root` in reverse topological order and accumulate leaf gradients; with `wanted`
    (tc.autograd.grad's dict id(tensor) -> _Wanted) the gradients of those tensors are summed there instead
    and no `.grad` changes."""
    node = root._node
    if node is None:
        raise RuntimeError("backward() on a tensor that has no graph (it does not require grad or was made under no_grad)")
    pending = {(id(node), root._output_index): grad}
    captured = {} if wanted is None else {(id(w.tensor._node), w.tensor._output_index): key
                                          for key, w in wanted.items() if w.tensor._node is not None}
    for node in _topological_order(node):
        if captured:  # a wanted non-leaf's gradient is complete once every consumer has run: now
            for i in range(len(node.outputs)):
                key = captured.get((id(node), i))
                if key is not None and (id(node), i) in pending:
                    wanted[key].grad_sum = _add(wanted[key].grad_sum, pending[(id(node), i)])
        ctx = node.ctx
        if ctx._released:
            raise RuntimeError(
                f"{ctx.function.__name__}: backward through a graph that was already released; "
                "pass retain_graph=True to the first backward() to go through it twice")
        if len(node.outputs) == 1:  # most ops: no list of pending gradients to scan
            grads = [pending.pop((id(node), 0), None)]
            if grads[0] is None:
                continue
        else:
            grads = [pending.pop((id(node), i), None) for i in range(len(node.outputs))]
            if all(g is None for g in grads):
                continue
            grads = [np.zeros(shape, dtype) if g is None else g for g, (shape, dtype) in zip(grads, node.outputs)]
        if node.saved_versions:
            _check_saved_versions(node)
        try:
            input_grads = ctx.function.backward(ctx, *grads)
        except AttributeError as error:
            _explain_arrays_not_tensors(ctx.function, "backward", error)
            raise
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        arguments = len(node.inputs)
        if len(input_grads) != arguments:
            if len(input_grads) > arguments and all(g is None for g in input_grads[arguments:]):
                input_grads = input_grads[:arguments]
            else:
                raise RuntimeError(f"{ctx.function.__name__}.backward returned {len(input_grads)} gradients for "
                                   f"{arguments} forward arguments")
        if _anomaly_hook is not None:
            _anomaly_hook.on_backward(node, input_grads)
        input_grads = list(input_grads)
        for index, tensor in enumerate(node.inputs):
            g, input_grads[index] = input_grads[index], None  # so `g` is this loop's only reference
            if tensor is None or g is None or not tensor._requires_grad:
                continue
            g = np.asarray(g)
            if g.shape != tensor._array.shape or g.dtype != tensor._array.dtype:
                g = _check_gradient(node, index, g)
            if wanted is not None and tensor._node is None:
                if id(tensor) in wanted:
                    wanted[id(tensor)].grad_sum = _add(wanted[id(tensor)].grad_sum, g)
            elif tensor._node is None:
                # a leaf keeps its first gradient without a copy (as PyTorch does) when nothing else refers to
                # it; one returned twice, kept in ctx, passed through from the incoming gradient or viewed
                # elsewhere has more references and is copied
                owned = owns_its_memory(g) and g.flags.writeable and _reference_count(g) <= _SOLE_REFERENCE
                tensor._accumulate_grad(g, owned)
            else:
                key = (id(tensor._node), tensor._output_index)
                pending[key] = g if key not in pending else sum_of(pending[key], g)
        if not retain_graph:
            _release(node)


def _release(node):
    """Free what a node holds once its backward has run: saved arrays and the links to its inputs."""
    ctx = node.ctx  # a new attribute dict drops the saved arrays and whatever else forward left on ctx
    ctx.__dict__ = {"function": ctx.function, "needs_input_grad": ctx.needs_input_grad, "_released": True}
    node.inputs = (None,) * len(node.inputs)
    node.saved_versions = ()


def _add(total, grad):
    return np.array(grad) if total is None else total + grad


class _Wanted:
    __slots__ = ("tensor", "grad_sum")

    def __init__(self, tensor):
        self.tensor, self.grad_sum = tensor, None


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of `outputs` (weighted by `grad_outputs`) with respect to `inputs`, as a tuple, without
    touching any `.grad` (PyTorch's torch.autograd.grad). An input the outputs do not depend on raises
    unless `allow_unused` (then None, or zeros with `materialize_grads`)."""
    if create_graph:
        raise NotImplementedError("autograd.grad: create_graph=True (higher-order gradients) is not supported here")
    single = isinstance(outputs, TensorBase)
    outputs = [outputs] if single else list(outputs)
    inputs = [inputs] if isinstance(inputs, TensorBase) else list(inputs)
    if not all(isinstance(t, TensorBase) for t in outputs + inputs):
        raise TypeError("autograd.grad: outputs and inputs must be Tensors")
    if any(not t._requires_grad for t in inputs):
        raise RuntimeError("autograd.grad: every input must require grad")
    if grad_outputs is None or isinstance(grad_outputs, TensorBase):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    wanted = {id(t): _Wanted(t) for t in inputs}
    for index, (output, weight) in enumerate(zip(outputs, grad_outputs)):
        if weight is None:
            if output._array.size != 1:
                raise RuntimeError(f"autograd.grad: output {index} has shape {output._array.shape}; give grad_outputs "
                                   "for a non-scalar output")
            weight = np.ones(output._array.shape, output._array.dtype)
        weight = np.asarray(weight._array if isinstance(weight, TensorBase) else weight, output._array.dtype)
        if output._node is None:
            if id(output) in wanted:
                wanted[id(output)].grad_sum = _add(wanted[id(output)].grad_sum, weight)
            continue
        last = index == len(outputs) - 1
        run_backward(output, weight, bool(retain_graph) or not last, wanted)
    results = []
    for t in inputs:
        total = wanted[id(t)].grad_sum
        if total is None and not allow_unused and not materialize_grads:
            raise RuntimeError("autograd.grad: one of the inputs was not used to compute the outputs; pass "
                               "allow_unused=True to get None for it")
        if total is None and materialize_grads:
            total = np.zeros(t._array.shape, t._array.dtype)
        results.append(None if total is None else t._wrap(total.astype(t._array.dtype, copy=False)))
    return tuple(results)
