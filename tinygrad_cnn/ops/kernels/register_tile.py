"""A tile of outputs held in vector registers across every tap of a convolution: the inner loop of the
register-blocked kernels (conv_blocked.py).

tile_taps(acc, weights, w_start, src, src_start, offsets, taps, shifts, shift_start) computes, for PIXELS
positions p and BLOCKS·L output channels (L = one vector: 16 float32 or 8 float64 with AVX-512, half that with
AVX2),
    acc[(p·BLOCKS + b)·L + l] = Σ_r weights[w_start + (r·BLOCKS + b)·L + l] · src[src_start + offsets[r] + s_p],
s_p = shifts[shift_start + p], r < taps: per tap, BLOCKS contiguous vectors of weights (one per block of output
channels) times one input value broadcast per position. The forward's positions are outputs and r its taps;
a dL/dW tile's positions are taps and r the output positions summed over.
Written as LLVM IR (a Numba intrinsic): its PIXELS·BLOCKS accumulators are loop values, so they stay in registers
for the whole sum and are stored once at the end; a loop over a Numba array would load and store them every tap.
All arrays are flat and C-contiguous; the caller keeps every index in range.
Numba's cache does not notice a change to this file in the kernels that inline it: after editing, delete their
cache files (`__pycache__/conv_blocked.*.nb*`).
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tinygrad_cnn.ops.kernels.vector_width import VECTOR_BYTES

# positions × vectors of output channels per tile: with AVX-512, 16 accumulators + 2 weight vectors + 1 broadcast
# of 32 registers; with AVX2, 12 + 2 + 1 of 16 (a bigger tile spills its accumulators to memory)
PIXELS, BLOCKS = (8, 2) if VECTOR_BYTES == 64 else (6, 2)


def lanes(itemsize: int) -> int:
    """Elements per vector of this CPU (vector_width): 16 float32 or 8 float64 with AVX-512, half that with AVX2."""
    return VECTOR_BYTES // itemsize


@intrinsic
def tile_taps(typingctx, acc, weights, w_start, src, src_start, offsets, taps, shifts, shift_start):
    signature = types.void(acc, weights, w_start, src, src_start, offsets, taps, shifts, shift_start)
    return signature, _codegen


def _codegen(context, builder, sig, args):
    """The LLVM IR of tile_taps."""
    acc_arg, w_arg, w_start_arg, src_arg, src_start_arg, offsets_arg, taps_arg = args[:7]
    itemsize = sig.args[0].dtype.bitwidth // 8
    width = lanes(itemsize)
    i32, i64 = ir.IntType(32), ir.IntType(64)
    scalar = context.get_value_type(sig.args[0].dtype)
    vector = ir.VectorType(scalar, width)

    def data(position):
        return context.make_array(sig.args[position])(context, builder, args[position]).data

    acc_ptr, w_ptr, src_ptr, offsets_ptr = data(0), data(1), data(3), data(5)
    w_start_value = context.cast(builder, w_start_arg, sig.args[2], types.int64)
    src_start_value = context.cast(builder, src_start_arg, sig.args[4], types.int64)
    taps_value = context.cast(builder, taps_arg, sig.args[6], types.int64)
    shift_start = context.cast(builder, args[8], sig.args[8], types.int64)
    shifts = [builder.load(builder.gep(data(7), [builder.add(shift_start, ir.Constant(i64, p))]))
              for p in range(PIXELS)]  # loaded once, before the loop
    zero = ir.Constant(vector, None)
    fma = builder.module.declare_intrinsic(f"llvm.fma.v{width}f{itemsize * 8}", (),
                                           ir.FunctionType(vector, [vector] * 3))
    broadcast_mask = ir.Constant(ir.VectorType(i32, width), [0] * width)
    entry = builder.basic_block
    loop = builder.append_basic_block("tile_loop")
    done = builder.append_basic_block("tile_done")
    builder.cbranch(builder.icmp_signed(">", taps_value, ir.Constant(i64, 0)), loop, done)

    builder.position_at_end(loop)
    tap = builder.phi(i64)
    sums = [builder.phi(vector) for _ in range(PIXELS * BLOCKS)]
    offset = builder.load(builder.gep(offsets_ptr, [tap]))
    base = builder.add(src_start_value, offset)
    w_base = builder.add(w_start_value, builder.mul(tap, ir.Constant(i64, BLOCKS * width)))
    w_vectors = [builder.load(builder.bitcast(builder.gep(w_ptr, [builder.add(w_base, ir.Constant(i64, b * width))]),
                                              vector.as_pointer()), align=itemsize) for b in range(BLOCKS)]
    updated = []
    for p in range(PIXELS):
        value = builder.load(builder.gep(src_ptr, [builder.add(base, shifts[p])]))
        spread = builder.shuffle_vector(builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                                               ir.Constant(i32, 0)),
                                        ir.Constant(vector, ir.Undefined), broadcast_mask)
        for b in range(BLOCKS):
            updated.append(builder.call(fma, [spread, w_vectors[b], sums[p * BLOCKS + b]]))
    next_tap = builder.add(tap, ir.Constant(i64, 1))
    tap.add_incoming(ir.Constant(i64, 0), entry)
    tap.add_incoming(next_tap, loop)
    for phi, value in zip(sums, updated):
        phi.add_incoming(zero, entry)
        phi.add_incoming(value, loop)
    builder.cbranch(builder.icmp_signed("<", next_tap, taps_value), loop, done)

    builder.position_at_end(done)
    finals = [builder.phi(vector) for _ in updated]  # phis first, as LLVM requires
    for k, (final, value) in enumerate(zip(finals, updated)):
        final.add_incoming(zero, entry)
        final.add_incoming(value, loop)
        target = builder.gep(acc_ptr, [ir.Constant(i64, k * width)])
        builder.store(final, builder.bitcast(target, vector.as_pointer()), align=itemsize)
    return context.get_dummy_value()
