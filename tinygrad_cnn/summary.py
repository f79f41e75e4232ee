"""Know a network before training it: feature-map sizes, receptive fields, parameters and cost.

Three rules do the work:
- the next feature-map size is (W − F + 2P)/S + 1, or with dilation D floor((W + 2P − D·(F−1) − 1)/S) + 1;
- a layer with kernel K widens the receptive field by (K − 1)·jump, where jump is the product of the
  strides before it (so with stride 1 each layer adds K − 1);
- a conv layer costs H·W·K²·N·M multiply-adds (H×W output, N input and M output channels, K×K kernel),
  H·W·N·M for a 1×1 conv; grouped convs divide that by the number of groups.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .autograd import no_grad
from .ops.kernels.geometry import conv2d_output_size, kernel_span, pair, same_padding
from .tensor import Tensor


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis: floor((size + 2P − D·(K−1) − 1)/S) + 1.

    Raises ValueError when the (dilated) kernel does not fit in the padded input; warns when the division
    is not exact, saying how many rows/columns at the end the layer never reads.
    """
    span = kernel_span(kernel, dilation)
    padded = size + 2 * padding
    if stride < 1 or kernel < 1 or dilation < 1 or padding < 0:
        raise ValueError(f"conv_output_size: need kernel, stride, dilation >= 1 and padding >= 0; got "
                         f"kernel={kernel}, stride={stride}, dilation={dilation}, padding={padding}")
    if span > padded:
        raise ValueError(f"conv_output_size: a kernel spanning {span} does not fit in an input of {size} "
                         f"padded by {padding} on each side ({padded})")
    dropped = (padded - span) % stride
    if dropped:
        warnings.warn(f"conv_output_size: (size {size} + 2·{padding} − span {span}) is not divisible by stride "
                      f"{stride}; the last {dropped} row(s)/column(s) are never read", stacklevel=2)
    return conv2d_output_size(size, kernel, stride, padding, dilation)


def conv_macs(out_height: int, out_width: int, kernel_size, in_channels: int, out_channels: int,
              groups: int = 1) -> int:
    """Multiply-adds of one conv on one image: H·W·K²·N·M / groups (H·W·N·M for a 1×1 kernel)."""
    kh, kw = pair(kernel_size, "kernel_size", "conv_macs")
    return out_height * out_width * kh * kw * (in_channels // groups) * out_channels


@dataclass
class LayerInfo:
    """One leaf layer as `summary` measured it."""

    name: str
    kind: str
    input_shape: tuple
    output_shape: tuple
    params: int
    trainable_params: int
    macs: int | None  # None: unknown (a custom layer without a `macs` method)
    receptive_field: int | None  # None: the layer sees the whole input (after flatten / global pooling)
    jump: int | None
    start: float | None


def _geometry(module):
    """(kernel, stride, padding, dilation, extra) per axis for conv and pooling layers, else None; `extra` is the
    padding that 'same' adds at the bottom/right only (for an even kernel)."""
    kind = type(module).__name__
    if kind not in ("Conv2d", "MaxPool2d", "AvgPool2d"):
        return None
    kernel = pair(module.kernel_size, "kernel_size", kind)
    stride = pair(module.stride if module.stride is not None else module.kernel_size, "stride", kind)
    dilation = pair(getattr(module, "dilation", 1), "dilation", kind)
    padding, extra = module.padding, (0, 0)
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding, extra = zip(*(same_padding(k, d) for k, d in zip(kernel, dilation)))
    return kernel, stride, pair(padding, "padding", kind), dilation, extra


def _layer_macs(module, input_shape, output_shape):
    kind = type(module).__name__
    if kind == "Conv2d":
        n, _, h, w = output_shape
        return n * conv_macs(h, w, module.kernel_size, module.in_channels, module.out_channels, module.groups)
    if kind == "Linear":
        return int(np.prod(output_shape[:-1])) * module.in_features * module.out_features
    if hasattr(module, "macs"):
        return int(module.macs(input_shape, output_shape))
    if kind in _NO_MULTIPLY_ADDS:
        return 0
    return None


# Layers that do no multiply-adds in the sense of the cost rule above (comparisons, sums, elementwise maps).
_NO_MULTIPLY_ADDS = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Flatten", "Dropout", "Identity", "MaxPool2d",
                     "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d"}
# Layers after which every output sees the whole input.
_GLOBAL = {"Linear", "Flatten", "AdaptiveAvgPool2d"}


def _leaves(model, prefix=""):
    children = list(model.named_children())
    if not children:
        yield prefix or type(model).__name__, model
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


class Summary:
    """What `summary` measured: `layers` (a list of LayerInfo), `total_params`, `trainable_params`,
    `total_macs` (the sum of known MACs); `str()` gives a table."""

    def __init__(self, model_name, input_shape, layers, total_params, trainable_params):
        self.model_name, self.input_shape, self.layers = model_name, tuple(input_shape), layers
        self.total_params, self.trainable_params = total_params, trainable_params
        self.total_macs = sum(layer.macs or 0 for layer in layers)
        self.unknown_macs = [layer.name for layer in layers if layer.macs is None]

    def __str__(self):
        header = ("Layer (type)", "Output shape", "Params", "Mult-adds", "RF")
        rows = [(f"{l.name} ({l.kind})", str(list(l.output_shape)), f"{l.params:,}",
                 "?" if l.macs is None else f"{l.macs:,}", "all" if l.receptive_field is None else str(l.receptive_field))
                for l in self.layers]
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        line = "  ".join([f"{{:<{widths[0]}}}"] + [f"{{:>{w}}}" for w in widths[1:]])
        rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
        out = [f"{self.model_name} on input {list(self.input_shape)}", rule, line.format(*header), rule]
        out += [line.format(*r) for r in rows]
        out += [rule, f"Total params: {self.total_params:,}", f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                f"Total mult-adds: {self.total_macs:,} ({self.total_macs / 1e9:.2f} G)"]
        if self.unknown_macs:
            out.append(f"Mult-adds unknown for: {', '.join(self.unknown_macs)} (define a `macs` method)")
        return "\n".join(out)

    __repr__ = __str__


def summary(model, input_shape, dtype=np.float32) -> Summary:
    """Run `model` once on zeros of `input_shape` (batch axis included) without recording a graph and
    report each leaf layer's output shape, parameters, multiply-adds and receptive field.

    A custom layer shows its shapes and parameters; its MACs show as unknown unless it defines
    `macs(self, input_shape, output_shape) -> int`. Receptive fields follow the data: a layer whose input
    was not made by another layer directly (a residual sum, a reshape inside forward) takes the largest
    receptive field seen so far, which is exact for chains and residual blocks.
    """
    records, field_of = [], {}  # field_of: id(output tensor) -> (receptive field, jump, start)
    keep_alive = []  # holds outputs so their ids are not reused during the pass
    largest = [(1, 1, 0.5)]  # a single input pixel: field 1, jump 1, centre at 0.5

    def measure(name, module, forward):
        def wrapped(x, *args, **kwargs):
            out = forward(x, *args, **kwargs)
            field = field_of.get(id(x), max(largest, key=lambda f: f[0] or 1 << 62))
            field = _propagate(module, field, x.shape, out.shape)
            field_of[id(out)] = field
            keep_alive.append(out)
            largest.append(field)
            records.append((name, module, tuple(x.shape), tuple(out.shape), field))
            return out
        return wrapped

    leaves = list(_leaves(model))
    for name, module in leaves:
        object.__setattr__(module, "forward", measure(name, module, module.forward))
    try:
        with no_grad():
            model(Tensor(np.zeros(input_shape, dtype)))
    finally:
        for _, module in leaves:
            object.__delattr__(module, "forward")

    seen, layers = set(), []
    for name, module, in_shape, out_shape, (rf, jump, start) in records:
        own = [p for p in module.parameters() if id(p) not in seen]
        seen.update(id(p) for p in own)
        layers.append(LayerInfo(name, type(module).__name__, in_shape, out_shape,
                                sum(p.numel() for p in own), sum(p.numel() for p in own if p.requires_grad),
                                _layer_macs(module, in_shape, out_shape), rf, jump, start))
    params = list(model.parameters())
    return Summary(type(model).__name__, input_shape, layers, sum(p.numel() for p in params),
                   sum(p.numel() for p in params if p.requires_grad))


def _propagate(module, field, in_shape, out_shape):
    """Receptive field, jump and start of a layer's output from those of its input, checking the
    measured output size against the size rule."""
    rf, jump, start = field
    kind = type(module).__name__
    if rf is None or kind in _GLOBAL:
        return (None, None, None)
    geometry = _geometry(module)
    if geometry is None:
        return field
    kernel, stride, padding, dilation, extra = geometry
    for axis in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = conv_output_size(in_shape[2 + axis] + extra[axis], kernel[axis], stride[axis], padding[axis],
                                        dilation[axis])
        if expected != out_shape[2 + axis]:
            raise RuntimeError(f"summary: {kind} made {out_shape[2 + axis]} along axis {2 + axis} of input "
                               f"{in_shape}, but the size rule gives {expected}")
    span = kernel_span(kernel[0], dilation[0])  # receptive fields are reported along the height axis
    return (rf + (span - 1) * jump, jump * stride[0], start + ((span - 1) / 2 - padding[0]) * jump)


def to_dot(tensor) -> str:
    """The computation graph behind `tensor` as Graphviz DOT text: ops as boxes with their output shape,
    leaves as ellipses (filled when they require grad). Render with `dot -Tpng graph.dot -o graph.png`.
    Call it before `backward()` (or backward with retain_graph=True): backward frees the graph."""
    lines = ["digraph graph_of_tensor {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    ids, pending = {}, []

    def name_of(t):
        key = id(t._node) if t._node is not None else id(t)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            pending.append(t)
        return ids[key]

    name_of(tensor)
    while pending:
        t = pending.pop()
        me = name_of(t)
        shape = "×".join(map(str, t.shape)) or "scalar"
        if t._node is None:
            style = ', style=filled, fillcolor="#cde4ff"' if t.requires_grad else ""
            lines.append(f'  {me} [label="leaf\\n{shape}", shape=ellipse{style}];')
            continue
        lines.append(f'  {me} [label="{t._node.ctx.function.__name__}\\n{shape}", shape=box];')
        for parent in t._node.inputs:
            if parent is not None:
                lines.append(f"  {name_of(parent)} -> {me};")
    lines.append("}")
    return "\n".join(lines)
