"""Conv kernels alone, on plain arrays: every direction and algorithm against the plain-loop reference,
random configurations (hypothesis), the adjoint identity, and the worked 3×3 / 2×2 example by hand."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import conv2d_reference, conv2d_reference_grads
from tinygrad_cnn.ops.kernels.conv import (conv2d_forward, conv2d_grad_bias, conv2d_grad_input,
                                           conv2d_grad_weight, supports)
from tinygrad_cnn.ops.kernels.geometry import conv2d_output_size
from tinygrad_cnn.runtime import get_num_threads, set_num_threads

# None: the dispatcher's choice (pointwise for plain 1×1); depthwise takes C_in/groups = 1 only (depthwise_same
# also stride 1 and 'same' padding)
DEPTHWISE = ("depthwise", "depthwise_planes", "depthwise_same")
ALGORITHMS = ["direct", "gemm", *DEPTHWISE, "blocked", None]


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


# (batch, C_in, H, W, C_out, (kH, kW), stride, padding, dilation, groups): a covering set, not a product
GRID = [
    (1, 1, 5, 5, 1, (1, 1), 1, 0, 1, 1),          # C_in = 1, 1×1, batch 1
    (2, 4, 4, 4, 8, (1, 1), 1, 0, 1, 1),          # 1×1 conv, a plain GEMM
    (7, 2, 6, 5, 3, (2, 2), 1, 0, 1, 1),          # batch 7, rectangular input, even kernel
    (2, 3, 7, 7, 4, (3, 3), 1, 1, 1, 1),
    (2, 1, 9, 8, 2, (5, 5), 1, 2, 1, 1),          # C_in = 1, 5×5, padding 2 (LeNet's first layer)
    (2, 2, 8, 7, 3, (3, 3), 2, 1, 1, 1),          # stride 2
    (1, 2, 10, 9, 2, (3, 2), 3, 0, 1, 1),         # stride 3, rectangular kernel
    (1, 2, 9, 9, 2, (3, 3), 3, 2, 1, 1),          # stride 3, padding 2
    (3, 2, 7, 9, 2, (2, 3), (2, 3), (1, 2), 1, 1),  # rectangular stride and padding
    (2, 2, 9, 9, 3, (3, 3), 1, 2, 2, 1),          # dilation 2
    (2, 3, 11, 10, 2, (2, 3), 2, 1, (2, 1), 1),   # dilation, stride and rectangular all at once
    (2, 4, 6, 6, 6, (3, 3), 1, 1, 1, 2),          # groups 2
    (7, 4, 6, 5, 4, (3, 3), 2, 1, 1, 4),          # depthwise, stride 2, batch 7
    (2, 3, 7, 7, 6, (5, 5), 1, 2, 2, 3),          # depthwise with multiplier 2, dilation 2
    (1, 6, 5, 5, 4, (1, 1), 2, 0, 1, 2),          # 1×1, stride 2, groups 2
    (2, 1, 3, 4, 2, (3, 4), 1, 0, 1, 1),          # kernel as large as the input
    (2, 3, 7, 6, 3, (3, 2), (2, 1), (1, 0), (1, 2), 3),  # depthwise, rectangular stride, padding, dilation
    (3, 5, 4, 4, 5, (3, 3), 1, 1, 1, 5),          # depthwise on a small plane, as MobileNet's last blocks
    (3, 37, 5, 6, 74, (3, 3), 2, 1, 1, 37),       # depthwise: three blocks of channels, the last partial, ×2
    (2, 3, 7, 6, 6, (5, 3), 1, (4, 1), (2, 1), 3),  # depthwise ×2, 'same' padding with dilation, non-square
    (2, 33, 6, 5, 40, (3, 3), 1, 1, 1, 1),        # more channels than one register tile holds, and a partial tile
    (2, 20, 6, 5, 44, (3, 3), 1, 1, 1, 1),        # 17-24 float64 / 33-48 float32 channels: tiles of one vector
    (2, 6, 9, 8, 20, (3, 3), 2, 1, 1, 1),         # the same at stride 2: a wide forward tile, narrow dL/dW tiles
    (2, 3, 4, 37, 5, (3, 3), 1, 1, 1, 1),         # rows longer than a register tile: tiles within a row and across
    (2, 5, 9, 11, 37, (3, 3), 2, 1, 1, 1),        # stride 2 with a wide register tile: the padded input read strided
    (1, 3, 10, 9, 33, (3, 2), (2, 3), (1, 0), (2, 1), 1),  # the same with rectangular stride, padding and dilation
]


def _takes(algorithm, weight_shape, stride, padding, groups, dilation=1):
    return algorithm is None or supports(algorithm, weight_shape, _pair(stride), _pair(padding), groups,
                                         dilation=_pair(dilation))


def _pairs(cases, algorithms):
    """(case, algorithm) for every algorithm that can compute the case."""
    return [(case, algorithm) for case in cases for algorithm in algorithms
            if _takes(algorithm, (case[4], case[1] // case[9]) + tuple(case[5]), case[6], case[7], case[9], case[8])]


def _geometry(stride, padding, dilation, groups):
    return _pair(stride), _pair(padding), _pair(dilation), groups


def _random_case(rng, batch, channels, height, width, out_channels, kernel, groups, dtype):
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    weight = rng.standard_normal((out_channels, channels // groups) + tuple(kernel)).astype(dtype)
    bias = rng.standard_normal(out_channels).astype(dtype)
    return x, weight, bias


@pytest.mark.parametrize("case, algorithm", _pairs(GRID, ALGORITHMS), ids=str)
def test_every_direction_matches_reference_float64(case, algorithm):
    batch, channels, height, width, out_channels, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, weight, bias = _random_case(rng, batch, channels, height, width, out_channels, kernel, groups, np.float64)
    geometry = _geometry(stride, padding, dilation, groups)
    expected = conv2d_reference(x, weight, bias, stride, padding, dilation, groups)
    out = conv2d_forward(x, weight, bias, *geometry, algorithm=algorithm)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)

    grad_out = rng.standard_normal(out.shape)
    grad_x, grad_w, grad_b = conv2d_reference_grads(x, weight, grad_out, stride, padding, dilation, groups)
    np.testing.assert_allclose(conv2d_grad_input(grad_out, weight, x.shape, *geometry, algorithm=algorithm),
                               grad_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d_grad_weight(x, grad_out, weight.shape, *geometry, algorithm=algorithm),
                               grad_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d_grad_bias(grad_out), grad_b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in GRID if c[0] > 1], ids=str)
def test_the_gemm_path_in_chunks_of_one_sample(case, monkeypatch):
    """With columns chunked one sample at a time (as a large batch is), every direction still matches the
    reference: the forward and dL/dX write each chunk's samples, dL/dW sums its chunks."""
    from tinygrad_cnn.ops.kernels import conv_gemm
    monkeypatch.setattr(conv_gemm, "CHUNK_BYTES", 1)
    batch, channels, height, width, out_channels, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(3)
    x, weight, bias = _random_case(rng, batch, channels, height, width, out_channels, kernel, groups, np.float64)
    geometry = _geometry(stride, padding, dilation, groups)
    out = conv2d_forward(x, weight, bias, *geometry, algorithm="gemm")
    np.testing.assert_allclose(out, conv2d_reference(x, weight, bias, stride, padding, dilation, groups),
                               rtol=1e-12, atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    grad_x, grad_w, _ = conv2d_reference_grads(x, weight, grad_out, stride, padding, dilation, groups)
    np.testing.assert_allclose(conv2d_grad_input(grad_out, weight, x.shape, *geometry, algorithm="gemm"),
                               grad_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d_grad_weight(x, grad_out, weight.shape, *geometry, algorithm="gemm"),
                               grad_w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_forward_without_bias(algorithm):
    rng = np.random.default_rng(1)
    groups = 3 if algorithm in DEPTHWISE else 1
    x, weight, _ = _random_case(rng, 2, 3, 6, 6, 6, (3, 3), groups, np.float64)
    out = conv2d_forward(x, weight, None, (1, 1), (1, 1), (1, 1), groups, algorithm=algorithm)
    np.testing.assert_allclose(out, conv2d_reference(x, weight, None, 1, 1, 1, groups), rtol=1e-12, atol=1e-12)


def test_an_algorithm_forced_on_a_shape_it_cannot_take_is_refused():
    rng = np.random.default_rng(4)
    x, weight, _ = _random_case(rng, 1, 4, 5, 5, 4, (3, 3), 2, np.float64)
    with pytest.raises(ValueError, match="conv2d: algorithm 'depthwise' cannot compute"):
        conv2d_forward(x, weight, None, (1, 1), (0, 0), (1, 1), 2, algorithm="depthwise")


@st.composite
def conv_configs(draw):
    """A random valid configuration: the (dilated) kernel always fits the padded input."""
    algorithm = draw(st.sampled_from(ALGORITHMS))
    groups = draw(st.integers(1, 3))
    kernel, dilation, padding, stride = _window(draw, algorithm == "depthwise_same", 4)
    size = [draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9)) for k, d, p in zip(kernel, dilation, padding)]
    channels = groups if algorithm in DEPTHWISE else groups * draw(st.integers(1, 3))
    return dict(batch=draw(st.integers(1, 3)), channels=channels,
                out_channels=groups * draw(st.integers(1, 3)), height=size[0], width=size[1], kernel=kernel,
                stride=stride, padding=padding, dilation=dilation, groups=groups, algorithm=algorithm,
                seed=draw(st.integers(0, 2**16)))


def _window(draw, same, largest):
    """(kernel, dilation, padding, stride) drawn per axis; `same`: stride 1 and 2P = D·(K−1), odd kernels."""
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if same:
        kernel = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
        return kernel, dilation, tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation)), (1, 1)
    kernel = (draw(st.integers(1, largest)), draw(st.integers(1, largest)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    return kernel, dilation, padding, (draw(st.integers(1, 3)), draw(st.integers(1, 3)))


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_float32_matches_reference_within_rounding(config):
    """float32 results against the float64 reference, with a tolerance scaled to the size of the terms summed:
    |error| <= 1e-5 · (the same sum taken over absolute values)."""
    c = config
    rng = np.random.default_rng(c["seed"])
    x, weight, bias = _random_case(rng, c["batch"], c["channels"], c["height"], c["width"], c["out_channels"],
                                   c["kernel"], c["groups"], np.float64)
    geometry = (c["stride"], c["padding"], c["dilation"], c["groups"])
    out = conv2d_forward(*(a.astype(np.float32) for a in (x, weight, bias)), *geometry, algorithm=c["algorithm"])
    assert out.dtype == np.float32
    expected = conv2d_reference(x, weight, bias, *geometry)
    magnitude = conv2d_reference(abs(x), abs(weight), abs(bias), *geometry)
    assert np.all(abs(out - expected) <= 1e-5 * magnitude + 1e-7)

    grad_out = rng.standard_normal(out.shape)
    expected_grads = conv2d_reference_grads(x, weight, grad_out, *geometry)
    magnitudes = conv2d_reference_grads(abs(x), abs(weight), abs(grad_out), *geometry)
    x32, w32, g32 = x.astype(np.float32), weight.astype(np.float32), grad_out.astype(np.float32)
    ours = (conv2d_grad_input(g32, w32, x.shape, *geometry, algorithm=c["algorithm"]),
            conv2d_grad_weight(x32, g32, weight.shape, *geometry, algorithm=c["algorithm"]),
            conv2d_grad_bias(g32))
    for value, expected_grad, magnitude in zip(ours, expected_grads, magnitudes):
        assert value.dtype == np.float32 and value.shape == expected_grad.shape
        assert np.all(abs(value - expected_grad) <= 1e-5 * magnitude + 1e-7)


@settings(max_examples=30, deadline=None)
@given(conv_configs())
def test_adjoint_identity_float64(config):
    """⟨conv(x, W), g⟩ = ⟨x, dX(g)⟩ = ⟨W, dW(g)⟩: checks the flipped-filter full-convolution rule and the
    correlation rule against the forward, with no reference at all."""
    c = config
    rng = np.random.default_rng(c["seed"])
    x, weight, _ = _random_case(rng, c["batch"], c["channels"], c["height"], c["width"], c["out_channels"],
                                c["kernel"], c["groups"], np.float64)
    geometry = (c["stride"], c["padding"], c["dilation"], c["groups"])
    out = conv2d_forward(x, weight, None, *geometry, algorithm=c["algorithm"])
    g = rng.standard_normal(out.shape)
    forward_side = np.vdot(out, g)
    input_side = np.vdot(x, conv2d_grad_input(g, weight, x.shape, *geometry, algorithm=c["algorithm"]))
    weight_side = np.vdot(weight, conv2d_grad_weight(x, g, weight.shape, *geometry, algorithm=c["algorithm"]))
    scale = np.vdot(abs(out), abs(g)) + 1e-300
    assert abs(forward_side - input_side) <= 1e-10 * scale
    assert abs(forward_side - weight_side) <= 1e-10 * scale


@st.composite
def depthwise_configs(draw):
    """A random depthwise conv (groups = C_in, multiplier R = C_out/C_in from 1 to 3) with up to 40 channels, so
    the channels-last kernel meets several blocks of channels and a partial last one; non-square planes, strides
    1 to 3, padding and dilation."""
    algorithm = draw(st.sampled_from([*DEPTHWISE, None]))
    kernel, dilation, padding, stride = _window(draw, algorithm == "depthwise_same", 5)
    size = [draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 11)) for k, d, p in zip(kernel, dilation, padding)]
    channels = draw(st.integers(1, 40))
    return dict(batch=draw(st.integers(1, 5)), channels=channels, out_channels=channels * draw(st.integers(1, 3)),
                height=size[0], width=size[1], kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                groups=channels, algorithm=algorithm, seed=draw(st.integers(0, 2**16)))


@settings(max_examples=25, deadline=None)
@given(depthwise_configs())
def test_depthwise_float32_matches_reference_on_many_channels(config):
    test_float32_matches_reference_within_rounding.hypothesis.inner_test(config)


@settings(max_examples=15, deadline=None)
@given(depthwise_configs())
def test_depthwise_adjoint_identity_float64_on_many_channels(config):
    test_adjoint_identity_float64.hypothesis.inner_test(config)


@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a != "depthwise_same"])  # unpadded: not 'same'
def test_worked_example_3x3_input_2x2_filter(algorithm):
    """O11 = x11·F11 + x12·F12 + x21·F21 + x22·F22, …; the gradients worked out by hand:
    dL/dW_ab = Σ_ij x_(i+a)(j+b) · dL/dO_ij (X ⋆ dL/dO), and dL/dX = dL/dO zero-padded by 1 and fully
    convolved with F rotated 180°: dX11 = dO11·F11, dX12 = dO11·F12 + dO12·F11, …, dX22 = all four."""
    x = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])[None, None]
    f = np.array([[1.0, 2], [3, 4]])[None, None]
    grad_out = np.array([[1.0, -2], [3, 5]])[None, None]
    geometry = ((1, 1), (0, 0), (1, 1), 1)
    # O11 = 1·1 + 2·2 + 4·3 + 5·4 = 37, O12 = 2 + 6 + 15 + 24 = 47, O21 = 4 + 10 + 21 + 32 = 67, O22 = 77
    np.testing.assert_array_equal(conv2d_forward(x, f, None, *geometry, algorithm=algorithm)[0, 0],
                                  [[37, 47], [67, 77]])
    # dW11 = 1·1 + 2·(−2) + 4·3 + 5·5 = 34, dW12 = 2 − 6 + 15 + 30 = 41, dW21 = 4 − 10 + 21 + 40 = 55,
    # dW22 = 5 − 12 + 24 + 45 = 62
    np.testing.assert_array_equal(conv2d_grad_weight(x, grad_out, f.shape, *geometry, algorithm=algorithm)[0, 0],
                                  [[34, 41], [55, 62]])
    # dX11 = 1·1; dX12 = 1·2 + (−2)·1 = 0; dX13 = (−2)·2 = −4; dX21 = 1·3 + 3·1 = 6;
    # dX22 = 1·4 + (−2)·3 + 3·2 + 5·1 = 9; dX23 = (−2)·4 + 5·2 = 2; dX31 = 3·3 = 9; dX32 = 3·4 + 5·3 = 27; dX33 = 20
    np.testing.assert_array_equal(conv2d_grad_input(grad_out, f, x.shape, *geometry, algorithm=algorithm)[0, 0],
                                  [[1, 0, -4], [6, 9, 2], [9, 27, 20]])
    np.testing.assert_array_equal(conv2d_grad_bias(grad_out), [7.0])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_results_are_fresh_arrays_not_workspace(algorithm):
    """Workspaces are reused across calls; a returned array must never be overwritten by a later call."""
    rng = np.random.default_rng(2)
    groups = 2 if algorithm in DEPTHWISE else 1
    x, weight, bias = _random_case(rng, 3, 2, 8, 8, 4, (3, 3), groups, np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), groups)
    first = conv2d_forward(x, weight, bias, *geometry, algorithm=algorithm)
    grad_out = rng.standard_normal(first.shape).astype(np.float32)
    grad_x = conv2d_grad_input(grad_out, weight, x.shape, *geometry, algorithm=algorithm)
    grad_w = conv2d_grad_weight(x, grad_out, weight.shape, *geometry, algorithm=algorithm)
    kept = [a.copy() for a in (first, grad_x, grad_w)]
    conv2d_forward(-x, weight, bias, *geometry, algorithm=algorithm)
    conv2d_grad_input(-grad_out, weight, x.shape, *geometry, algorithm=algorithm)
    conv2d_grad_weight(-x, grad_out, weight.shape, *geometry, algorithm=algorithm)
    for array, copy in zip((first, grad_x, grad_w), kept):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("out_channels", [5, 40, 130])  # a narrow and a wide register tile; dL/dW padding first
@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (1, 0), (2, 2)])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_blocked_kernels_padding_each_sample_equal_them_on_the_input_padded_first(stride, padding, out_channels,
                                                                                     threads):
    """The blocked forward and dL/dW pad each sample themselves, in a scratch copy per thread (dL/dW with
    conv_blocked.PADDED_FIRST_FROM output channels or more pads the batch first): their results have
    the same bits as the same kernels on X zero-padded beforehand (padding 0, read in place at stride 1), on one
    and on two threads, and match the reference."""
    rng = np.random.default_rng(5)
    x, weight, bias = _random_case(rng, 5, 4, 9, 8, out_channels, (3, 3), 1, np.float32)
    padded = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))))
    geometry, unpadded = ((stride, stride), (padding, padding), (1, 1), 1), ((stride, stride), (0, 0), (1, 1), 1)
    previous = get_num_threads()
    set_num_threads(threads)
    try:
        out = conv2d_forward(x, weight, bias, *geometry, algorithm="blocked")
        np.testing.assert_array_equal(out, conv2d_forward(padded, weight, bias, *unpadded, algorithm="blocked"))
        grad_out = rng.standard_normal(out.shape).astype(np.float32)
        grad_w = conv2d_grad_weight(x, grad_out, weight.shape, *geometry, algorithm="blocked")
        np.testing.assert_array_equal(
            grad_w, conv2d_grad_weight(padded, grad_out, weight.shape, *unpadded, algorithm="blocked"))
    finally:
        set_num_threads(previous)
    _, expected_w, _ = conv2d_reference_grads(x, weight, grad_out, (stride, stride), (padding, padding), (1, 1), 1)
    np.testing.assert_allclose(grad_w, expected_w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("height, padding", [(4, 1), (8, 1), (6, 0)])  # runs of 5-6, 3-4 and 5-6 samples
@pytest.mark.parametrize("groups", [1, 2])
def test_the_blocked_forward_on_samples_in_runs_of_unequal_size(height, padding, groups):
    """On small planes a blocked forward task takes several samples (conv_blocked.sample_chunks); batch 11 leaves
    runs of two sizes. The reference's values, and the same bits on one and on two threads."""
    from tinygrad_cnn.ops.kernels.conv_blocked import sample_chunks
    rng = np.random.default_rng(7)
    x, weight, bias = _random_case(rng, 11, 6, height, height, 32 * groups, (3, 3), groups, np.float32)
    geometry = ((1, 1), (padding, padding), (1, 1), groups)
    out_hw = conv2d_output_size(height, 3, 1, padding)
    assert 1 < sample_chunks(out_hw * out_hw, 11) < 11 and 11 % sample_chunks(out_hw * out_hw, 11)
    previous = get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            set_num_threads(threads)
            results.append(conv2d_forward(x, weight, bias, *geometry, algorithm="blocked"))
    finally:
        set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])
    expected = conv2d_reference(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), *geometry)
    np.testing.assert_allclose(results[0], expected, rtol=1e-4, atol=1e-4)


def _packed_plainly(rows, width):
    """(groups, outputs, taps) rows as the blocked forward packs them: blocks of `width` outputs (zeros past the
    last), each tap's `width` weights contiguous."""
    groups, outputs, taps = rows.shape
    blocks = -(-outputs // width)
    padded = np.zeros((groups, blocks * width, taps))
    padded[:, :outputs] = rows
    return padded.reshape(groups * blocks, width, taps).transpose(0, 2, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_channels, in_channels, kernel, groups, width", [
    (8, 3, (3, 3), 1, 8), (40, 33, (3, 2), 1, 32), (6, 70, (1, 1), 2, 16), (4, 4, (2, 3), 4, 8),
    (64, 20, (3, 3), 1, 32), (32, 7, (5, 5), 2, 16)])
def test_the_blocked_kernels_weight_packing(out_channels, in_channels, kernel, groups, width, dtype):
    """The blocked forward packs W (packed[block, t, lane] = W[block's first channel + lane, t]) and, for dL/dX,
    W's 180° rotation transposed per group straight from W: tap t = (m, kh, kw) of output channel c holds
    W[g·M/groups + m, c, K_h−1−kh, K_w−1−kw]; zero past a group's channels, on a cache line; and a chosen set of
    taps in their order (a strided dL/dX's phase)."""
    from tinygrad_cnn.ops.kernels.conv_blocked import _packed_weights
    weight = np.random.default_rng(3).standard_normal((out_channels, in_channels // groups, *kernel)).astype(dtype)
    group_out, group_in = out_channels // groups, in_channels // groups
    rotated = np.zeros((groups, group_in, group_out, *kernel))
    for g in range(groups):
        for m in range(group_out):
            for c in range(group_in):
                rotated[g, c, m] = weight[g * group_out + m, c][::-1, ::-1]
    for transposed, rows in [(False, weight.reshape(groups, group_out, -1)),
                             (True, rotated.reshape(groups, group_in, -1))]:
        packed = _packed_weights(weight, groups, width, transposed)
        expected = _packed_plainly(rows, width)
        assert packed.ctypes.data % 64 == 0
        np.testing.assert_array_equal(packed.reshape(expected.shape), expected)
    # a phase of dL/dX at a stride: only the taps given, in their order, not rotated
    taps = ((kernel[0] - 1, 0), (kernel[1] - 1,))
    chosen = weight[:, :, list(taps[0])][:, :, :, list(taps[1])]
    rows = chosen.reshape(groups, group_out, group_in, -1).transpose(0, 2, 1, 3).reshape(groups, group_in, -1)
    expected = _packed_plainly(rows, width)
    packed = _packed_weights(weight, groups, width, True, taps=taps)
    np.testing.assert_array_equal(packed.reshape(expected.shape), expected)


@pytest.mark.parametrize("dtype, width, channels, plane", [
    (np.float32, 16, 16, (7, 9)), (np.float32, 32, 32, (4, 4)), (np.float32, 32, 20, (5, 5)),
    (np.float32, 8, 8, (6, 6)), (np.float32, 8, 6, (3, 5)), (np.float64, 16, 16, (8, 3)), (np.float64, 8, 8, (2, 2))])
def test_the_blocked_grad_weight_packs_grad_out_channel_blocked(dtype, width, channels, plane):
    """packed[(j·OH·OW + q)·width + l] = dL/dO[n + j, c0 + l, q], zero for l ≥ channels: a whole block in
    vector-sized squares transposed in registers plus a tail of positions, a partial block value by value."""
    from tinygrad_cnn.ops.kernels.conv_blocked import _pack_grads
    batch, out_channels, first_channel, n, count = 5, 48, 8, 1, 3
    grad = np.random.default_rng(4).standard_normal((batch, out_channels, *plane)).astype(dtype)
    span = plane[0] * plane[1]
    packed = np.full(count * span * width, np.nan, dtype)
    _pack_grads(grad.reshape(-1), n, count, first_channel, channels, grad.shape, width, packed)
    expected = np.zeros((count, span, width), dtype)
    expected[:, :, :channels] = grad[n:n + count, first_channel:first_channel + channels].reshape(
        count, channels, span).transpose(0, 2, 1)
    np.testing.assert_array_equal(packed.reshape(expected.shape), expected)


def test_output_size_formula():
    """floor((W + 2P − D·(F−1) − 1)/S) + 1, which is (W − F + 2P)/S + 1 when D = 1."""
    assert conv2d_output_size(28, 5, 1, 2, 1) == 28
    assert conv2d_output_size(32, 3, 2, 1, 1) == (32 - 3 + 2) // 2 + 1 == 16
    assert conv2d_output_size(10, 3, 1, 0, 2) == 6
    assert conv2d_output_size(7, 2, 3, 0, 1) == 2


@pytest.mark.parametrize("columns", [1, 63, 64, 129, 1000])
def test_the_split_gemm_equals_one_matmul_on_strided_views(columns):
    """The conv GEMMs run as column blocks on several Python threads (one BLAS thread each): the same numbers
    as one matmul, into strided output views as the weight gradient uses, and BLAS's thread count unchanged."""
    import numba
    from tinygrad_cnn.ops.kernels.gemm import gemm
    from tinygrad_cnn.runtime import get_blas_num_threads
    rng = np.random.default_rng(columns)
    a = rng.standard_normal((7, 300))
    b = rng.standard_normal((columns + 5, 300)).T[:, 2:columns + 2]   # (300, columns), strided
    out = np.zeros((9, columns + 3))[1:8, 3:]                        # (7, columns), strided
    before, threads = get_blas_num_threads(), numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    try:
        gemm(a, b, out)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    assert get_blas_num_threads() == before


@pytest.mark.parametrize("columns", [200, 1000, 9216])
def test_the_split_gemm_gives_the_same_bits_on_one_and_on_two_threads(columns):
    """Its column blocks are fixed by the product, not by the thread count: a BLAS may sum a column differently
    inside a narrower product (OpenBLAS's Haswell kernels do: run with OPENBLAS_CORETYPE=Haswell to see it)."""
    from tinygrad_cnn.ops.kernels.gemm import gemm
    rng = np.random.default_rng(columns)
    a = rng.standard_normal((32, 576)).astype(np.float32)
    b = rng.standard_normal((576, columns)).astype(np.float32)
    previous = get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            set_num_threads(threads)
            out = np.empty((32, columns), np.float32)
            gemm(a, b, out)
            results.append(out)
    finally:
        set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("stack", [1, 2, 5])
@pytest.mark.parametrize("shared", [True, False])
def test_the_stacked_gemm_equals_matmul(stack, shared):
    """gemm_stack splits a stack of products over threads: a @ b[s] (shared a) or a[s] @ b[s], as matmul."""
    import numba
    from tinygrad_cnn.ops.kernels.gemm import gemm_stack
    rng = np.random.default_rng(stack)
    a = rng.standard_normal((6, 30)) if shared else rng.standard_normal((stack, 6, 30))
    b = rng.standard_normal((stack, 40, 30)).transpose(0, 2, 1)    # strided, as the pointwise weight gradient
    out = np.zeros((stack, 6, 40))
    threads = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    try:
        gemm_stack(a, b, out)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-12, atol=1e-12)


FORKED_CHILD_RUNS_THE_SPLIT_GEMM = """
import os, numba, numpy as np
from tinygrad_cnn.ops.kernels.gemm import gemm
numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
a, b = np.ones((4, 8)), np.ones((8, 512))
out = np.empty((4, 512))
gemm(a, b, out)                          # the parent's helper threads exist now
child = os.fork()
if child == 0:
    gemm(a, b, out)                      # would wait forever on the parent's threads
    os._exit(0 if (out == 8).all() else 1)
_, status = os.waitpid(child, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_can_still_run_the_split_gemm():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", FORKED_CHILD_RUNS_THE_SPLIT_GEMM], capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "0", result.stderr


@pytest.mark.parametrize("algorithm, groups, stride", [("depthwise", 6, 1), ("depthwise_planes", 6, 1),
                                                      ("depthwise_same", 6, 1), ("blocked", 1, 1), ("blocked", 2, 1),
                                                      ("blocked", 1, 2), ("gemm", 1, 1), ("gemm", 2, 2)])
def test_the_conv_kernels_give_the_same_bits_on_one_and_on_two_threads(algorithm, groups, stride):
    """Each thread owns whole outputs (depthwise dL/dW: one channel block's partial sums over a fixed chunk of
    samples, added in order afterwards, or one output channel over all samples; blocked dL/dW: runs of tiles,
    each summed sample after sample; the GEMM: column blocks fixed by the product), so the thread count never
    changes the order of a sum."""
    import tinygrad_cnn as tc
    from tinygrad_cnn.runtime.threads import get_num_threads
    rng = np.random.default_rng(5)
    x, weight, bias = _random_case(rng, 5, 6, 9, 9, 36, (3, 3), groups, np.float32)
    geometry = ((stride, stride), (1, 1), (1, 1), groups)
    grad_out = rng.standard_normal(conv2d_forward(x, weight, bias, *geometry).shape).astype(np.float32)
    results, threads = [], get_num_threads()
    try:
        for count in (1, 2):
            tc.set_num_threads(count)
            results.append((conv2d_forward(x, weight, bias, *geometry, algorithm=algorithm),
                            conv2d_grad_input(grad_out, weight, x.shape, *geometry, algorithm=algorithm),
                            conv2d_grad_weight(x, grad_out, weight.shape, *geometry, algorithm=algorithm)))
    finally:
        tc.set_num_threads(threads)
    for one, every in zip(*results):
        np.testing.assert_array_equal(one, every)
