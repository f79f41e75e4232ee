"""conv2d through the Function: gradcheck in float64 over the options, the reference through Tensors, and
the errors a user sees for bad arguments."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from reference import conv2d_reference, conv2d_reference_grads
from tinygrad_cnn import Tensor
from tinygrad_cnn.nn.functional import conv2d, max_pool2d


def _tensors(rng, x_shape, w_shape, bias=True, dtype=np.float64):
    x = tc.tensor(rng.standard_normal(x_shape), requires_grad=True, dtype=dtype)
    w = tc.tensor(rng.standard_normal(w_shape), requires_grad=True, dtype=dtype)
    b = tc.tensor(rng.standard_normal(w_shape[0]), requires_grad=True, dtype=dtype) if bias else None
    return x, w, b


# (input shape, weight shape, stride, padding, dilation, groups, bias); each row exercises one option or path
GRADCHECK_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0, 1, 1, True),             # plain; direct kernels
    ((1, 1, 7, 7), (2, 1, 5, 5), 1, 2, 1, 1, True),             # C_in = 1, padding 2
    ((2, 2, 7, 6), (3, 2, 3, 2), (2, 1), (1, 0), 1, 1, True),   # rectangular kernel and stride; GEMM kernels
    ((1, 2, 9, 9), (2, 2, 3, 3), 3, 2, 2, 1, False),            # stride 3, dilation 2, no bias
    ((2, 4, 5, 5), (6, 2, 3, 3), 1, 1, 1, 2, True),             # groups 2
    ((2, 3, 6, 6), (3, 1, 3, 3), 2, 1, 1, 3, True),             # depthwise, stride 2
    ((2, 2, 7, 6), (4, 1, 3, 2), (1, 2), (2, 1), (2, 1), 2, True),  # depthwise ×2, rectangular, dilation
    ((3, 20, 4, 5), (40, 1, 3, 3), 1, 1, 1, 20, True),          # depthwise ×2 over two blocks of channels
    ((2, 18, 5, 4), (18, 1, 2, 3), 2, (0, 1), (2, 1), 18, False),  # depthwise, 18 channels, stride 2, dilation
    ((2, 4, 4, 3), (5, 4, 1, 1), 1, 0, 1, 1, True),             # 1×1: the pointwise GEMM
    ((1, 2, 6, 5), (2, 2, 4, 2), 1, "same", 1, 1, True),        # 'same' with even kernels: asymmetric padding
    ((1, 2, 7, 6), (2, 2, 3, 3), 1, "same", 2, 1, True),        # 'same' with dilation
    ((1, 2, 5, 5), (3, 2, 2, 2), 1, "valid", 1, 1, True),
    ((1, 32, 2, 3), (32, 32, 1, 2), 1, 0, 1, 1, True),          # 32 channels: GEMM kernels at stride 1
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=str)
def test_gradcheck(case):
    x_shape, w_shape, stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(0)
    x, w, b = _tensors(rng, x_shape, w_shape, bias)
    inputs = (x, w, b) if bias else (x, w)

    def fn(x, w, b=None):
        return conv2d(x, w, b, stride, padding, dilation, groups)

    assert tc.gradcheck(fn, inputs, n_projections=2)


def test_same_padding_keeps_the_size():
    rng = np.random.default_rng(1)
    for kernel, dilation in [((3, 3), 1), ((4, 2), 1), ((5, 4), 2)]:
        x, w, b = _tensors(rng, (1, 2, 7, 6), (3, 2) + kernel)
        assert conv2d(x, w, b, padding="same", dilation=dilation).shape == (1, 3, 7, 6)


def test_matches_reference_through_tensors_and_keeps_float32():
    rng = np.random.default_rng(2)
    x, w, b = _tensors(rng, (3, 4, 8, 7), (6, 2, 3, 2), dtype=np.float32)
    out = conv2d(x, w, b, stride=(1, 2), padding=1, dilation=(2, 1), groups=2)
    assert out.dtype == np.float32
    expected = conv2d_reference(x.numpy(), w.numpy(), b.numpy(), (1, 2), 1, (2, 1), 2)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(tc.tensor(grad))
    for tensor, expected_grad in zip((x, w, b), conv2d_reference_grads(x.numpy(), w.numpy(), grad, (1, 2), 1,
                                                                       (2, 1), 2)):
        assert tensor.grad.dtype == np.float32
        np.testing.assert_allclose(tensor.grad.numpy(), expected_grad, rtol=1e-4, atol=1e-4)


def test_non_contiguous_input_gives_the_same_result():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((2, 3, 6, 5))
    w = tc.tensor(rng.standard_normal((4, 3, 3, 3)))
    transposed = tc.tensor(np.ascontiguousarray(data.transpose(0, 1, 3, 2))).permute(0, 1, 3, 2)
    assert not transposed.numpy().flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(conv2d(transposed, w).numpy(), conv2d(tc.tensor(data), w).numpy(), rtol=1e-12)


def test_small_cnn_stack_gradcheck():
    """conv → relu → max_pool → flatten → matmul, all inputs checked at once."""
    rng = np.random.default_rng(4)
    x, w, b = _tensors(rng, (2, 1, 6, 6), (3, 1, 3, 3))
    dense = tc.tensor(rng.standard_normal((3 * 2 * 2, 4)), requires_grad=True)

    def net(x, w, b, dense):
        hidden = max_pool2d(conv2d(x, w, b).relu(), 2)
        return hidden.reshape(x.shape[0], -1) @ dense

    assert tc.gradcheck(net, (x, w, b, dense), n_projections=2)


def test_only_the_needed_gradients_are_computed():
    rng = np.random.default_rng(5)
    x = tc.tensor(rng.standard_normal((1, 2, 5, 5)))
    w = tc.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    out = conv2d(x, w)
    out.backward(tc.tensor(rng.standard_normal(out.shape)))
    assert x.grad is None and w.grad is not None


BAD_ARGUMENTS = [
    (dict(x=(2, 3, 5)), "4-D input"),
    (dict(w=(4, 3, 3)), "4-D weight"),
    (dict(w=(4, 2, 3, 3)), "expects C_in/groups"),
    (dict(w=(4, 1, 3, 3), groups=2), "groups=2 must divide"),
    (dict(w=(4, 1, 3, 3), groups=3), "groups=3 must divide"),  # C_out = 4 is not a multiple of 3
    (dict(w=(4, 3, 7, 3)), "larger than the padded input"),
    (dict(w=(4, 3, 3, 3), dilation=3), "larger than the padded input"),
    (dict(stride=0), "at least 1"),
    (dict(dilation=(1, 0)), "at least 1"),
    (dict(padding=-1), "non-negative"),
    (dict(padding="same", stride=2), "needs stride 1"),
    (dict(padding="full"), "'valid' or 'same'"),
    (dict(b=(5,)), r"bias must have shape \(4,\)"),
    (dict(b_dtype=np.float32), "float32"),
    (dict(x_dtype=np.int64), "int64"),
    (dict(groups=0), "positive int"),
]


@pytest.mark.parametrize("change, message", BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_raise_a_clear_error(change, message):
    args = dict(x=(2, 3, 6, 5), w=(4, 3, 3, 3), b=(4,), stride=1, padding=0, dilation=1, groups=1,
                x_dtype=np.float64, b_dtype=np.float64)
    args.update(change)
    x = tc.tensor(np.ones(args["x"]), dtype=args["x_dtype"])
    w, b = tc.tensor(np.ones(args["w"])), tc.tensor(np.ones(args["b"]), dtype=args["b_dtype"])
    with pytest.raises(ValueError, match=message) as error:
        conv2d(x, w, b, args["stride"], args["padding"], args["dilation"], args["groups"])
    assert str(error.value).startswith("conv2d:")


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="conv2d: input must be a Tensor"):
        conv2d(np.ones((1, 1, 3, 3)), tc.tensor(np.ones((1, 1, 2, 2))))
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        conv2d(tc.tensor(np.ones((1, 1, 3, 3))), tc.tensor(np.ones((1, 1, 2, 2))), stride=(1, 2, 3))
