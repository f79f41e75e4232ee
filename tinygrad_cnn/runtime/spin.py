"""A bounded busy wait on flags written by another thread, outside the GIL: the launch path's workers wait for
the next launch this way for a moment before they sleep, and the launching thread for the workers' parts.

Why: a thread that sleeps on a semaphore lets its core go idle, and on a virtual machine an idle virtual CPU
is taken off its core; waking it again took 30-100 us per launch on a 2-core VM, and often much more (figures
in benchmarks/RESULTS.md). A training step launches a few hundred kernels, Python code in between.
"""
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

SPIN_CYCLES = 1_000_000  # time-stamp counter ticks, about 0.3-0.5 ms on a 2-3 GHz CPU


@intrinsic
def _load_acquire(typingctx, flags, index):
    """flags[index] read with an atomic acquire load: read again on every call, never hoisted out of a loop."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        position = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.load_atomic(builder.gep(data, [position]), "acquire", 8)
    return types.int64(flags, index), codegen


@intrinsic
def _cycle_counter(typingctx):
    """The CPU's time-stamp counter (llvm.readcyclecounter)."""
    def codegen(context, builder, sig, args):
        counter = builder.module.declare_intrinsic("llvm.readcyclecounter", (), ir.FunctionType(ir.IntType(64), []))
        return builder.call(counter, [])
    return types.int64(), codegen


@njit(nogil=True, cache=True, no_cfunc_wrapper=True)
def spin_until(flags, start, stop, value, cycles):
    """True as soon as flags[i] >= value for every start <= i < stop; False after about `cycles` counter ticks
    without that (the caller then blocks on its semaphore)."""
    first = _cycle_counter()
    while True:
        reached = True
        for i in range(start, stop):
            if _load_acquire(flags, i) < value:
                reached = False
                break
        if reached:
            return True
        if _cycle_counter() - first > cycles:
            return False
