"""Containers keyed by name or position: ModuleDict, ParameterList, ParameterDict (PyTorch's semantics: their
members register with the module that holds them, named by key or index)."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..tensor import Tensor
from .module import Module, Parameter, _list_index


class _KeyedContainer(Module):
    """What ModuleDict and ParameterDict share: a dict interface over one of the module's registries."""

    _kind = ""

    def __init__(self, items=None):
        super().__init__()
        if items is not None:
            self.update(items)

    def _members(self) -> OrderedDict:
        return self._modules if self._kind == "module" else self._parameters

    def __getitem__(self, key: str):
        try:
            return self._members()[key]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no {self._kind} {key!r}; its keys are "
                           f"{list(self._members())}") from None

    def __delitem__(self, key: str) -> None:
        del self._members()[key]

    def __len__(self) -> int:
        return len(self._members())

    def __iter__(self):
        return iter(self._members())

    def __contains__(self, key) -> bool:
        return key in self._members()

    def keys(self):
        return self._members().keys()

    def values(self):
        return self._members().values()

    def items(self):
        return self._members().items()

    def pop(self, key: str):
        value = self[key]
        del self[key]
        return value

    def clear(self) -> None:
        self._members().clear()

    def update(self, items) -> None:
        for key, value in (items.items() if hasattr(items, "items") else items):
            self[key] = value


class ModuleDict(_KeyedContainer):
    """An ordered dict of modules: `d[key]`, `d[key] = module`, `del d[key]`, keys/values/items, update, pop."""

    _kind = "module"

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)


def _as_parameter(value, where: str) -> Parameter:
    """Parameters stay as they are; other Tensors and arrays become Parameters (requiring grad), as in PyTorch."""
    if isinstance(value, Parameter) or value is None:
        return value
    if isinstance(value, Tensor):
        return Parameter(value.numpy())
    if isinstance(value, np.ndarray):
        return Parameter(value)
    raise TypeError(f"{where}: expected an nn.Parameter, Tensor or array, got {type(value).__name__}")


class ParameterList(Module):
    """A list of parameters registered as '0', '1', …: indexing, assignment, len, iteration, append, extend."""

    def __init__(self, values=None):
        super().__init__()
        self.extend(values or [])

    def __getitem__(self, index):
        values = list(self._parameters.values())
        if isinstance(index, slice):
            return ParameterList(values[index])
        return values[_list_index(index, len(values))]

    def __setitem__(self, index, value) -> None:
        self.register_parameter(str(_list_index(index, len(self))), _as_parameter(value, "ParameterList"))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList.append"))
        return self

    def extend(self, values) -> ParameterList:
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return _describe(enumerate(self))


def _describe(pairs) -> str:
    return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                     for k, p in pairs)


class ParameterDict(_KeyedContainer):
    """An ordered dict of parameters registered under their keys; Tensors and arrays become Parameters."""

    _kind = "parameter"

    def __setitem__(self, key: str, value) -> None:
        self.register_parameter(key, _as_parameter(value, "ParameterDict"))

    def extra_repr(self) -> str:
        return _describe(self.items())
