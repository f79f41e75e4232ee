"""A bounded busy wait on flags written by another thread, outside the GIL: the launch path's workers wait for
the next launch this way for a moment before they sleep, and the launching thread for the workers' parts.

Why: a thread that sleeps on a semaphore lets its core go idle, and on a virtual machine an idle virtual CPU
is taken off its core; waking it again took 30-100 us per launch on a 2-core VM, and often much more (figures
in benchmarks/RESULTS.md). A training step launches a few hundred kernels, Python code in between.

Flags are also written from here, outside the GIL (post_and_wait, finish_and_wait): a thread that sees a flag
while the writer still holds the GIL must then wait for the GIL, and a thread blocked on the GIL sleeps; waking
it took 15-20 us on a 2-core VM, twice per launch.
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
def _store_release(typingctx, flags, index, value):
    """flags[index] = value with an atomic release store: every write before it is seen by a reader that sees it."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        position = context.cast(builder, args[1], sig.args[1], types.int64)
        number = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(number, builder.gep(data, [position]), "release", 8)
        return context.get_dummy_value()
    return types.void(flags, index, value), codegen


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


@njit(nogil=True, cache=True, no_cfunc_wrapper=True)
def post_and_wait(posted, started, count, value, cycles, linger):
    """posted[i] = value for i < count, then wait (spin_until, `cycles`) for started[i] >= value, and once all
    have started, `linger` ticks more: a worker that has just taken the GIL to enter its kernel holds it that
    long, and returning now would block the caller on it."""
    for i in range(count):
        _store_release(posted, i, value)
    if spin_until(started, 0, count, value, cycles):
        first = _cycle_counter()
        while _cycle_counter() - first < linger:
            pass


@njit(nogil=True, cache=True, no_cfunc_wrapper=True)
def finish_and_wait(finished, posted, index, value, cycles):
    """finished[index] = value, written outside the GIL (the launching thread waiting for it then takes a free
    GIL), then spin_until(posted, index, index + 1, value + 1, cycles): the next launch's number."""
    _store_release(finished, index, value)
    return spin_until(posted, index, index + 1, value + 1, cycles)
