"""The machine's float32 FMA peak, measured: a loop of register-resident vector FMAs, written in LLVM IR.

Each iteration runs ACCUMULATORS independent `<W x float>` fused multiply-adds, W the widest vector the CPU has
(16 with AVX-512, 8 with AVX2); all operands live in registers, so nothing but the FMA units limits it. LLVM IR
rather than Numba: a Numba loop over an array keeps its accumulators in memory. One copy runs per thread (in
Python threads, each calling the compiled loop through ctypes, which releases the GIL).
"""
import ctypes
import os
import threading
import time

import llvmlite.binding as llvm

ACCUMULATORS = 12  # enough independent chains to cover the FMA latency (4 cycles × 2 ports, with margin)

_IR = """
define void @fma_loop(i64 %iterations, float* %out) {{
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
{phis}
{fmas}
  %next = add i64 %i, 1
  %done = icmp eq i64 %next, %iterations
  br i1 %done, label %exit, label %loop
exit:
{sum}
  %lane = extractelement <{w} x float> %s{last}, i32 0
  store float %lane, float* %out
  ret void
}}
declare <{w} x float> @llvm.fma.v{w}f32(<{w} x float>, <{w} x float>, <{w} x float>)
"""


def _vector_width(features: str) -> int:
    return 16 if "+avx512f" in features.split(",") else 8 if "+avx2" in features.split(",") else 4


def _compile():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    # the ISA Numba compiles our kernels for (benchmarks/isa.py may hold it below the host's)
    features = os.environ.get("NUMBA_CPU_FEATURES") or llvm.get_host_cpu_features().flatten()
    width = _vector_width(features)
    vec = f"<{width} x float>"
    start = "<" + ", ".join(["float 1.0"] * width) + ">"
    scale = f"{vec} <" + ", ".join(["float 0x3FEFFFFFE0000000"] * width) + ">"  # just below 1: no overflow
    phis = "\n".join(f"  %a{k} = phi {vec} [{start}, %entry], [%b{k}, %loop]" for k in range(ACCUMULATORS))
    fmas = "\n".join(f"  %b{k} = call {vec} @llvm.fma.v{width}f32({vec} %a{k}, {scale}, {vec} %a{k})"
                     for k in range(ACCUMULATORS))
    sums = [f"  %s0 = fadd {vec} %b0, %b1"]
    sums += [f"  %s{k - 1} = fadd {vec} %s{k - 2}, %b{k}" for k in range(2, ACCUMULATORS)]
    ir = _IR.format(phis=phis, fmas=fmas, sum="\n".join(sums), w=width, last=ACCUMULATORS - 2)
    module = llvm.parse_assembly(ir)
    target = llvm.Target.from_default_triple().create_target_machine(
        cpu=os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name(), features=features, opt=3)
    engine = llvm.create_mcjit_compiler(module, target)
    engine.finalize_object()
    function = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.POINTER(ctypes.c_float))(
        engine.get_function_address("fma_loop"))
    return engine, function, width


def fma_peak(threads: int, seconds: float = 0.3) -> tuple:
    """(GFLOP/s on `threads` threads, vector width): the best of a few runs, 2 FLOP per FMA lane, in wall time
    (in some runs the process's CPU time missed part of a thread that had just ended, and the best of many runs
    picks such a one: one thread read 430 GFLOP/s on a core whose peak is about 230)."""
    engine, function, width = _compile()
    iterations = 1 << 22
    sink = (ctypes.c_float * threads)()
    flops = 2.0 * width * ACCUMULATORS * iterations * threads
    function(1000, ctypes.cast(sink, ctypes.POINTER(ctypes.c_float)))
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == 0.0:
        workers = [threading.Thread(target=function, args=(iterations, ctypes.cast(
            ctypes.byref(sink, 4 * t), ctypes.POINTER(ctypes.c_float)))) for t in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    del engine
    return best, width
