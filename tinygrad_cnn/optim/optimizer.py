"""Optimizer: parameter groups, zero_grad, and state_dict / load_state_dict in PyTorch's layout.

Subclasses implement `_update(param, grad, state, group)` for one parameter; `step()` calls it for every
parameter that has a gradient, under `no_grad`, so updates change parameter arrays in place and record no graph.
"""
import copy

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


class Optimizer:
    """Holds `param_groups` (dicts: 'params' plus the options, each group may override the defaults) and
    `state` (per parameter: the update's running arrays, e.g. momentum)."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self._step_count = 0  # steps taken; a scheduler reads it to warn when it is stepped first
        self.state = {}  # parameter → dict; keys compare by identity (Tensor hashes by id)
        self.param_groups = []
        groups = [params] if isinstance(params, Tensor) else list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own options; options it omits take the optimizer's defaults."""
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(f"{type(self).__name__}: can only optimize leaf Tensors that require grad, got "
                                f"{type(p).__name__}" + (f" of shape {p.shape}" if isinstance(p, Tensor) else ""))
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: some parameters appear more than once (in one group or "
                             "in several)")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        group["params"] = params
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters: set them to None (PyTorch's default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient, with its group's options."""
        self._step_count += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad.numpy(), self.state.setdefault(p, {}), group)

    def _update(self, param: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    # ---- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {name: array or number}}, 'param_groups': [{options..., 'params': [indices]}]},
        parameters numbered in group order as PyTorch does; arrays are copies."""
        index_of, groups = {}, []
        for group in self.param_groups:
            indices = [index_of.setdefault(id(p), len(index_of)) for p in group["params"]]
            groups.append({**{k: copy.deepcopy(v) for k, v in group.items() if k != "params"}, "params": indices})
        state = {index_of[id(p)]: copy.deepcopy(s) for p, s in self.state.items() if id(p) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by `state_dict` from an optimizer over parameters of the same shapes,
        so the next `step()` is the one the saved optimizer would have taken. Arrays are cast to each
        parameter's dtype."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state has {len(saved_groups)} parameter "
                             f"groups, this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the state and {len(group['params'])} in this optimizer")
        param_of = {int(index): p for saved, group in zip(saved_groups, self.param_groups)
                    for index, p in zip(saved["params"], group["params"])}
        new_state = {}
        for index, saved_state in state_dict["state"].items():
            param = param_of[int(index)]
            new_state[param] = {name: _cast_like(value, param, f"state[{index}][{name!r}]", type(self).__name__)
                                for name, value in saved_state.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines + [")"])


def _cast_like(value, param, where, optimizer):
    """A copy of a saved state value: float arrays of the parameter's shape take its dtype; numbers stay."""
    if isinstance(value, Tensor):
        value = value.numpy()
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        return copy.deepcopy(value.item() if isinstance(value, np.ndarray) else value)
    if value.shape != param.shape:
        raise ValueError(f"{optimizer}.load_state_dict: {where} has shape {value.shape}, but its parameter has "
                         f"shape {param.shape}")
    return value.astype(param.dtype) if value.dtype.kind == "f" else value.copy()
