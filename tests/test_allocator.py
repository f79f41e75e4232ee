"""Importing the package keeps freed array memory in the process (glibc), unless told not to."""
import subprocess
import sys

import pytest

FAULTS_OF_A_REALLOCATION = """
import resource, numpy as np
import tinygrad_cnn
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for step in range(3):                   # a step's activations: four 9 MiB arrays, written, then all freed
    before = faults()
    activations = [np.ones((64, 64, 24, 24), np.float32) for _ in range(4)]
    del activations
    print(faults() - before)            # the last step's count is read
"""


def faults_of_a_reallocation(env_extra):
    import os
    result = subprocess.run([sys.executable, "-c", FAULTS_OF_A_REALLOCATION], capture_output=True, text=True,
                            env=dict(os.environ, **env_extra), check=True)
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's")
def test_a_freed_activation_is_reused_without_page_faults_and_the_setting_can_be_declined():
    pages = 4 * (9 << 20) // 4096
    assert faults_of_a_reallocation({}) < pages // 100                                  # kept: 0 here
    assert faults_of_a_reallocation({"TINYGRAD_CNN_DEFAULT_MALLOC": "1"}) > pages // 8  # glibc's own: ~2,000
