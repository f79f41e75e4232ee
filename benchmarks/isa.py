"""`--isa avx2`: a benchmark run with our kernels and PyTorch both held to AVX2 and FMA on a CPU that has AVX-512.

It sets, before Numba, NumPy or PyTorch is imported (so import this module first):
- NUMBA_CPU_NAME=haswell and NUMBA_CPU_FEATURES = the host's features with the AVX-512 family (and AMX, AVX10)
  off: Numba compiles our kernels for AVX2, and vector_width picks the AVX2 tiles;
- ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2: PyTorch's own kernels and oneDNN's convolutions.
NumPy's BLAS is not touched: pass OPENBLAS_CORETYPE=Haswell on the command line to hold it too (the scripts
print its value). Only the instruction set changes: caches, memory and clock stay the AVX-512 machine's, so
this stands in for an AVX2 machine without being one.
"""
import os
import sys

_OFF = ("avx512", "amx", "avx10", "evex512")


def requested() -> str:
    """The value of --isa on the command line ('native' without it)."""
    arguments = sys.argv[1:]
    for index, argument in enumerate(arguments):
        if argument == "--isa" and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("--isa="):
            return argument.split("=", 1)[1]
    return "native"


def restrict():
    """Set the variables above when --isa avx2 was asked for; exit with a message for any other ISA, or on a CPU
    without AVX2."""
    isa = requested()
    if isa == "native":
        return
    if isa != "avx2":
        raise SystemExit(f"--isa: expected 'native' or 'avx2', got {isa!r}")
    import llvmlite.binding as llvm
    features = llvm.get_host_cpu_features()
    if not features.get("avx2") or not features.get("fma"):
        raise SystemExit("--isa avx2: this CPU has no AVX2 and FMA")
    os.environ["NUMBA_CPU_NAME"] = "haswell"
    os.environ["NUMBA_CPU_FEATURES"] = ",".join(
        ("+" if on and not name.startswith(_OFF) else "-") + name for name, on in sorted(features.items()))
    os.environ["ATEN_CPU_CAPABILITY"] = "avx2"
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"


def describe() -> str:
    """What the kernels were compiled for, PyTorch's capability when it is imported, and OpenBLAS's variables."""
    from tinygrad_cnn.ops.kernels.vector_width import VECTOR_BYTES
    ours = "AVX-512" if VECTOR_BYTES == 64 else "AVX2"
    text = f"our kernels compiled for {ours}"
    torch = sys.modules.get("torch")
    if torch is not None:
        text += f", PyTorch's CPU capability {torch.backends.cpu.get_cpu_capability()}"
        if os.environ.get("ONEDNN_MAX_CPU_ISA"):
            text += f" (oneDNN held to {os.environ['ONEDNN_MAX_CPU_ISA']})"
    if requested() == "avx2":
        text += "; --isa avx2: AVX-512 hardware held to AVX2 (not an AVX2 machine)"
    return text + "".join(f"; {name}={os.environ.get(name, '(unset)')}" for name in ("OPENBLAS_CORETYPE",
                                                                                    "OPENBLAS_L2_SIZE"))
