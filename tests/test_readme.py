"""Every python block of the README runs as written, in order, in one namespace (the API tour's
imports serve the later blocks), from a scratch directory so the files they write land there."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_every_python_block_of_the_readme_runs_as_written(tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(ROOT / "examples")   # the Data block reads the shipped MNIST files
    monkeypatch.chdir(tmp_path)
    tour, *rest = python_blocks()
    namespace = {}
    exec(compile(tour, str(README), "exec"), namespace)
    assert namespace["x"].grad.numpy().shape == (4, 3)
    assert namespace["y"].requires_grad is False                           # made under no_grad
    with pytest.warns(UserWarning, match="never read"):                   # conv_output_size(28, 3, stride=2)
        for block in rest:
            exec(compile(block, str(README), "exec"), namespace)

    np.testing.assert_array_equal(namespace["t"].numpy() ** 2, [1.0, 4.0, 9.0])
    assert namespace["weight"].grad.shape == (16, 3, 3, 3)                 # convolution and pooling
    assert os.path.exists(tmp_path / "checkpoint.npz")                     # training: saved and loaded
    assert namespace["logits"].shape == (5, 10)                            # exported, run in onnxruntime
    assert namespace["s"].total_params == sum(p.numel() for p in namespace["model"].parameters())
    assert namespace["images"].shape[1:] == (28, 28) and namespace["labels"].dtype.kind in "iu"


def test_the_readme_shows_the_function_api_and_the_quick_start_commands():
    text = README.read_text(encoding="utf-8")
    assert any("class Square(tc.Function)" in block for block in python_blocks())
    assert 'python -m pip install -e ".[examples]" && python examples/mnist/train.py' in text
    assert 'python -m pip install -e ".[test]" && python -m pytest -q' in text
