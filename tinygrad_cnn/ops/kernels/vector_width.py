"""The widest float vector the kernels' LLVM IR uses on this CPU: 64 bytes with AVX-512F, else 32 (AVX2).

Read from the features Numba compiles for (NUMBA_CPU_FEATURES when set, else the host's), so a kernel's vector
width always matches the code Numba emits and caches for this CPU.
"""
import llvmlite.binding as llvm
from numba import config


def _has_avx512() -> bool:
    if config.CPU_FEATURES:
        return "+avx512f" in config.CPU_FEATURES.split(",")
    return bool(llvm.get_host_cpu_features().get("avx512f", False))


VECTOR_BYTES = 64 if _has_avx512() else 32
