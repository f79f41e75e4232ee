"""The 1×1 and grouped conv families with every algorithm that takes them forced: the pointwise path's routes
(products per sample in place or on the sampled input; dL/dW per sample or gathered channel-major) and the GEMM
and direct paths on grouped convs, against the plain-loop reference in float64 and float32, the adjoint identity,
and gradcheck through conv2d."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_cnn as tc
from reference import conv2d_reference, conv2d_reference_grads
from tinygrad_cnn.nn.functional import conv2d
from tinygrad_cnn.ops.kernels import conv_gemm, conv_pointwise
from tinygrad_cnn.ops.kernels.conv import (ALGORITHMS, conv2d_forward, conv2d_grad_bias, conv2d_grad_input,
                                           conv2d_grad_weight, supports)

# (batch, C_in, H, W, C_out, (kH, kW), stride, padding, groups)
CASES = [
    (2, 3, 9, 8, 4, (1, 1), (1, 1), (0, 0), 1),    # 1×1, 72 positions: products per sample on the arrays
    (2, 3, 5, 6, 4, (1, 1), (1, 1), (0, 0), 1),    # 1×1, 30 positions, in place
    (2, 3, 17, 16, 4, (1, 1), (2, 2), (1, 1), 1),  # 1×1 stride 2 with padding, 90 positions: sampled per sample
    (3, 5, 9, 8, 2, (1, 1), (2, 2), (0, 0), 1),    # 1×1 stride 2 (a ResNet shortcut), odd height: sampled
    (2, 4, 7, 6, 3, (1, 1), (2, 3), (1, 0), 1),    # 1×1, rectangular stride, padding on one axis
    (1, 140, 4, 4, 130, (1, 1), (1, 1), (0, 0), 1),  # 1×1, 16 positions, M·C > 2·L·(M + C): dL/dW gathered
    (1, 3, 4, 5, 2, (1, 1), (3, 3), (2, 2), 1),    # 1×1 with more padding than stride: outputs of bias alone
    (1, 6, 5, 5, 4, (1, 1), (2, 2), (0, 0), 2),    # grouped 1×1, stride 2
    (2, 8, 6, 7, 8, (3, 3), (1, 1), (1, 1), 4),    # 2 channels per group, non-square
    (2, 12, 7, 7, 6, (3, 2), (2, 1), (1, 0), 3),   # grouped, rectangular kernel and stride
    (3, 8, 5, 6, 16, (3, 3), (1, 1), (1, 1), 2),   # more outputs than inputs per group
]


def _pairs():
    return [(case, algorithm) for case in CASES for algorithm in ALGORITHMS
            if supports(algorithm, (case[4], case[1] // case[8]) + case[5], case[6], case[7], case[8])]


def _arrays(rng, case, dtype):
    batch, channels, height, width, out_channels, kernel, _, _, groups = case
    return (rng.standard_normal((batch, channels, height, width)).astype(dtype),
            rng.standard_normal((out_channels, channels // groups) + kernel).astype(dtype),
            rng.standard_normal(out_channels).astype(dtype))


def _dw(algorithm):
    return None if algorithm == "blocked" else algorithm


def test_every_path_is_reached():
    """The grid holds each pointwise route and grouped convs for the GEMM path."""
    pointwise = [c for c in CASES if c[5] == (1, 1) and c[8] == 1]
    positions = [((c[2] + 2 * c[7][0] - 1) // c[6][0] + 1) * ((c[3] + 2 * c[7][1] - 1) // c[6][1] + 1)
                 for c in pointwise]
    in_place = [c[6] == (1, 1) and c[7] == (0, 0) for c in pointwise]
    assert any(in_place) and not all(in_place)
    gathered = [conv_pointwise.gathers_grad_weight(c[4], c[1], size) for c, size in zip(pointwise, positions)]
    assert any(gathered) and not all(gathered)
    assert any(c[8] > 1 and c[1] > c[8] for c in CASES)
    assert len({algorithm for _, algorithm in _pairs()}) >= 3


@pytest.mark.parametrize("case, algorithm", _pairs(), ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_every_direction_matches_reference_float64(case, algorithm, bias):
    stride, padding, groups = case[6], case[7], case[8]
    rng = np.random.default_rng(0)
    x, weight, b = _arrays(rng, case, np.float64)
    b = b if bias else None
    out = conv2d_forward(x, weight, b, stride, padding, (1, 1), groups, algorithm=algorithm)
    np.testing.assert_allclose(out, conv2d_reference(x, weight, b, stride, padding, 1, groups), rtol=1e-12,
                               atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    grad_x, grad_w, grad_b = conv2d_reference_grads(x, weight, grad_out, stride, padding, 1, groups)
    np.testing.assert_allclose(conv2d_grad_input(grad_out, weight, x.shape, stride, padding, (1, 1), groups,
                                                 algorithm=algorithm), grad_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d_grad_weight(x, grad_out, weight.shape, stride, padding, (1, 1), groups,
                                                  algorithm=_dw(algorithm)), grad_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d_grad_bias(grad_out), grad_b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c[8] > 1], ids=str)
def test_grouped_gemm_in_chunks_of_one_sample(case, monkeypatch):
    """Grouped products over chunks of one sample: dL/dW sums the chunks of every group."""
    monkeypatch.setattr(conv_gemm, "CHUNK_BYTES", 1)
    test_every_direction_matches_reference_float64(case, "gemm", True)


@st.composite
def families(draw):
    """A random 1×1 conv (any stride and padding) or grouped conv, and an algorithm that takes it."""
    groups = draw(st.integers(1, 3))
    one_by_one = draw(st.booleans())
    kernel = (1, 1) if one_by_one else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = [draw(st.integers(max(1, k - 2 * p), 12)) for k, p in zip(kernel, padding)]
    case = (draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), *size, groups * draw(st.integers(1, 3)),
            kernel, (draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding, groups)
    fitting = [a for a in ALGORITHMS if supports(a, (case[4], case[1] // groups) + kernel, case[6], padding, groups)]
    return case, draw(st.sampled_from(fitting)), draw(st.integers(0, 2**16))


@settings(max_examples=40, deadline=None)
@given(families())
def test_float32_matches_reference_within_rounding(drawn):
    """float32 against the float64 reference: |error| <= 1e-5 · (the same sum over absolute values)."""
    case, algorithm, seed = drawn
    stride, padding, groups = case[6], case[7], case[8]
    x, weight, bias = _arrays(np.random.default_rng(seed), case, np.float64)
    geometry = (stride, padding, (1, 1), groups)
    out = conv2d_forward(*(a.astype(np.float32) for a in (x, weight, bias)), *geometry, algorithm=algorithm)
    assert out.dtype == np.float32
    magnitude = conv2d_reference(abs(x), abs(weight), abs(bias), stride, padding, 1, groups)
    assert np.all(abs(out - conv2d_reference(x, weight, bias, stride, padding, 1, groups)) <= 1e-5 * magnitude + 1e-7)
    grad_out = np.random.default_rng(seed + 1).standard_normal(out.shape)
    expected = conv2d_reference_grads(x, weight, grad_out, stride, padding, 1, groups)
    magnitudes = conv2d_reference_grads(abs(x), abs(weight), abs(grad_out), stride, padding, 1, groups)
    x32, w32, g32 = x.astype(np.float32), weight.astype(np.float32), grad_out.astype(np.float32)
    ours = (conv2d_grad_input(g32, w32, x.shape, *geometry, algorithm=algorithm),
            conv2d_grad_weight(x32, g32, weight.shape, *geometry, algorithm=_dw(algorithm)))
    for value, reference, size in zip(ours, expected, magnitudes):
        assert value.dtype == np.float32 and np.all(abs(value - reference) <= 1e-5 * size + 1e-7)


@settings(max_examples=30, deadline=None)
@given(families())
def test_adjoint_identity_float64(drawn):
    """⟨conv(x, W), g⟩ = ⟨x, dX(g)⟩ = ⟨W, dW(g)⟩ on the kernels themselves."""
    case, algorithm, seed = drawn
    rng = np.random.default_rng(seed)
    x, weight, _ = _arrays(rng, case, np.float64)
    geometry = (case[6], case[7], (1, 1), case[8])
    out = conv2d_forward(x, weight, None, *geometry, algorithm=algorithm)
    g = rng.standard_normal(out.shape)
    forward_side, scale = np.vdot(out, g), np.vdot(abs(out), abs(g)) + 1e-300
    assert abs(forward_side - np.vdot(x, conv2d_grad_input(g, weight, x.shape, *geometry,
                                                           algorithm=algorithm))) <= 1e-10 * scale
    assert abs(forward_side - np.vdot(weight, conv2d_grad_weight(x, g, weight.shape, *geometry,
                                                                 algorithm=_dw(algorithm)))) <= 1e-10 * scale


@pytest.mark.parametrize("case", [c for c in CASES if c[1] < 100], ids=str)  # the 140-channel case: reference only
def test_gradcheck_through_conv2d(case):
    """The dispatcher's pick in float64, differentiated as a whole (x, W and b)."""
    x, weight, bias = (tc.tensor(a, requires_grad=True) for a in _arrays(np.random.default_rng(1), case, np.float64))

    def fn(x, w, b):
        return conv2d(x, w, b, case[6], case[7], groups=case[8])

    assert tc.gradcheck(fn, (x, weight, bias), n_projections=2)
