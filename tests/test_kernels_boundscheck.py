"""The conv and pool kernels under Numba's bounds checking: no input the public API accepts makes a kernel read or
write outside an array.

Numba checks bounds only in code compiled with NUMBA_BOUNDSCHECK=1, and in a fresh NUMBA_CACHE_DIR: the on-disk
cache is keyed without the bounds-check flag, so the unchecked builds of earlier runs would otherwise be loaded as
they are. An IndexError raised in a task on a worker thread reaches the launching thread (runtime/launch.py).
test_deliberate_out_of_bounds_accesses_raise_in_the_checked_build shows that this set-up catches what it should.
The checked build is compiled without LLVM's optimisations (NUMBA_OPT=0): the checks do not depend on them, and
compiling every kernel takes about 40% less time (measured: 38 s of CPU against 62 s for the grid below).
The arrays are flat inside the kernels, so what is checked is every access against its whole array (a slip from
one plane into the next is caught by the reference comparisons instead).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from reference import (adaptive_avg_pool2d_reference, avg_pool2d_reference, conv2d_reference, conv2d_reference_grads,
                       max_pool2d_reference)
import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn import functional as F

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
CHECKED_PRELUDE = """
import numba, tinygrad_cnn
assert numba.config.BOUNDSCHECK == 1
tinygrad_cnn.set_num_threads(2)  # tasks run on the workers too, on any machine
"""


@pytest.fixture(scope="module")
def checked_cache(tmp_path_factory):
    """One fresh cache directory for the checked builds of this module's subprocesses."""
    return str(tmp_path_factory.mktemp("numba_cache_boundscheck"))


def run_checked(code: str, cache_dir: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=cache_dir, NUMBA_OPT="0",
               PYTHONPATH=os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", CHECKED_PRELUDE + textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_deliberate_out_of_bounds_accesses_raise_in_the_checked_build(checked_cache):
    """Out-of-bounds reads and writes, in a toy function, in the last task of a launch split over the workers, and
    in the package's own helpers (unsigned indices) and kernels: each raises IndexError."""
    result = run_checked("""
        import numpy as np
        from numba import njit
        from tinygrad_cnn.ops.kernels.padding import pad_split
        from tinygrad_cnn.runtime import parallel_kernel
        from tinygrad_cnn.ops.kernels.inner_loops import copy_strided

        @njit
        def read(a, i):
            return a[i]

        @parallel_kernel(tasks=lambda a: a.size)
        def write_past_the_end_in_the_last_task(a, start, stop):
            for i in range(start, stop):
                a[i + (1 if i == a.size - 1 else 0)] = 1.0

        cases = {
            "serial read": lambda: read(np.zeros(3), 3),
            "split write": lambda: write_past_the_end_in_the_last_task(np.zeros(1000)),
            "copy_strided": lambda: copy_strided(np.zeros(100), 0, 1, np.zeros(3), 0, 1, 4),
            "pad_split": lambda: pad_split(np.ones((2, 1, 3, 3)), 2, 2, 1, 1, np.zeros((2, 3, 3, 3))),
        }
        for name, call in cases.items():
            try:
                call()
                print(name, "NOT CAUGHT")
            except IndexError:
                print(name, "caught")
        """, checked_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("serial read", "split write", "copy_strided", "pad_split"):
        assert f"{name} caught" in result.stdout, result.stdout


def test_conv_and_pool_grids_pass_with_bounds_checking(checked_cache):
    """The kernel tests' grids (every conv direction and algorithm, random float64 geometries through the adjoint
    test, the pool grid) and this module's edge cases through the public API, all in float64."""
    selection = [
        "tests/test_kernels_conv.py::test_every_direction_matches_reference_float64",
        "tests/test_kernels_conv.py::test_forward_without_bias",
        "tests/test_kernels_conv.py::test_adjoint_identity_float64",
        "tests/test_kernels_conv.py::test_worked_example_3x3_input_2x2_filter",
        "tests/test_kernels_pool.py", "-k", "not float32",
        "tests/test_kernels_boundscheck.py::test_edge_shapes_through_conv2d",
        "tests/test_kernels_boundscheck.py::test_edge_shapes_through_the_pools",
    ]
    result = run_checked(f"""
        import sys, pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                              "-W", "ignore::numba.NumbaWarning", *{selection!r}]))  # unoptimised builds are not cached
        """, checked_cache)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


# ---- edge shapes through the public API (run here, and above under bounds checking) -------------------------

CONV_EDGES = [  # (input shape, weight shape, keyword arguments)
    ((0, 2, 5, 5), (3, 2, 3, 3), {}),                                     # empty batch
    ((0, 2, 5, 5), (3, 2, 1, 1), {}),                                     # empty batch, pointwise path
    ((2, 3, 9, 8), (4, 3, 1, 1), {}),                                     # pointwise, products per sample in place
    ((1, 2, 17, 16), (3, 2, 1, 1), {"stride": 2, "padding": 1}),          # pointwise, sampled per sample
    ((3, 2, 7, 6), (4, 2, 1, 1), {"stride": (2, 3), "padding": (0, 1)}),  # pointwise, rectangular stride
    ((2, 0, 5, 5), (3, 0, 3, 3), {"stride": 2}),                          # no input channels: O = b
    ((2, 2, 5, 5), (0, 2, 3, 3), {}),                                     # no output channels
    ((1, 2, 0, 4), (3, 2, 1, 1), {"padding": 1}),                         # no rows, but padding gives an output
    ((1, 2, 3, 3), (2, 2, 5, 5), {"padding": 1}),                         # kernel exactly the padded input
    ((2, 1, 4, 3), (2, 1, 2, 2), {"stride": 7}),                          # stride past the input: one window
    ((2, 3, 1, 1), (4, 3, 3, 3), {"padding": 1}),                         # 1×1 input, all but one tap in padding
    ((1, 2, 9, 7), (2, 2, 2, 2), {"dilation": (8, 6)}),                   # dilated taps at the far corners
    ((1, 2, 5, 4), (2, 2, 4, 2), {"padding": "same", "dilation": (1, 3)}),  # 'same' with an even kernel
    ((1, 4, 5, 5), (8, 1, 3, 3), {"groups": 4, "stride": 3, "padding": 1}),  # depthwise, stride 3
    ((2, 3, 1, 1), (6, 1, 3, 3), {"groups": 3, "padding": 1}),  # depthwise 'same' on a 1×1 plane: 8 taps masked
    ((1, 2, 5, 3), (2, 1, 3, 3), {"groups": 2, "padding": "same", "dilation": (2, 2)}),  # reaching past rows
    ((1, 1, 1, 9), (1, 1, 1, 9), {}),                                     # one row, kernel as wide as it
    ((2, 2, 3, 4), (32, 2, 3, 3), {"padding": 1}),                        # wide enough for the GEMM path
    ((3, 4, 6, 5), (36, 4, 3, 2), {"stride": (2, 1), "padding": (2, 1), "dilation": (1, 2)}),  # GEMM, strided
]


@pytest.mark.parametrize("x_shape, w_shape, options", CONV_EDGES, ids=str)
def test_edge_shapes_through_conv2d(x_shape, w_shape, options):
    rng = np.random.default_rng(0)
    x, weight, bias = (tc.tensor(rng.standard_normal(s), requires_grad=True) for s in (x_shape, w_shape, w_shape[:1]))
    out = F.conv2d(x, weight, bias, **options)
    padding = options.get("padding", 0)
    if padding == "same":  # the reference takes explicit padding: pad the input as 'same' does
        total = [d * (k - 1) for d, k in zip(options["dilation"], w_shape[2:])]
        x_ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, total[0] % 2), (0, total[1] % 2)))
        padding = (total[0] // 2, total[1] // 2)
    else:
        x_ref = x.numpy()
    geometry = dict(stride=options.get("stride", 1), padding=padding, dilation=options.get("dilation", 1),
                    groups=options.get("groups", 1))
    expected = conv2d_reference(x_ref, weight.numpy(), bias.numpy(), **geometry)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    out.backward(grad_out)
    grad_x, grad_w, grad_b = conv2d_reference_grads(x_ref, weight.numpy(), grad_out, **geometry)
    np.testing.assert_allclose(x.grad.numpy(), grad_x[:, :, :x_shape[2], :x_shape[3]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weight.grad.numpy(), grad_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bias.grad.numpy(), grad_b, rtol=1e-12, atol=1e-12)


POOL_EDGES = [  # (function, input shape, arguments)
    ("max", (0, 2, 4, 4), (2,)), ("max", (2, 0, 4, 4), (2,)), ("max", (1, 1, 1, 1), (1,)),
    ("max", (1, 2, 3, 3), (3, 1, 1)),            # every window mostly padding
    ("max", (2, 1, 2, 5), ((2, 3), (5, 7), (1, 1))),  # stride past the input
    ("avg", (0, 2, 4, 4), (2,)), ("avg", (1, 2, 3, 3), (3, 1, 1)), ("avg", (2, 1, 2, 5), ((2, 3), (5, 7), (1, 1))),
    ("adaptive", (0, 2, 3, 3), (2,)), ("adaptive", (1, 1, 1, 1), ((3, 2),)),  # more bins than rows and columns
    ("adaptive", (1, 2, 5, 7), ((5, 7),)), ("adaptive", (2, 1, 7, 3), ((2, None),)),
]
POOLS = {"max": (F.max_pool2d, max_pool2d_reference), "avg": (F.avg_pool2d, avg_pool2d_reference),
         "adaptive": (F.adaptive_avg_pool2d, adaptive_avg_pool2d_reference)}


@pytest.mark.parametrize("kind, shape, arguments", POOL_EDGES, ids=str)
def test_edge_shapes_through_the_pools(kind, shape, arguments):
    rng = np.random.default_rng(1)
    pool, reference = POOLS[kind]
    x = tc.tensor(rng.standard_normal(shape), requires_grad=True)
    out = pool(x, *arguments)
    if kind == "adaptive" and isinstance(arguments[0], tuple):
        arguments = (tuple(shape[2 + i] if s is None else s for i, s in enumerate(arguments[0])),)
    if shape[0] * shape[1] == 0:  # the references index their windows and cannot take an empty batch
        expected = np.zeros(out.shape)
        reference_grad = np.zeros_like
    else:
        expected, reference_grad = reference(x.numpy(), *arguments)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    out.backward(grad_out)
    np.testing.assert_allclose(x.grad.numpy(), reference_grad(grad_out) if shape[0] * shape[1] else np.zeros(shape),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call", [
    lambda x: F.max_pool2d(x, 2, padding=1), lambda x: F.avg_pool2d(x, 2, padding=1),
    lambda x: F.adaptive_avg_pool2d(x, 2)], ids=["max", "avg", "adaptive"])
def test_pools_refuse_an_input_without_rows(call):
    with pytest.raises(ValueError, match="pool2d: expected an input of non-zero height and width"):
        call(tc.tensor(np.zeros((1, 1, 0, 4))))


def test_max_pool_refuses_planes_its_int32_winner_indices_cannot_address():
    huge = Tensor._wrap(np.broadcast_to(np.float32(0), (1, 1, 2**16, 2**15 + 1)))  # a view: takes no memory
    with pytest.raises(ValueError, match="max_pool2d: planes of more than 2\\*\\*31 - 1 elements"):
        F.max_pool2d(huge, 2)


def test_adam_refuses_state_arrays_its_kernel_would_walk_past():
    """The fused Adam kernel walks parameter, gradient and both moments with one index: a moment of another shape
    (a hand-edited or foreign optimizer state) is refused before the kernel runs."""
    from tinygrad_cnn import nn, optim
    layer = nn.Linear(3, 2)
    optimizer = optim.Adam(layer.parameters())
    layer(tc.tensor(np.ones((1, 3), np.float32))).sum().backward()
    optimizer.step()
    optimizer.state[layer.weight]["exp_avg"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"Adam\.step: state 'exp_avg' has shape \(3,\), its parameter \(2, 3\)"):
        optimizer.step()


def test_sgd_refuses_a_momentum_buffer_its_kernel_would_walk_past():
    """The one-pass SGD kernel walks parameter, gradient and momentum buffer with one index: a buffer of another
    shape (a hand-edited or foreign optimizer state) is refused before the kernel runs."""
    from tinygrad_cnn import nn, optim
    layer = nn.Linear(3, 2)
    optimizer = optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(tc.tensor(np.ones((1, 3), np.float32))).sum().backward()
    optimizer.step()
    optimizer.state[layer.weight]["momentum_buffer"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"SGD\.step: state 'momentum_buffer' has shape \(3,\), its parameter "
                                         r"\(2, 3\)"):
        optimizer.step()
