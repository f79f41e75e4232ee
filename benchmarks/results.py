"""Appends what a benchmark printed to benchmarks/RESULTS.md, under a header saying where it was measured: date,
commit, CPU model, ISA flags, thread count and library versions."""
import contextlib
import datetime
import io
import os
import platform
import subprocess
import sys

import numba
import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
ISA_FLAGS = ("avx2", "fma", "avx512f")


def cpu() -> str:
    """The CPU's model name and which of ISA_FLAGS it has (from /proc/cpuinfo; the platform's name elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = info.read().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    return f"{model}, {os.cpu_count()} logical cores, " + " ".join(
        flag if flag in flags else f"no {flag}" for flag in ISA_FLAGS)


def commit() -> str:
    """The checked-out commit, marked `+changes` when the work tree differs from it (RESULTS.md aside)."""
    root = os.path.dirname(RESULTS)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                  ":(top,exclude)benchmarks/RESULTS.md"], cwd=root, capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" +changes" if changed else "")


def header(title: str, threads: int, load: float) -> str:
    try:
        import torch
        versions = f", PyTorch {torch.__version__}"
    except ImportError:
        versions = ""
    return (f"## {title}\n\n{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} · commit {commit()} · {cpu()} · "
            f"threads {threads} · load average {load:.1f} at the start · NumPy {np.__version__}, Numba "
            f"{numba.__version__}{versions}\n\n"
            f"    python {' '.join(sys.argv)}\n\n")


@contextlib.contextmanager
def recorded(title: str, threads, enabled: bool = True):
    """Print as usual inside; on a normal exit, append everything printed to RESULTS.md under `header`.
    `threads` is a function giving the thread count (read at the end, after the script has set it)."""
    if not enabled:
        yield
        return
    captured, load = io.StringIO(), os.getloadavg()[0]

    class Tee(io.TextIOBase):
        def write(self, text):
            captured.write(text)
            return terminal.write(text)

        def flush(self):
            terminal.flush()

    terminal = sys.stdout
    sys.stdout = Tee()
    try:
        yield
    finally:
        sys.stdout = terminal
    with open(RESULTS, "a") as results:
        results.write(header(title, threads(), load) + "```\n" + captured.getvalue().rstrip("\n") + "\n```\n\n")
    print(f"appended to {os.path.relpath(RESULTS)}")
