"""`export(model, example_input, path)`: one eval-mode forward, recorded, written as an ONNX graph.

The walk starts at the model's outputs and goes back through the op that made each tensor (as `to_dot` does),
emitting each op's ONNX nodes after those of its inputs. A tensor no op made is the graph input, a parameter
or buffer (an initializer under its state_dict name), or else a constant made inside forward (an initializer
holding its value: such a tensor does not follow the input, so compute input-dependent values with ops).
"""
from __future__ import annotations

import os

import numpy as np

from ..tensor import Tensor
from . import mappings
from .trace import record

OPSET = 18  # axes of every Reduce* are an input from 18 on
IR_VERSION = 8  # the oldest that carries opset 18, so that older runtimes read the file


class Graph:
    """ONNX nodes and initializers being built, and the ONNX name given to each traced Tensor."""

    def __init__(self, onnx, names: dict):
        self.onnx, self.names = onnx, names
        self.nodes, self.initializers, self.values, self._used = [], [], {}, set()

    def fresh(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._used:
            name, n = f"{hint}_{n}", n + 1
        self._used.add(name)
        return name

    def constant(self, value, hint: str = "constant") -> str:
        """An initializer holding `value` (an array, or a number of that array's dtype)."""
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def ints(self, values, hint: str = "shape") -> str:
        return self.constant(np.asarray(list(values), np.int64), hint)

    def value(self, x) -> str:
        """The ONNX name of a Tensor argument (one not walked yet is a leaf: a layer's parameter), of a
        parameter's or buffer's array given as such (BatchNorm's running statistics), or a new constant."""
        if not isinstance(x, Tensor) and id(x) not in self.names:
            return self.constant(np.asarray(x))
        if id(x) not in self.values:
            self.values[id(x)] = self.leaf(x)
        return self.values[id(x)]

    def add(self, op_type: str, inputs, **attributes) -> str:
        """Append one node; the name of its output."""
        name = self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [name], **attributes))
        return name

    def leaf(self, x) -> str:
        return self.constant(x.numpy() if isinstance(x, Tensor) else x, self.names.get(id(x), "constant"))


def export(model, example_input, path, input_names=None, output_names=None, dynamic_batch: bool = True) -> None:
    """Run `model` once in eval mode on `example_input` (a Tensor, or a tuple of Tensors) and write the ONNX
    model (opset 18) to `path`, parameters and buffers as initializers named as in `state_dict`. With
    `dynamic_batch`, axis 0 of the inputs and outputs is a symbolic 'batch', so any batch size runs.

    An op without an ONNX counterpart raises NotImplementedError naming the op and the layer that ran it. The
    model's training mode is restored afterwards.
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("onnx.export needs the onnx package: pip install onnx (or tinygrad-cnn[onnx])") from None
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(x, Tensor) for x in inputs):
        raise TypeError(f"onnx.export: example_input must be a Tensor or a tuple of Tensors, got "
                        f"{type(example_input).__name__}")
    input_names = _names(input_names, "input", len(inputs), "input_names")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        outputs, producers = record(model, inputs)
    finally:
        for module, training in modes:
            module.training = training
    single = isinstance(outputs, Tensor)
    outputs = (outputs,) if single else tuple(outputs)
    if not all(isinstance(y, Tensor) for y in outputs):
        raise TypeError("onnx.export: the model must return a Tensor or a tuple of Tensors")
    output_names = _names(output_names, "output", len(outputs), "output_names")

    states = [(name, t) for name, t in (*model.named_parameters(), *model.named_buffers()) if t is not None]
    named = {id(t): name for name, t in states} | {id(t.numpy()): name for name, t in states}
    batch = inputs[0].shape[0] if dynamic_batch and inputs[0].ndim else None
    graph = Graph(onnx, named)
    graph._used.update(output_names)
    for x, name in zip(inputs, input_names):
        graph.values[id(x)] = name
        graph._used.add(name)
    results = [_walk(graph, y, producers) for y in outputs]
    used = {name for node in graph.nodes for name in node.input} | set(results)
    for name in input_names:
        if name not in used:
            raise ValueError(f"onnx.export: no output depends on input {name!r} through recorded ops: forward uses "
                             "its values outside the ops (as Embedding does with its indices, or a NumPy mask "
                             "would), so the export would hold them as constants of the example input")
    for result, name in zip(results, output_names):
        graph.nodes.append(onnx.helper.make_node("Identity", [result], [name]))

    def info(name, t):
        shape = list(t.shape)
        if batch is not None and shape and shape[0] == batch:
            shape[0] = "batch"
        return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(t.dtype), shape)

    body = onnx.helper.make_graph(graph.nodes, type(model).__name__, [info(n, x) for n, x in zip(input_names, inputs)],
                                  [info(n, y) for n, y in zip(output_names, outputs)], graph.initializers)
    proto = onnx.helper.make_model(body, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   ir_version=IR_VERSION, producer_name="tinygrad_cnn")
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))


def _names(names, stem: str, count: int, argument: str) -> list:
    if names is None:
        return [stem] if count == 1 else [f"{stem}{i}" for i in range(count)]
    names = list(names)
    if len(names) != count or len(set(names)) != count:
        raise ValueError(f"onnx.export: {argument} must give {count} distinct name(s), got {names}")
    return names


def _walk(graph: Graph, root: Tensor, producers: dict) -> str:
    """Emit the nodes computing `root` (each producer after its inputs, without recursion); its ONNX name."""
    stack = [(root, False)]
    while stack:
        tensor, ready = stack.pop()
        if id(tensor) in graph.values:
            continue
        producer = producers.get(id(tensor))
        if producer is None:
            graph.value(tensor)
        elif not ready:
            stack.append((tensor, True))
            stack.extend((x, False) for x in producer.inputs if id(x) not in graph.values)
        else:
            for x, version in zip(producer.inputs, producer.read):
                _check_unchanged(x, version, producer, producers)
            graph.values[id(producer.outputs[0])] = _emit(graph, producer)  # every mapped op has one output
    _check_unchanged(root, root._version, None, producers)
    return graph.values[id(root)]


def _check_unchanged(tensor: Tensor, version: int, reader, producers: dict) -> None:
    """Refuse a tensor read (by `reader`, or as an output) after an in-place change: the export records ops,
    and the write (`out += x`, item assignment) is not one, so the graph would hold the value before it."""
    maker = producers.get(id(tensor))
    if maker is None or maker.made[[id(y) for y in maker.outputs].index(id(tensor))] == version:
        return
    read = f"{reader.name} (in layer {reader.layer}) read it" if reader else "it was returned"
    raise ValueError(f"onnx.export: the result of {maker.name} (in layer {maker.layer}) was changed in place "
                     f"before {read}; write the change out of place (out = out + x, not out += x) to export it")


def _emit(graph: Graph, producer) -> str:
    emit = mappings.FUNCTIONS.get(producer.function)
    if emit is None:
        raise NotImplementedError(f"onnx.export: op {producer.name} (in layer {producer.layer}) has no "
                                  f"ONNX mapping; build the layer from ops that have one, or leave it out of the "
                                  f"exported model")
    return emit(graph, producer, *producer.args, **producer.kwargs)
