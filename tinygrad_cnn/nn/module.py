"""Module, Parameter and the containers (Sequential, ModuleList, Identity).

A Module registers the Parameters, sub-Modules and buffers assigned to it as attributes, which is what
`parameters()`, `state_dict()` and `train()` walk. Names follow PyTorch's, dotted by path ('features.0.weight'),
so state dicts exchange with PyTorch models of the same structure.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from ..autograd import no_grad
from ..device import to_arguments, unsupported
from ..functions import tensor
from ..tensor import Tensor
from .hooks import RemovableHandle, add_hook, call_with_backward_hooks


class Parameter(Tensor):
    """A Tensor that requires grad (by default) and registers itself when assigned to a Module attribute."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` found: expected keys absent from the dict, and keys the model does not have."""
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of every layer and model: subclasses set attributes in `__init__` and define `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        for hooks in ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks"):
            object.__setattr__(self, hooks, OrderedDict())
        object.__setattr__(self, "_non_persistent", set())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        """forward(*args, **kwargs), with the hooks around it: each forward pre-hook may replace args, each
        forward hook the output, and full backward hooks see the gradients of inputs and outputs."""
        hooks = self.__dict__
        if not (hooks["_forward_pre_hooks"] or hooks["_forward_hooks"] or hooks["_backward_hooks"]):
            return self.forward(*args, **kwargs)
        for hook in list(hooks["_forward_pre_hooks"].values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        if hooks["_backward_hooks"]:
            output = call_with_backward_hooks(self, hooks["_backward_hooks"], args, kwargs)
        else:
            output = self.forward(*args, **kwargs)
        for hook in list(hooks["_forward_hooks"].values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # ---- hooks -----------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """hook(module, args) runs before forward; a non-None result (a tuple, or one value) replaces args."""
        return add_hook(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """hook(module, args, output) runs after forward; a non-None result replaces the output."""
        return add_hook(self._forward_hooks, hook)

    def register_full_backward_hook(self, hook) -> RemovableHandle:
        """hook(module, grad_input, grad_output) runs when the gradients with respect to the module's floating
        Tensor inputs are computed (grad_input is (None,) when no input requires grad); a non-None result
        replaces grad_input. Both are tuples of Tensors."""
        return add_hook(self._backward_hooks, hook)

    # ---- registration ----------------------------------------------------------------------
    def _registries(self):
        try:
            return self.__dict__["_parameters"], self.__dict__["_buffers"], self.__dict__["_modules"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes") \
                from None

    def __setattr__(self, name, value):
        parameters, buffers, modules = self._registries()
        if isinstance(value, Parameter):
            self._forget(name, keep=parameters)
            parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=modules)
            modules[name] = value
        elif name in parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' "
                                "(nn.Parameter or None expected)")
            parameters[name] = None
        elif name in buffers:
            buffers[name] = _as_buffer(name, value)
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                "(nn.Module or None expected)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # called only when normal lookup fails
        for registry in self._registries():
            if name in registry:
                return registry[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in self._registries():
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def _forget(self, name, keep):
        """Remove `name` from every registry but `keep` (where it is about to be set, keeping its position)
        and from the plain attributes."""
        for registry in self._registries():
            if registry is not keep:
                registry.pop(name, None)
        self.__dict__.pop(name, None)

    @staticmethod
    def _check_name(kind, name):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be an nn.Parameter or None, got {type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        """Register state that is not trained (e.g. BatchNorm's running mean), saved in `state_dict` unless
        persistent=False.

        `value` is a Tensor (kept as is), an array (copied into a new Tensor) or None (registered but left
        out of `state_dict`).
        """
        self._check_name("buffer", name)
        self._forget(name, keep=self._buffers)
        self._buffers[name] = _as_buffer(name, value)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_name("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be an nn.Module or None, got {type(module).__name__}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    # ---- traversal -------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, depth first, each module once (or under
        every name that reaches it, with remove_duplicate=False)."""
        seen, stack = (set() if memo is None else memo), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate and id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def get_submodule(self, target: str) -> Module:
        """The descendant at dotted path `target` ('' is this module), e.g. 'layer1.0.conv1'."""
        module = self
        for i, name in enumerate(target.split(".") if target else []):
            child = module._modules.get(name)
            if child is None:
                raise AttributeError(f"{type(self).__name__}.get_submodule: {'.'.join(target.split('.')[:i + 1])!r} "
                                     f"is not a submodule of {type(module).__name__} (children: "
                                     f"{list(module._modules)})")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path `target`, e.g. 'layer1.0.conv1.weight'."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if module._parameters.get(name) is None:
            raise AttributeError(f"{type(self).__name__}.get_parameter: {type(module).__name__} has no parameter "
                                 f"{name!r}")
        return module._parameters[name]

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def _named_members(self, registry_name, prefix, recurse, remove_duplicate):
        seen = set()
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse
                   else [(prefix, self)])
        for module_prefix, module in modules:
            for name, member in getattr(module, registry_name).items():
                if member is None or (remove_duplicate and id(member) in seen):
                    continue
                seen.add(id(member))
                yield (f"{module_prefix}.{name}" if module_prefix else name), member

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once unless
        remove_duplicate=False."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn) -> Module:
        """Call `fn(module)` on every descendant and then on this module (e.g. to initialise weights)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (batch statistics, active dropout) on this module and all descendants."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: `train(False)`."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters: set them to None (PyTorch's default) or to zeros."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set requires_grad on every parameter (False freezes the module)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, *args, device=None, dtype=None, non_blocking: bool = False) -> Module:
        """`to(device)`, `to(dtype)`, `to(device, dtype)` or `to(tensor)` as PyTorch's: the device must be the CPU
        (the only one there is); floating parameters and buffers are converted to `dtype` in place."""
        dtype, _ = to_arguments(f"{type(self).__name__}.to", args, dtype, device, Tensor)
        return self if dtype is None else self._cast(dtype)

    def cpu(self) -> Module:
        return self

    def cuda(self, device=None) -> Module:
        raise RuntimeError(f"{type(self).__name__}.cuda: " + unsupported("CUDA"))

    def _cast(self, dtype) -> Module:
        """Convert floating parameters and buffers to `dtype` in place (e.g. float64 for gradcheck)."""
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.to: expected a device ('cpu') or a floating dtype, got "
                            f"{dtype!r}") from None
        if dtype.kind != "f" or dtype.itemsize < 4:
            raise TypeError(f"{type(self).__name__}.to: only float32 and float64 are supported, got {dtype}")
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.dtype.kind == "f":
                tensor.data = tensor.numpy().astype(dtype)
                tensor._version += 1
                if tensor.grad is not None:
                    tensor.grad = Tensor(tensor.grad.numpy(), dtype=dtype)
        return self

    def double(self) -> Module:
        return self._cast(np.float64)

    def float(self) -> Module:
        return self._cast(np.float32)

    # ---- state -----------------------------------------------------------------------------
    def _state_items(self, prefix: str = ""):
        """(dotted name, tensor) for every parameter and buffer, in PyTorch's state_dict order.

        Unlike `named_parameters`, a shared tensor appears under every name that reaches it, as in PyTorch.
        """
        for registry in (self._parameters, self._buffers):
            for name, tensor in registry.items():
                if tensor is not None and not (registry is self._buffers and name in self._non_persistent):
                    yield prefix + name, tensor
        for name, module in self.named_children():
            yield from module._state_items(f"{prefix}{name}.")

    def state_dict(self) -> OrderedDict:
        """Name → ndarray copy of every parameter and buffer ('features.0.weight', 'bn.running_mean', ...)."""
        return OrderedDict((name, tensor.numpy().copy()) for name, tensor in self._state_items())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy the values of `state_dict` (arrays, Tensors, or anything np.asarray accepts) into this model.

        Every check runs before any value is copied: a shape mismatch always raises, naming the key and both
        shapes; with `strict`, missing and unexpected keys raise, listing them all. Values are cast to each
        tensor's dtype. Returns the missing and unexpected keys.
        """
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        values = {k: np.asarray(v.numpy() if isinstance(v, Tensor) else v) for k, v in state_dict.items() if k in own}
        problems = [f"size mismatch for {k}: copying a param with shape {v.shape} from checkpoint, the shape in "
                    f"current model is {own[k].shape}" for k, v in values.items() if v.shape != own[k].shape]
        if strict:
            if unexpected:
                problems.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(problems))
        with no_grad():
            for key, value in values.items():
                own[key].copy_(value)
        return IncompatibleKeys(missing, unexpected)

    # ---- repr ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments shown inside this module's parentheses in its repr; layers override it."""
        return ""

    def __repr__(self) -> str:
        lines = self.extra_repr().split("\n") if self.extra_repr() else []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _as_buffer(name, value):
    if value is None:
        return None
    if isinstance(value, Parameter):
        raise TypeError(f"buffer '{name}': got an nn.Parameter; register it with register_parameter instead")
    return value if isinstance(value, Tensor) else tensor(np.asarray(value))


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: indexing by int (negative from the end) and slice, assignment
    by index, len, iteration and append."""

    def _from_slice(self, items):
        raise NotImplementedError

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return self._from_slice(items[index])
        return items[_list_index(index, len(items))][1]

    def __setitem__(self, index, module: Module) -> None:
        self.add_module(list(self._modules)[_list_index(index, len(self))], module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module):
        self.add_module(str(len(self)), module)
        return self


class Sequential(_ModuleSequence):
    """Modules applied in order; indexable by int and slice. Built from modules or one OrderedDict of them."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def _from_slice(self, items):
        return Sequential(OrderedDict(items))  # keeps the names, as PyTorch's


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters register with the parent (named '0', '1', ...)."""

    def __init__(self, modules=None):
        super().__init__()
        self.extend(modules or [])

    def _from_slice(self, items):
        return ModuleList(module for _, module in items)

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self


def _list_index(index, length: int) -> int:
    """`index` as a position in [0, length), negative indices counted from the end, as a list's."""
    if not isinstance(index, (int, np.integer)):
        raise TypeError(f"indices must be integers or slices, not {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for a container of {length} modules")
    return int(index) % length


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer from a model)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
