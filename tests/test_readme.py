"""The README's examples run as written."""
import os
import re

import numpy as np

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def python_block_after(heading: str) -> str:
    text = open(README, encoding="utf-8").read()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_api_tour_and_the_function_example_run_as_written():
    namespace = {}
    exec(python_block_after("## API tour"), namespace)
    assert namespace["x"].grad.numpy().shape == (4, 3)
    assert namespace["y"].requires_grad is False  # made under no_grad
    exec(python_block_after("## Write your own op"), namespace)
    np.testing.assert_array_equal(namespace["y"].numpy(), [1.0, 4.0, 9.0])
    assert namespace["y"].op == "Square"
