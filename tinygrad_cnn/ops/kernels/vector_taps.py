"""Sums of products held in vector registers across their terms: the inner loops of the depthwise convolutions
(conv_depthwise.py, conv_depthwise_same.py).

dot_taps(acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count) computes, for the LANES contiguous
elements l,
    acc[acc_at + l] = init[init_at + l] + Σ_s a[a_at + s·LANES + l] · b[b_at + offsets[s] + l],   s < count,
so one BLOCK of channels of one output is summed over its taps (a: the taps' weights, b: the input), or one
tap's BLOCK of dL/dW over the output positions (a: dL/dO, b: the input). Written as LLVM IR (a Numba
intrinsic): the sum is a loop value, so it stays in registers and acc is stored once (init = acc accumulates);
the same loop over Numba arrays compiles to scalar code, since LLVM cannot rule out that acc overlaps a or b.
All arrays are flat and C-contiguous; the caller keeps every index in range. Numba's cache does not notice a
change to this file in the kernels that inline it: after editing, delete their cache files
(`__pycache__/conv_depthwise*.nb*`).

transpose_block moves a square block of one vector's width between two layouts: the vectors at
src[src_at + r·src_step] (r < width) become the vectors at dst[dst_at + c·dst_step], element (r, c) moving to
(c, r), in registers (conv_depthwise.py's channels-last buffers).

masked_taps and masked_correlate do the same for one chunk of LANES consecutive positions of an NCHW plane,
with masked loads and stores (conv_depthwise_same.py).
"""
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from tinygrad_cnn.ops.kernels.vector_width import VECTOR_BYTES as MACHINE_VECTOR_BYTES

LANES = 16  # elements per sum: one 512-bit vector of float32, two of float64
VECTOR_BYTES = 64
I32, I64 = ir.IntType(32), ir.IntType(64)


class _Vectors:
    """The vector type of one element size, its fma and masked load/store, and the codegen arguments: arrays
    as data pointers, integers as int64."""

    def __init__(self, context, builder, sig, args, vector_bytes=VECTOR_BYTES):
        self.builder, dtype = builder, sig.args[0].dtype
        self.itemsize = dtype.bitwidth // 8
        self.width = min(LANES, vector_bytes // self.itemsize)
        self.parts = LANES // self.width
        self.vector = ir.VectorType(context.get_value_type(dtype), self.width)
        bits, name = ir.VectorType(ir.IntType(1), self.width), f"v{self.width}f{self.itemsize * 8}"
        declare = builder.module.declare_intrinsic
        self.fma_function = declare(f"llvm.fma.{name}", (), ir.FunctionType(self.vector, [self.vector] * 3))
        self.load_function = declare(f"llvm.masked.load.{name}.p0", (), ir.FunctionType(
            self.vector, [self.vector.as_pointer(), I32, bits, self.vector]))
        self.store_function = declare(f"llvm.masked.store.{name}.p0", (), ir.FunctionType(
            ir.VoidType(), [self.vector, self.vector.as_pointer(), I32, bits]))
        self.args = [context.make_array(t)(context, builder, a).data if isinstance(t, types.Array)
                     else context.cast(builder, a, t, types.int64) if isinstance(t, types.Integer)
                     else context.cast(builder, a, t, dtype) for t, a in zip(sig.args, args)]

    def pointer(self, base, at, part):
        """The address of vector `part` of the LANES elements at base[at]."""
        return self.builder.bitcast(self.builder.gep(base, [self.builder.add(at, ir.Constant(I64, part * self.width))]),
                                    self.vector.as_pointer())

    def element(self, base, at):
        return self.builder.load(self.builder.gep(base, [at]))

    def load(self, base, at, part, mask=None):
        """Vector `part` at base[at]; with a LANES-bit int64 `mask`, only its set lanes (the others 0, their
        addresses untouched)."""
        if mask is None:
            return self.builder.load(self.pointer(base, at, part), align=self.itemsize)
        return self.builder.call(self.load_function, [self.pointer(base, at, part), ir.Constant(I32, self.itemsize),
                                                      self.bits(mask, part), ir.Constant(self.vector, None)])

    def store(self, value, base, at, part, mask=None):
        if mask is None:
            self.builder.store(value, self.pointer(base, at, part), align=self.itemsize)
        else:
            self.builder.call(self.store_function, [value, self.pointer(base, at, part),
                                                    ir.Constant(I32, self.itemsize), self.bits(mask, part)])

    def bits(self, mask, part):
        """Lanes part·width … part·width + width − 1 of a LANES-bit mask as a vector of i1."""
        shifted = self.builder.lshr(mask, ir.Constant(I64, part * self.width))
        return self.builder.bitcast(self.builder.trunc(shifted, ir.IntType(self.width)),
                                    ir.VectorType(ir.IntType(1), self.width))

    def fma(self, a, b, c):
        return self.builder.call(self.fma_function, [a, b, c])

    def splat(self, value):
        undefined = ir.Constant(self.vector, ir.Undefined)
        return self.builder.shuffle_vector(self.builder.insert_element(undefined, value, ir.Constant(I32, 0)),
                                           undefined, ir.Constant(ir.VectorType(I32, self.width), [0] * self.width))

    def loop(self, count, starts, step):
        """`step(term, values)` for term = 0 … count − 1, carrying the vectors `values` (from `starts`) as loop
        values; returns their final values."""
        builder = self.builder
        entry = builder.basic_block
        loop, done = builder.append_basic_block("terms"), builder.append_basic_block("terms_done")
        builder.cbranch(builder.icmp_signed(">", count, ir.Constant(I64, 0)), loop, done)
        builder.position_at_end(loop)
        term = builder.phi(I64)
        values = [builder.phi(self.vector) for _ in starts]
        updated = step(term, values)
        next_term = builder.add(term, ir.Constant(I64, 1))
        term.add_incoming(ir.Constant(I64, 0), entry)
        term.add_incoming(next_term, builder.basic_block)
        for phi, start, value in zip(values, starts, updated):
            phi.add_incoming(start, entry)
            phi.add_incoming(value, builder.basic_block)
        builder.cbranch(builder.icmp_signed("<", next_term, count), loop, done)
        body_end = builder.basic_block
        builder.position_at_end(done)
        finals = [builder.phi(self.vector) for _ in starts]  # phis first, as LLVM requires
        for final, start, value in zip(finals, starts, updated):
            final.add_incoming(start, entry)
            final.add_incoming(value, body_end)
        return finals


def _sum_taps(v, outputs, acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets, count):
    """The codegen of dot_taps and strip_taps: `outputs` sums (output o's input shifted by shifts[o], an LLVM
    value), each term's `a` loaded once for all of them."""
    builder, parts = v.builder, v.parts

    def at(base, step, o):
        return builder.add(base, builder.mul(step, ir.Constant(I64, o)))

    def step(term, sums):
        a_here = builder.add(a_at, builder.mul(term, ir.Constant(I64, LANES)))
        b_here = builder.add(b_at, v.element(offsets, term))
        weights = [v.load(a, a_here, part) for part in range(parts)]
        return [v.fma(weights[part], v.load(b, builder.add(b_here, shifts[o]), part), sums[o * parts + part])
                for o in range(outputs) for part in range(parts)]

    starts = [v.load(init, at(init_at, init_step, o), part) for o in range(outputs) for part in range(parts)]
    finals = v.loop(count, starts, step)
    for o in range(outputs):
        for part in range(parts):
            v.store(finals[o * parts + part], acc, at(acc_at, acc_step, o), part)


@intrinsic
def dot_taps(typingctx, acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count):
    signature = types.void(acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count)

    def codegen(context, builder, sig, args):
        v = _Vectors(context, builder, sig, args)
        acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count = v.args
        zero = ir.Constant(I64, 0)
        _sum_taps(v, 1, acc, acc_at, zero, init, init_at, zero, a, a_at, b, b_at, [zero], offsets, count)
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, inline="always")
def strip_outputs(itemsize):
    """How many sums strip_taps computes at once: four of LANES float32 (eight 256-bit registers), two of
    float64."""
    return 4 // (LANES // min(LANES, VECTOR_BYTES // itemsize))  # 4 // _Vectors.parts


@intrinsic
def strip_taps(typingctx, acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets, count):
    """dot_taps for the strip_outputs(itemsize) sums o at once: acc[acc_at + o·acc_step + l] =
    init[init_at + o·init_step + l] + Σ_s a[a_at + s·LANES + l] · b[b_at + shifts[o] + offsets[s] + l]. Each
    term's `a` is loaded once for the strip, not once per sum: fewer loads per multiply-add, which bound
    dot_taps. The forward's strip is four neighbouring outputs (a: the taps' weights), dL/dW's four taps (a:
    dL/dO over the positions)."""
    signature = types.void(acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets, count)

    def codegen(context, builder, sig, args):
        v = _Vectors(context, builder, sig, args)
        acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets, count = v.args
        outputs = 4 // v.parts
        shifts = [v.element(shifts, ir.Constant(I64, o)) for o in range(outputs)]
        _sum_taps(v, outputs, acc, acc_at, acc_step, init, init_at, init_step, a, a_at, b, b_at, shifts, offsets,
                  count)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def masked_taps(typingctx, acc, acc_at, accumulate, bias, src, src_at, weights, w_at, offsets, masks, mask_at, taps):
    """acc[acc_at + l] = bias + (acc[acc_at + l] if accumulate) + Σ_t weights[w_at + t] · src[src_at + offsets[t] + l]
    for the LANES positions l of one chunk of a plane, tap t counted only where bit l of masks[mask_at + t] is set
    and acc written only where bit l of masks[mask_at + taps] is: the taps that fall into the padding or past
    the plane's edge masked off (masked loads never touch those addresses)."""
    signature = types.void(acc, acc_at, accumulate, bias, src, src_at, weights, w_at, offsets, masks, mask_at, taps)

    def codegen(context, builder, sig, args):
        v = _Vectors(context, builder, sig, args)
        acc, acc_at, accumulate, bias, src, src_at, weights, w_at, offsets, masks, mask_at, taps = v.args
        keep = v.element(masks, builder.add(mask_at, taps))
        carried = builder.select(builder.icmp_signed("!=", accumulate, ir.Constant(I64, 0)), keep, ir.Constant(I64, 0))
        starts = [builder.fadd(v.splat(bias), v.load(acc, acc_at, part, carried)) for part in range(v.parts)]

        def step(tap, sums):
            mask, w = v.element(masks, builder.add(mask_at, tap)), v.splat(v.element(weights, builder.add(w_at, tap)))
            here = builder.add(src_at, v.element(offsets, tap))
            return [v.fma(w, v.load(src, here, part, mask), sums[part]) for part in range(v.parts)]

        for part, final in enumerate(v.loop(taps, starts, step)):
            v.store(final, acc, acc_at, part, keep)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def masked_correlate(typingctx, sums, sums_at, src, src_at, other, other_at, offsets, masks, mask_at, taps):
    """sums[sums_at + t·LANES + l] += src[src_at + offsets[t] + l] · other[other_at + l] for every tap t and the
    LANES positions l of one chunk of a plane, where bit l of masks[mask_at + t] and of masks[mask_at + taps] (the
    chunk's positions inside the plane) are set: masked_taps' chunk, correlated instead of summed."""
    signature = types.void(sums, sums_at, src, src_at, other, other_at, offsets, masks, mask_at, taps)

    def codegen(context, builder, sig, args):
        v = _Vectors(context, builder, sig, args)
        sums, sums_at, src, src_at, other, other_at, offsets, masks, mask_at, taps = v.args
        inside = v.element(masks, builder.add(mask_at, taps))
        grads = [v.load(other, other_at, part, inside) for part in range(v.parts)]

        def step(tap, carried):
            mask = builder.and_(v.element(masks, builder.add(mask_at, tap)), inside)
            here, total_at = builder.add(src_at, v.element(offsets, tap)), builder.add(
                sums_at, builder.mul(tap, ir.Constant(I64, LANES)))
            for part in range(v.parts):
                v.store(v.fma(v.load(src, here, part, mask), grads[part], v.load(sums, total_at, part)), sums,
                        total_at, part)
            return []

        v.loop(taps, [], step)
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, inline="always")
def vector_elements(itemsize):
    """Elements of size `itemsize` (bytes) in one of this CPU's vector registers: transpose_block's width (a
    block of 16 × 16 float32 held as 512-bit vectors would not fit AVX2's 16 registers)."""
    return min(LANES, MACHINE_VECTOR_BYTES // itemsize)


@intrinsic
def transpose_block(typingctx, dst, dst_at, dst_step, src, src_at, src_step):
    """dst[dst_at + c·dst_step + r] = src[src_at + r·src_step + c] for r, c < vector_elements(itemsize): one load
    and one store per vector, the transpose by swapping the off-diagonal b × b blocks of every 2b × 2b block for
    b = width/2, width/4, … 1 (each swap one two-vector shuffle per vector)."""
    signature = types.void(dst, dst_at, dst_step, src, src_at, src_step)

    def codegen(context, builder, sig, args):
        v = _Vectors(context, builder, sig, args, MACHINE_VECTOR_BYTES)
        dst, dst_at, dst_step, src, src_at, src_step = v.args
        width = v.width
        rows = [v.load(src, builder.add(src_at, builder.mul(src_step, ir.Constant(I64, r))), 0) for r in range(width)]
        half = width // 2
        while half:
            low = ir.Constant(ir.VectorType(I32, width), [c if c & half == 0 else width + c - half for c in range(width)])
            high = ir.Constant(ir.VectorType(I32, width), [c + half if c & half == 0 else width + c for c in range(width)])
            for r in range(width):
                if r & half == 0:
                    a, b = rows[r], rows[r + half]
                    rows[r], rows[r + half] = builder.shuffle_vector(a, b, low), builder.shuffle_vector(a, b, high)
            half //= 2
        for c, row in enumerate(rows):
            v.store(row, dst, builder.add(dst_at, builder.mul(dst_step, ir.Constant(I64, c))), 0)
        return context.get_dummy_value()

    return signature, codegen
