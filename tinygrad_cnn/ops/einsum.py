"""einsum: a sum of products over named indices, and its backward as more einsums."""
import numpy as np

from ..autograd import Function

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def explicit(equation: str, shapes) -> tuple:
    """The equation as (input subscripts, output subscripts) with '...' spelled out as letters and the
    output written even when the caller left it implicit (then: the indices used once, sorted)."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    inputs = inputs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} names {len(inputs)} operands, got {len(shapes)}")
    unused = [c for c in _LETTERS if c not in equation]
    ellipsis = max((len(shape) - len(term.replace("...", "")) for term, shape in zip(inputs, shapes)
                    if "..." in term), default=0)
    extra = "".join(unused[:ellipsis])
    spelled = []
    for term, shape in zip(inputs, shapes):
        if "..." in term:
            term = term.replace("...", extra[len(extra) - (len(shape) - len(term) + 3):])
        if len(term) != len(shape) or not all(c in _LETTERS for c in term):
            raise ValueError(f"einsum: subscripts {term!r} do not fit an operand of shape {tuple(shape)}")
        spelled.append(term)
    if arrow:
        output = output.replace("...", extra)
    else:
        joined = "".join(spelled)
        output = extra + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in extra))
    return spelled, output


class Einsum(Function):
    """out = einsum(inputs -> output); dInput_k = einsum(output, the other inputs -> input_k) (the product
    rule, each index summed over the same range), broadcast over indices only input_k has."""

    @staticmethod
    def forward(ctx, equation, *operands):
        inputs, output = explicit(equation, [np.shape(a) for a in operands])
        ctx.inputs, ctx.output, ctx.operands = inputs, output, operands
        try:
            return np.einsum(",".join(inputs) + "->" + output, *operands)
        except ValueError as error:
            raise ValueError(f"einsum: {error} (equation {equation!r}, shapes "
                             f"{[np.shape(a) for a in operands]})") from None

    @staticmethod
    def backward(ctx, grad):
        grads = []
        for k, (term, operand) in enumerate(zip(ctx.inputs, ctx.operands)):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            if len(set(term)) != len(term):
                raise RuntimeError(f"einsum: backward through a repeated index in one operand ({term!r}) is not "
                                   "supported here")
            others = [(t, a) for j, (t, a) in enumerate(zip(ctx.inputs, ctx.operands)) if j != k]
            known = ctx.output + "".join(t for t, _ in others)
            alone = "".join(c for c in term if c not in known)
            ones = [np.ones(operand.shape[term.index(c)], grad.dtype) for c in alone]
            terms = [ctx.output, *(t for t, _ in others), *alone]
            grads.append(np.einsum(",".join(terms) + "->" + term, grad, *(a for _, a in others), *ones))
        return (None, *grads)
