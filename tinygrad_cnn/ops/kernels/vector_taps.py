"""A sum of products held in vector registers across its terms: the inner loop of the channels-last depthwise
convolution (conv_depthwise.py).

dot_taps(acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count) computes, for the LANES contiguous
elements l,
    acc[acc_at + l] = init[init_at + l] + Σ_s a[a_at + s·LANES + l] · b[b_at + offsets[s] + l],   s < count,
so one BLOCK of channels of one output is summed over its taps (a: the taps' weights, b: the input), or one
tap's BLOCK of dL/dW over the output positions (a: dL/dO, b: the input). Written as LLVM IR (a Numba
intrinsic): the sum is a loop value, so it stays in registers and acc is stored once (init = acc accumulates);
the same loop over Numba arrays compiles to scalar code, since LLVM cannot rule out that acc overlaps a or b.
All arrays are flat and C-contiguous; the caller keeps every index in range. Numba's cache does not notice a
change to this file in the kernels that inline it: after editing, delete their cache files
(`__pycache__/conv_depthwise.*.nb*`).
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 16  # elements per sum: one 512-bit vector of float32, two of float64
VECTOR_BYTES = 64


@intrinsic
def dot_taps(typingctx, acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count):
    signature = types.void(acc, acc_at, init, init_at, a, a_at, b, b_at, offsets, count)

    def codegen(context, builder, sig, args):
        itemsize = sig.args[0].dtype.bitwidth // 8
        width = min(LANES, VECTOR_BYTES // itemsize)
        parts = LANES // width
        i64 = ir.IntType(64)
        vector = ir.VectorType(context.get_value_type(sig.args[0].dtype), width)
        fma = builder.module.declare_intrinsic(f"llvm.fma.v{width}f{itemsize * 8}", (),
                                               ir.FunctionType(vector, [vector] * 3))

        def data(position):
            return context.make_array(sig.args[position])(context, builder, args[position]).data

        def index(position):
            return context.cast(builder, args[position], sig.args[position], types.int64)

        def pointer(base, at, part):
            return builder.bitcast(builder.gep(base, [builder.add(at, ir.Constant(i64, part * width))]),
                                   vector.as_pointer())

        acc_ptr, init_ptr, a_ptr, b_ptr, offsets_ptr = data(0), data(2), data(4), data(6), data(8)
        acc_at, init_at, a_at, b_at, count = index(1), index(3), index(5), index(7), index(9)
        entry = builder.basic_block
        loop = builder.append_basic_block("taps_loop")
        done = builder.append_basic_block("taps_done")
        starts = [builder.load(pointer(init_ptr, init_at, part), align=itemsize) for part in range(parts)]
        builder.cbranch(builder.icmp_signed(">", count, ir.Constant(i64, 0)), loop, done)

        builder.position_at_end(loop)
        term = builder.phi(i64)
        sums = [builder.phi(vector) for _ in range(parts)]
        a_here = builder.add(a_at, builder.mul(term, ir.Constant(i64, LANES)))
        b_here = builder.add(b_at, builder.load(builder.gep(offsets_ptr, [term])))
        updated = [builder.call(fma, [builder.load(pointer(a_ptr, a_here, part), align=itemsize),
                                      builder.load(pointer(b_ptr, b_here, part), align=itemsize), sums[part]])
                   for part in range(parts)]
        next_term = builder.add(term, ir.Constant(i64, 1))
        term.add_incoming(ir.Constant(i64, 0), entry)
        term.add_incoming(next_term, loop)
        for phi, start, value in zip(sums, starts, updated):
            phi.add_incoming(start, entry)
            phi.add_incoming(value, loop)
        builder.cbranch(builder.icmp_signed("<", next_term, count), loop, done)

        builder.position_at_end(done)
        finals = [builder.phi(vector) for _ in range(parts)]  # phis first, as LLVM requires
        for part, final in enumerate(finals):
            final.add_incoming(starts[part], entry)
            final.add_incoming(updated[part], loop)
            builder.store(final, pointer(acc_ptr, acc_at, part), align=itemsize)
        return context.get_dummy_value()

    return signature, codegen
