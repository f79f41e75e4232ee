"""Importing the package leaves glibc's allocator alone; `tc.runtime.tune_allocator()` keeps freed memory on request.
Each case runs in a fresh process: the allocator's settings are process-wide and cannot be undone."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

RESIDENT_AFTER_FREE = """
import os, sys, numpy as np
import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
F.max_pool2d(F.conv2d(tc.Tensor.randn(2, 3, 9, 9), tc.Tensor.randn(4, 3, 3, 3)), 2)  # kernels loaded and run
if sys.argv[1] == "tuned":
    assert tc.runtime.tune_allocator()
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = resident()
array = np.ones(8 << 20, np.uint8)   # 8 MiB, every page touched
during = resident()
del array
print(during - before, resident() - before)
"""


def resident_growth(mode):
    """(bytes resident while the 8 MiB array lives, bytes still resident after `del`), both against before."""
    result = subprocess.run([sys.executable, "-c", RESIDENT_AFTER_FREE, mode], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=300)
    return tuple(int(value) for value in result.stdout.split())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the tuning is glibc's")
def test_after_import_a_freed_8_mib_array_goes_back_to_the_os():
    during, after = resident_growth("import")
    assert during > 7 << 20
    assert after < 1 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the tuning is glibc's")
def test_tune_allocator_keeps_a_freed_8_mib_array_in_the_process():
    during, after = resident_growth("tuned")
    assert during > 7 << 20
    assert after > 7 << 20
