"""Each op (Function) of the package as ONNX nodes.

An emitter gets the graph, the recorded call and the call's own arguments (Tensors and constants) and returns
the ONNX name of the op's output. Shapes baked into a node keep the batch axis free: a reshape that keeps axis 0
says 0 there ("copy it from the input"), an expand says 1 wherever it keeps an input axis.
"""
from __future__ import annotations

import operator

import numpy as np

from ..ops import activation as A, conv as C, elementwise as E, matmul as M, movement as V, normalization as N, pool as P, reduce as R
from ..ops.einsum import Einsum, explicit
from ..ops.scatter import Scatter

FUNCTIONS = {}


def maps(*functions):
    def register(emit):
        for function in functions:
            FUNCTIONS[function] = emit
        return emit
    return register


def _unsupported(call, what: str):
    return NotImplementedError(f"onnx.export: op {call.function.__name__} (in layer {call.layer}) {what}, which "
                               "has no ONNX mapping")


# ---- elementwise --------------------------------------------------------------------------
_BINARY = {E.Add: "Add", E.Sub: "Sub", E.Mul: "Mul", E.Div: "Div", E.Pow: "Pow", E.Maximum: "Max", E.Minimum: "Min"}
_UNARY = {E.Neg: "Neg", E.Abs: "Abs", E.Exp: "Exp", E.Log: "Log", E.Sqrt: "Sqrt", E.ReLU: "Relu",
          E.Sigmoid: "Sigmoid", E.Tanh: "Tanh", E.Sin: "Sin", E.Cos: "Cos",
          E.Erf: "Erf", E.Atan: "Atan"}


@maps(*_BINARY)
def binary(g, call, a, b):
    return g.add(_BINARY[call.function], [g.value(a), g.value(b)])


@maps(*_UNARY)
def unary(g, call, x):
    return g.add(_UNARY[call.function], [g.value(x)])


@maps(E.LeakyReLU)
def leaky_relu(g, call, x, slope):
    return g.add("LeakyRelu", [g.value(x)], alpha=float(slope))


@maps(E.Dropout)
def dropout(g, call, x, p, seed):
    """A dropout the forward recorded (F.dropout with training=True; a Dropout layer in eval mode records
    none): ONNX's Dropout in training mode, which draws a mask of its own."""
    ratio = g.constant(np.asarray(p, x.dtype), "ratio")
    return g.add("Dropout", [g.value(x), ratio, g.constant(np.asarray(True), "training_mode")])


@maps(A.GELU)
def gelu(g, call, x, approximate):
    """ONNX has Gelu only from opset 20: ½x(1 + erf(x/√2)), or with approximate='tanh'
    ½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    source, dtype = g.value(x), x.dtype
    if approximate == "tanh":
        cubic = g.add("Mul", [g.add("Mul", [source, source]), source])
        inner = g.add("Add", [source, g.add("Mul", [cubic, g.constant(np.asarray(0.044715, dtype), "cubic")])])
        curve = g.add("Tanh", [g.add("Mul", [inner, g.constant(np.asarray(np.sqrt(2 / np.pi), dtype), "scale")])])
    else:
        curve = g.add("Erf", [g.add("Div", [source, g.constant(np.asarray(np.sqrt(2.0), dtype), "sqrt2")])])
    half = g.add("Mul", [source, g.constant(np.asarray(0.5, dtype), "half")])
    return g.add("Mul", [half, g.add("Add", [curve, g.constant(np.asarray(1, dtype), "one")])])


@maps(E.Clip)
def clip(g, call, x, low, high):
    bounds = ["" if v is None else g.constant(np.asarray(v, x.dtype), "clip_bound") for v in (low, high)]
    return g.add("Clip", [g.value(x), *bounds])


@maps(E.Cast)
def cast(g, call, x, dtype):
    return g.add("Cast", [g.value(x)], to=g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


_COMPARE = {operator.eq: "Equal", operator.ne: "Equal", operator.lt: "Less", operator.le: "LessOrEqual",
            operator.gt: "Greater", operator.ge: "GreaterOrEqual"}


@maps(E.Compare)
def compare(g, call, a, b, op):
    if op not in _COMPARE:
        raise _unsupported(call, f"compares with {op!r}")
    out = g.add(_COMPARE[op], [g.value(a), g.value(b)])
    return g.add("Not", [out]) if op is operator.ne else out


@maps(E.Where)
def where(g, call, condition, a, b):
    mask = g.value(condition)
    if np.asarray(condition).dtype != bool:
        mask = g.add("Cast", [mask], to=g.onnx.TensorProto.BOOL)
    return g.add("Where", [mask, g.value(a), g.value(b)])


# ---- movement -----------------------------------------------------------------------------
@maps(V.Reshape)
def reshape(g, call, x, shape):
    target = list(call.outputs[0].shape)
    if x.ndim and target and target[0] == x.shape[0] and 0 not in target:
        target[0] = 0  # ONNX: copy axis 0 from the input, so the batch size follows it
    return g.add("Reshape", [g.value(x), g.ints(target)])


@maps(V.Permute)
def permute(g, call, x, axes):
    return g.add("Transpose", [g.value(x)], perm=[int(a) % max(x.ndim, 1) for a in axes])


@maps(V.Expand)
def expand(g, call, x, shape):
    out = call.outputs[0].shape
    kept = (1,) * (len(out) - x.ndim) + x.shape
    return g.add("Expand", [g.value(x), g.ints(1 if k == n else n for k, n in zip(kept, out))])


@maps(V.Pad)
def pad(g, call, x, pad_width, value):
    if x.ndim == 0:
        return g.add("Identity", [g.value(x)])
    pads = [before for before, _ in pad_width] + [after for _, after in pad_width]
    return g.add("Pad", [g.value(x), g.ints(pads, "pads"), g.constant(np.asarray(value, x.dtype), "pad_value")],
                 mode="constant")


@maps(V.Concatenate)
def concatenate(g, call, axis, *tensors):
    return g.add("Concat", [g.value(t) for t in tensors], axis=int(axis))


@maps(V.GetItem)
def get_item(g, call, x, index):
    """Basic indexing: one Slice for the slices, a Gather per int (which drops its axis), Unsqueeze for None.
    An integer array on one axis, every other axis whole, is one Gather (as interpolation and embeddings pick)."""
    parts = list(index) if isinstance(index, tuple) else [index]
    ellipses = [i for i, p in enumerate(parts) if p is Ellipsis]
    if len(ellipses) > 1:
        raise _unsupported(call, "indexes with two Ellipses")
    if ellipses:
        used = sum(p is not None for p in parts) - 1
        parts[ellipses[0]:ellipses[0] + 1] = [slice(None)] * (x.ndim - used)
    parts += [slice(None)] * (x.ndim - sum(p is not None for p in parts))
    arrays = [i for i, p in enumerate(parts) if isinstance(p, (np.ndarray, list))]
    if arrays:
        picked = np.asarray(parts[arrays[0]])
        if len(arrays) > 1 or picked.dtype.kind not in "iu" or any(
                not isinstance(p, slice) or p != slice(None) for i, p in enumerate(parts) if i != arrays[0]):
            raise _unsupported(call, "indexes with a mask, several arrays, or an array beside ints, slices or None")
        return g.add("Gather", [g.value(x), g.constant(picked.astype(np.int64), "indices")], axis=arrays[0])
    if not all(p is None or isinstance(p, (slice, int, np.integer)) and not isinstance(p, bool) for p in parts):
        raise _unsupported(call, f"indexes with {index!r}")
    out, axis, starts, ends, axes, steps, picks, new_axes = g.value(x), 0, [], [], [], [], [], []
    for position, part in enumerate(p for p in parts):
        if part is None:
            new_axes.append(position - len(picks))
            continue
        size = x.shape[axis]
        if isinstance(part, slice) and part != slice(None):
            start, stop, step = part.indices(size)
            starts.append(start), axes.append(axis), steps.append(step)
            ends.append(-size - 1 if step < 0 and stop < 0 else stop)  # a stop before index 0, walking backwards
        elif not isinstance(part, slice):
            picks.append((axis, int(part) % size))
        axis += 1
    if axes:
        out = g.add("Slice", [out, g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes"),
                              g.ints(steps, "steps")])
    for axis, pick in reversed(picks):
        out = g.add("Gather", [out, g.constant(np.asarray(pick, np.int64), "index")], axis=axis)
    if new_axes:
        out = g.add("Unsqueeze", [out, g.ints(new_axes, "axes")])
    return out if axes or picks or new_axes else g.add("Identity", [out])


@maps(V.Gather)
def gather(g, call, x, axis, index):
    """The index is baked in as a constant, so the exported batch size is the traced one."""
    return g.add("GatherElements", [g.value(x), g.constant(np.asarray(index, np.int64), "index")], axis=int(axis))


@maps(Scatter)
def scatter(g, call, x, src, axis, index, add):
    """ScatterElements; the index is baked in as a constant, as for gather. Only src's leading block of the
    index's shape is read, so a larger src is sliced to it first."""
    index = np.asarray(index, np.int64)
    if np.ndim(src) == 0:
        updates = g.constant(np.full(index.shape, src, x.dtype), "updates")
    else:
        updates = g.value(src)
        if tuple(src.shape) != index.shape:
            updates = g.add("Slice", [updates, g.ints([0] * index.ndim, "starts"), g.ints(index.shape, "ends")])
    return g.add("ScatterElements", [g.value(x), g.constant(index, "index"), updates], axis=int(axis),
                 reduction="add" if add else "none")


# ---- matmul, reductions, softmax ------------------------------------------------------------
@maps(Einsum)
def einsum(g, call, equation, *operands):
    inputs, output = explicit(equation, [tuple(t.shape) for t in operands])
    return g.add("Einsum", [g.value(t) for t in operands], equation=",".join(inputs) + "->" + output)


@maps(M.MatMul)
def matmul(g, call, a, b):
    return g.add("MatMul", [g.value(a), g.value(b)])


@maps(M.Linear)
def linear(g, call, x, weight, bias):
    """One Gemm (y = x·Wᵀ + b) on a batch of vectors; MatMul by Wᵀ, then Add, for other shapes."""
    if x.ndim == 2:
        return g.add("Gemm", [g.value(x), g.value(weight)] + ([] if bias is None else [g.value(bias)]), transB=1)
    product = g.add("MatMul", [g.value(x), g.add("Transpose", [g.value(weight)], perm=[1, 0])])
    return product if bias is None else g.add("Add", [product, g.value(bias)])


_REDUCE = {R.Sum: "ReduceSum", R.Max: "ReduceMax", R.Min: "ReduceMin", R.LogSumExp: "ReduceLogSumExp",
           R.Prod: "ReduceProd"}


@maps(*_REDUCE)
def reduce(g, call, x, axis, keepdims):
    axes = R.normalize_axes(axis, x.ndim, call.function.__name__.lower())
    if not axes:  # a 0-d input: nothing to reduce
        return g.add("Identity", [g.value(x)])
    return g.add(_REDUCE[call.function], [g.value(x), g.ints(axes, "axes")], keepdims=int(bool(keepdims)))


@maps(R.CumSum)
def cumsum(g, call, x, axis):
    return g.add("CumSum", [g.value(x), g.constant(np.asarray(axis, np.int64), "axis")])


@maps(R.Softmax, R.LogSoftmax)
def softmax(g, call, x, axis):
    axes = R.normalize_axes(axis, x.ndim, call.function.__name__.lower())
    if len(axes) != 1:
        raise _unsupported(call, f"normalises over several axes {axes}")
    return g.add(call.function.__name__, [g.value(x)], axis=int(axes[0]))


@maps(R.ArgReduce)
def arg_reduce(g, call, x, pick, axis, keepdims):
    op = {"argmax": "ArgMax", "argmin": "ArgMin"}.get(getattr(pick, "__name__", ""))
    if op is None or (axis is None and keepdims):
        raise _unsupported(call, f"reduces with {pick!r}, keepdims={keepdims} over axis {axis}")
    source = g.value(x)
    if axis is None:
        source, axis = g.add("Reshape", [source, g.ints([-1])]), 0
    return g.add(op, [source], axis=int(axis) % max(x.ndim, 1), keepdims=int(bool(keepdims)))


# ---- convolution and pooling ----------------------------------------------------------------
@maps(C.Conv2d)
def conv2d(g, call, x, weight, bias, stride, padding, dilation, groups, extra=(0, 0)):
    inputs = [g.value(x), g.value(weight)] + ([] if bias is None else [g.value(bias)])
    pads = [padding[0], padding[1], padding[0] + extra[0], padding[1] + extra[1]]
    return g.add("Conv", inputs, kernel_shape=list(weight.shape[2:]), strides=list(stride), pads=pads,
                 dilations=list(dilation), group=int(groups))


@maps(C.ConvTranspose2d)
def conv_transpose2d(g, call, x, weight, bias, stride, padding, dilation, groups, output_shape, extra=(0, 0)):
    """ONNX's size rule is (H − 1)·S − 2P + D·(K − 1) + 1 + output_padding: the padding is what the traced
    output adds to it (which also covers the Function's `extra` zero rows, an internal detail)."""
    extra = [output_shape[2 + i] - ((x.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                    + dilation[i] * (weight.shape[2 + i] - 1) + 1) for i in range(2)]
    inputs = [g.value(x), g.value(weight)] + ([] if bias is None else [g.value(bias)])
    return g.add("ConvTranspose", inputs, kernel_shape=list(weight.shape[2:]), strides=list(stride),
                 pads=[*padding, *padding], dilations=list(dilation), group=int(groups), output_padding=extra)


@maps(P.MaxPool2d, P.AvgPool2d)
def pool2d(g, call, x, kernel, stride, padding):
    extra = {"count_include_pad": 1} if call.function is P.AvgPool2d else {}
    return g.add("MaxPool" if call.function is P.MaxPool2d else "AveragePool", [g.value(x)],
                 kernel_shape=list(kernel), strides=list(stride), pads=[*padding, *padding], **extra)


@maps(P.AdaptiveAvgPool2d)
def adaptive_avg_pool2d(g, call, x, output_size):
    """Global average pooling for output 1×1; a plain average pool when each size divides its input's (then
    the bins are equal windows); otherwise ONNX has no counterpart."""
    if tuple(output_size) == (1, 1):
        return g.add("GlobalAveragePool", [g.value(x)])
    height, width = x.shape[2:]
    if height % output_size[0] or width % output_size[1]:
        raise _unsupported(call, f"pools {height}×{width} to {tuple(output_size)}, bins of unequal sizes")
    window = [height // output_size[0], width // output_size[1]]
    return g.add("AveragePool", [g.value(x)], kernel_shape=window, strides=window)


@maps(N.BatchNorm)
def batch_norm(g, call, x, weight, bias, running_mean, running_var, batch_stats, momentum, eps):
    """BatchNormalization with the running statistics; with the batch's own (track_running_stats=False), its
    rule y = (x − mean) / √(var + eps) · γ + β from ONNX's reductions, as ONNX's training mode is not inference."""
    channels, dtype = x.shape[1], x.dtype
    scale = g.value(weight) if weight is not None else g.constant(np.ones(channels, dtype), "ones")
    shift = g.value(bias) if bias is not None else g.constant(np.zeros(channels, dtype), "zeros")
    if not batch_stats:
        return g.add("BatchNormalization", [g.value(x), scale, shift, g.value(running_mean), g.value(running_var)],
                     epsilon=float(eps))
    axes = g.ints([0, *range(2, x.ndim)], "axes")
    centred = g.add("Sub", [g.value(x), g.add("ReduceMean", [g.value(x), axes], keepdims=1)])
    var = g.add("ReduceMean", [g.add("Mul", [centred, centred]), axes], keepdims=1)
    normalized = g.add("Div", [centred, g.add("Sqrt", [g.add("Add", [var, g.constant(np.asarray(eps, dtype), "eps")])])])
    channel_shape = g.ints([1, channels] + [1] * (x.ndim - 2))
    return g.add("Add", [g.add("Mul", [normalized, g.add("Reshape", [scale, channel_shape])]),
                         g.add("Reshape", [shift, channel_shape])])
