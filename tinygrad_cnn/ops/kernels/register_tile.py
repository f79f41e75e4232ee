"""A tile of outputs held in vector registers across every tap of a convolution: the inner loop of the
register-blocked kernels (conv_blocked.py).

tile_taps(acc, weights, w_start, src, src_start, offsets, taps, shifts, shift_start, blocks, pitch) computes, for
P = VECTORS/blocks positions p and blocks·L output channels (L = one vector: 16 float32 or 8 float64 with AVX-512,
half that with AVX2; `blocks` is BLOCKS or 1, or 0 for the half tile: VECTORS positions × half a vector),
    tile[p, b·L + l] = Σ_r weights[w_start + (r·blocks + b)·L + l] · src[src_start + offsets[r] + s_p],
s_p = shifts[shift_start + p], r < taps: per tap, `blocks` contiguous vectors of weights (one per block of output
channels) times one input value broadcast per position. It stores the tile channel-major, acc[(b·L + l)·pitch + p],
transposed in registers (_store_transposed); the store also writes zeros after the P positions of each channel
when P is not a power of two (AVX2: fewer than P), so `pitch` leaves room for them. The forward's positions are
outputs and r its taps; a dL/dW tile's positions are taps and r the output positions summed over. The narrow
tile (one block, twice the positions) is for layers of at most L output channels, which would leave half of a
wide tile's lanes idle; with AVX-512 the half tile (256-bit vectors) for layers of at most L/2, such as LeNet's
6 (batch 64: its first conv's forward 0.25 -> 0.19 ms; stride 2, 8x32x32->8, 1.12 on the GEMM -> 0.32).
transpose_rows transposes one square of a vector's lanes in registers the same way (dL/dW's packing of dL/dO).
Written as LLVM IR (a Numba intrinsic): its VECTORS accumulators are loop values, so they stay in registers
for the whole sum and are stored once at the end; a loop over a Numba array would load and store them every tap.
All arrays are flat and C-contiguous; the caller keeps every index in range.
Numba's cache does not notice a change to this file in the kernels that inline it: after editing, delete their
cache files (`__pycache__/conv_blocked.*.nb*`).
"""
import functools

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tinygrad_cnn.ops.kernels.vector_width import VECTOR_BYTES

# positions × vectors of output channels per tile: with AVX-512, 16 accumulators + 2 weight vectors + 1 broadcast
# of 32 registers; with AVX2, 12 + 2 + 1 of 16 (a bigger tile spills its accumulators to memory)
PIXELS, BLOCKS = (8, 2) if VECTOR_BYTES == 64 else (6, 2)
VECTORS = PIXELS * BLOCKS  # accumulators of a tile, wide (PIXELS × BLOCKS) or narrow (VECTORS positions × 1)


def lanes(itemsize: int) -> int:
    """Elements per vector of this CPU (vector_width): 16 float32 or 8 float64 with AVX-512, half that with AVX2."""
    return VECTOR_BYTES // itemsize


def tile_width(channels: int, itemsize: int, strided: bool = False) -> int:
    """Output channels per tile for a layer of `channels`: half a vector when they fit in one with AVX-512 (the
    half tile), one vector when they fit in one, else BLOCKS vectors. With AVX-512 also one vector for 33-48
    float32 channels (17-24 float64) unless the tile's positions are `strided`: three blocks of one vector fill
    48 lanes where two blocks of two fill 64 (batch 32, one thread, CPU time: 32x16x16->48 forward 2.57-2.60 ->
    2.13-2.18 ms, its dL/dW 2.73-2.76 -> 2.34-2.44, dL/dX onto 48 channels 2.53-2.60 -> 2.16-2.31, 24x28x28->40
    k5 s2 dL/dW 4.64-4.73 -> 4.13-4.18). A strided forward splits its input by phases for the narrow tile
    (planes_stride), which cost more than the idle lanes: 24x28x28->40 k5 s2 forward 4.07 on the wide tile
    against 4.55."""
    vector = lanes(itemsize)
    if VECTOR_BYTES == 64 and channels <= vector // 2:
        return vector // 2
    if channels <= vector or VECTOR_BYTES == 64 and not strided and BLOCKS * vector < channels <= 3 * vector:
        return vector
    return vector * BLOCKS


def tile_positions(width: int, itemsize: int) -> int:
    """Positions per tile of `width` output channels: VECTORS accumulators in all."""
    return VECTORS // max(1, width // lanes(itemsize))


@intrinsic
def tile_taps(typingctx, acc, weights, w_start, src, src_start, offsets, taps, shifts, shift_start, blocks, pitch):
    signature = types.void(acc, weights, w_start, src, src_start, offsets, taps, shifts, shift_start, blocks, pitch)
    return signature, _codegen


def _arguments(context, builder, sig, args):
    """An intrinsic's item size and LLVM scalar type (of its first array), and readers of its arguments: an
    array's data pointer and an integer as int64, by position."""
    def data(position):
        return context.make_array(sig.args[position])(context, builder, args[position]).data

    def integer(position):
        return context.cast(builder, args[position], sig.args[position], types.int64)

    return sig.args[0].dtype.bitwidth // 8, context.get_value_type(sig.args[0].dtype), data, integer


def _codegen(context, builder, sig, args):
    """The LLVM IR of tile_taps: a call of the loop for the tile's shape, chosen by `blocks`."""
    itemsize, scalar, data, integer = _arguments(context, builder, sig, args)
    i64 = ir.IntType(64)

    operands = [data(0), data(1), data(3), data(5), data(7), integer(2), integer(4), integer(8), integer(6),
                integer(10)]
    wide, narrow = builder.append_basic_block("wide_tile"), builder.append_basic_block("narrow_tile")
    half, not_half = builder.append_basic_block("half_tile"), builder.append_basic_block("not_half")
    end = builder.append_basic_block("tile_end")
    builder.cbranch(builder.icmp_signed("==", integer(9), ir.Constant(i64, 0)), half, not_half)
    builder.position_at_end(not_half)
    builder.cbranch(builder.icmp_signed("==", integer(9), ir.Constant(i64, 1)), narrow, wide)
    for block, blocks in ((wide, BLOCKS), (narrow, 1), (half, 0)):
        builder.position_at_end(block)
        builder.call(_tile_function(builder.module, scalar, itemsize, blocks), operands)
        builder.branch(end)
    builder.position_at_end(end)
    return context.get_dummy_value()


def _tile_function(module, scalar, itemsize, blocks):
    """The tile loop of one shape as a function of its own, not inlined: beside the other shape's loop in the
    caller, LLVM's register allocation slowed the wide tile by up to 1.7× (measured on a stride-2 forward). When the
    tile's positions are consecutive (no row end inside it), one address plus constant displacements reads them
    all; otherwise each position keeps its own, and the narrow tile's 16 of those outnumber the free registers."""
    name = f"tinygrad_cnn_tile_taps_{itemsize}_{blocks}"
    if name in module.globals:
        return module.globals[name]
    i64, pointer = ir.IntType(64), scalar.as_pointer()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [pointer] * 3 + [i64.as_pointer()] * 2 + [i64] * 5),
                           name)
    function.linkage = "internal"
    function.attributes.add("noinline")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    count = lanes(itemsize) // (2 if blocks == 0 else 1)
    blocks = max(1, blocks)
    vector = ir.VectorType(scalar, count)
    fma = module.declare_intrinsic(f"llvm.fma.v{count}f{itemsize * 8}", (),
                                   ir.FunctionType(vector, [vector] * 3))
    acc, weights, src, offsets, shifts_ptr, w_start, src_start, shift_start, taps, pitch = function.args
    pixels = VECTORS // blocks
    shifts = [builder.load(builder.gep(shifts_ptr, [builder.add(shift_start, ir.Constant(i64, p))]))
              for p in range(pixels)]
    in_a_row = [builder.icmp_signed("==", shifts[p], builder.add(shifts[0], ir.Constant(i64, p)))
                for p in range(1, pixels)]
    contiguous, scattered = function.append_basic_block("contiguous"), function.append_basic_block("scattered")
    builder.cbranch(functools.reduce(builder.and_, in_a_row), contiguous, scattered)
    for block, positions in ((contiguous, shifts[0]), (scattered, shifts)):
        builder.position_at_end(block)
        finals = _tile_loop(builder, vector, itemsize, fma, (weights, src, offsets), (w_start, src_start), taps,
                            positions, pixels, blocks)
        _store_transposed(builder, finals, acc, pitch, pixels, blocks, itemsize)
        builder.ret_void()
    return function


def _store_transposed(builder, finals, acc_ptr, pitch, pixels, blocks, itemsize):
    """acc[(b·L + l)·pitch + p] = finals[p·blocks + b][l]: each block's pixels × L tile transposed in registers, in
    row groups of G = min(L, pixels rounded up to a power of two) rows (zero rows pad the last group). Within a
    group, stages h = G/2 … 1 swap the off-diagonal h × h blocks of each pair of rows h apart (one two-vector
    shuffle per row and stage); then lanes k·G … k·G + G − 1 of row i hold channel k·G + i of the group's
    positions, stored as one G-wide vector. A scalar copy out of a position-major tile cost more than the
    shuffles (the loads it strides over are one element per channel)."""
    lane_count = finals[0].type.count
    group = min(lane_count, 1 << (pixels - 1).bit_length())
    i64 = ir.IntType(64)
    zero = ir.Constant(finals[0].type, None)
    piece = ir.VectorType(finals[0].type.element, group)
    for b in range(blocks):
        rows = [finals[p * blocks + b] for p in range(pixels)]
        rows += [zero] * (-pixels % group)
        for first in range(0, len(rows), group):
            block = rows[first:first + group]
            h = group // 2
            while h >= 1:
                swapped = list(block)
                for i in range(group):
                    if i & h == 0:
                        low = [l if l & h == 0 else lane_count + l - h for l in range(lane_count)]
                        high = [l + h if l & h == 0 else lane_count + l for l in range(lane_count)]
                        swapped[i] = builder.shuffle_vector(block[i], block[i + h], ir.Constant(
                            ir.VectorType(ir.IntType(32), lane_count), low))
                        swapped[i + h] = builder.shuffle_vector(block[i], block[i + h], ir.Constant(
                            ir.VectorType(ir.IntType(32), lane_count), high))
                block = swapped
                h //= 2
            for i in range(group):
                for k in range(lane_count // group):
                    values = block[i] if group == lane_count else builder.shuffle_vector(
                        block[i], ir.Constant(block[i].type, ir.Undefined),
                        ir.Constant(ir.VectorType(ir.IntType(32), group), list(range(k * group, (k + 1) * group))))
                    channel = b * lane_count + k * group + i
                    offset = builder.add(builder.mul(ir.Constant(i64, channel), pitch), ir.Constant(i64, first))
                    builder.store(values, builder.bitcast(builder.gep(acc_ptr, [offset]), piece.as_pointer()),
                                  align=itemsize)


def _tile_loop(builder, vector, itemsize, fma, pointers, starts, taps, shifts, pixels, blocks):
    """The sum over `taps` of a tile of `pixels` positions × `blocks` vectors, returned as its final vectors (index
    p·blocks + b); `shifts` is each position's shift, or one value: the first of consecutive positions."""
    w_ptr, src_ptr, offsets_ptr = pointers
    w_start, src_start = starts
    width = vector.count
    i32, i64 = ir.IntType(32), ir.IntType(64)
    zero = ir.Constant(vector, None)
    broadcast_mask = ir.Constant(ir.VectorType(i32, width), [0] * width)
    entry = builder.basic_block
    loop = builder.append_basic_block("tile_loop")
    done = builder.append_basic_block("tile_done")
    builder.cbranch(builder.icmp_signed(">", taps, ir.Constant(i64, 0)), loop, done)

    builder.position_at_end(loop)
    tap = builder.phi(i64)
    sums = [builder.phi(vector) for _ in range(pixels * blocks)]
    offset = builder.load(builder.gep(offsets_ptr, [tap]))
    base = builder.add(src_start, offset)
    w_base = builder.add(w_start, builder.mul(tap, ir.Constant(i64, blocks * width)))
    w_vectors = [builder.load(builder.bitcast(builder.gep(w_ptr, [builder.add(w_base, ir.Constant(i64, b * width))]),
                                              vector.as_pointer()), align=itemsize) for b in range(blocks)]
    updated = []
    row = None if isinstance(shifts, list) else builder.gep(src_ptr, [builder.add(base, shifts)])
    for p in range(pixels):
        address = builder.gep(src_ptr, [builder.add(base, shifts[p])]) if row is None else builder.gep(
            row, [ir.Constant(i64, p)])
        value = builder.load(address)
        spread = builder.shuffle_vector(builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                                               ir.Constant(i32, 0)),
                                        ir.Constant(vector, ir.Undefined), broadcast_mask)
        for b in range(blocks):
            updated.append(builder.call(fma, [spread, w_vectors[b], sums[p * blocks + b]]))
    next_tap = builder.add(tap, ir.Constant(i64, 1))
    tap.add_incoming(ir.Constant(i64, 0), entry)
    tap.add_incoming(next_tap, loop)
    for phi, value in zip(sums, updated):
        phi.add_incoming(zero, entry)
        phi.add_incoming(value, loop)
    builder.cbranch(builder.icmp_signed("<", next_tap, taps), loop, done)

    builder.position_at_end(done)
    finals = [builder.phi(vector) for _ in updated]  # phis first, as LLVM requires
    for final, value in zip(finals, updated):
        final.add_incoming(zero, entry)
        final.add_incoming(value, loop)
    return finals


@intrinsic
def transpose_rows(typingctx, dst, dst_start, dst_pitch, src, src_start, src_pitch, half):
    signature = types.void(dst, dst_start, dst_pitch, src, src_start, src_pitch, half)
    return signature, _transpose_codegen


def _transpose_codegen(context, builder, sig, args):
    """dst[dst_start + l·dst_pitch + r] = src[src_start + r·src_pitch + l] for r, l < n: an n × n block
    transposed in registers (_store_transposed), n the lanes of one vector, or of half a vector when `half` is
    nonzero (the half tile's width). It packs dL/dO channel-blocked for dL/dW: n rows (channels) of n
    consecutive positions in, n rows of n channels out, where a scalar copy stored one value per cache line."""
    itemsize, scalar, data, integer = _arguments(context, builder, sig, args)
    i64 = ir.IntType(64)

    dst, src = data(0), data(3)
    dst_start, dst_pitch, src_start, src_pitch = integer(1), integer(2), integer(4), integer(5)
    halves, wholes = builder.append_basic_block("half_block"), builder.append_basic_block("whole_block")
    end = builder.append_basic_block("transpose_end")
    builder.cbranch(builder.icmp_signed("!=", integer(6), ir.Constant(i64, 0)), halves, wholes)
    for block, count in ((halves, lanes(itemsize) // 2), (wholes, lanes(itemsize))):
        builder.position_at_end(block)
        vector = ir.VectorType(scalar, count)
        rows = [builder.load(builder.bitcast(builder.gep(src, [builder.add(src_start, builder.mul(
            ir.Constant(i64, r), src_pitch))]), vector.as_pointer()), align=itemsize) for r in range(count)]
        _store_transposed(builder, rows, builder.gep(dst, [dst_start]), dst_pitch, count, 1, itemsize)
        builder.branch(end)
    builder.position_at_end(end)
    return context.get_dummy_value()
