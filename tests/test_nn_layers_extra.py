"""The layers added with the toolbox: PyTorch's arguments, defaults, initialisation, state_dict keys and repr,
each layer equal to its functional form, the loss modules, and constructor errors."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn import functional as F


def x4(seed=0):
    return tc.tensor(np.random.default_rng(seed).standard_normal((2, 4, 5, 6)).astype(np.float32))


@pytest.mark.parametrize("layer, function", [
    (nn.GELU(), F.gelu), (nn.GELU("tanh"), lambda x: F.gelu(x, "tanh")), (nn.SiLU(inplace=True), F.silu),
    (nn.ELU(0.3), lambda x: F.elu(x, 0.3)), (nn.Hardtanh(-0.2, 0.4), lambda x: F.hardtanh(x, -0.2, 0.4)),
    (nn.ReLU6(), F.relu6), (nn.ReLU(inplace=True), F.relu), (nn.LeakyReLU(0.2, inplace=True),
                                                              lambda x: F.leaky_relu(x, 0.2)),
    (nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True),
     lambda x: F.interpolate(x, (7, 9), mode="bilinear", align_corners=True)),
    (nn.AdaptiveMaxPool2d((2, 4)), lambda x: F.adaptive_max_pool2d(x, (2, 4))),
    (nn.Dropout(0.3, inplace=True).eval(), lambda x: x),
])
def test_layers_equal_their_functional_forms(layer, function):
    np.testing.assert_array_equal(layer(x4()).numpy(), function(x4()).numpy())


def test_norm_layers_init_state_dict_and_forward():
    ln = nn.LayerNorm([5, 6])
    assert list(ln.state_dict()) == ["weight", "bias"] and ln.weight.shape == (5, 6)
    assert np.all(ln.weight.numpy() == 1) and np.all(ln.bias.numpy() == 0)
    np.testing.assert_allclose(ln(x4()).numpy(), F.layer_norm(x4(), (5, 6)).numpy(), rtol=1e-6)
    assert list(nn.LayerNorm(6, elementwise_affine=False).state_dict()) == []
    assert list(nn.LayerNorm(6, bias=False).state_dict()) == ["weight"]
    gn = nn.GroupNorm(2, 4)
    assert list(gn.state_dict()) == ["weight", "bias"] and gn.weight.shape == (4,)
    np.testing.assert_allclose(gn(x4()).numpy(), F.group_norm(x4(), 2).numpy(), rtol=1e-6)
    assert repr(gn) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(5\) must be divisible by num_groups \(2\)"):
        nn.GroupNorm(2, 5)


def test_embedding_init_padding_and_pretrained():
    tc.manual_seed(0)
    emb = nn.Embedding(10, 4, padding_idx=-1)
    assert emb.padding_idx == 9 and np.all(emb.weight.numpy()[9] == 0)
    tc.manual_seed(0)
    draws = np.random.default_rng(0).normal(0.0, 1.0, (10, 4))
    np.testing.assert_allclose(emb.weight.numpy()[:9], draws[:9], rtol=1e-6)  # N(0, 1) from the package generator
    assert list(emb.state_dict()) == ["weight"] and emb(np.array([[1, 9]])).shape == (1, 2, 4)
    frozen = nn.Embedding.from_pretrained(tc.tensor(np.eye(3)))
    assert not frozen.weight.requires_grad and frozen(np.array([2])).numpy().tolist() == [[0, 0, 1]]
    with pytest.raises(ValueError, match=r"Embedding: padding_idx must lie in \[-10, 10\), got 10"):
        nn.Embedding(10, 2, padding_idx=10)


def test_prelu_layer_learns_its_slopes():
    layer = nn.PReLU(4, init=0.1)
    assert list(layer.state_dict()) == ["weight"] and np.allclose(layer.weight.numpy(), 0.1)
    x = x4()
    layer(x).sum().backward()
    expected = np.minimum(x.numpy(), 0).sum(axis=(0, 2, 3))  # d/da of a·min(x, 0)
    np.testing.assert_allclose(layer.weight.grad.numpy(), expected, rtol=1e-5)


def test_loss_modules_hold_their_options():
    rng = np.random.default_rng(0)
    z, t = tc.tensor(rng.standard_normal((5, 3))), rng.integers(0, 3, 5)
    w = tc.tensor(np.array([1.0, 2.0, 0.5]))
    module = nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1, reduction="sum")
    np.testing.assert_allclose(module(z, t).numpy(), F.cross_entropy(z, t, w, ignore_index=1, reduction="sum",
                                                                     label_smoothing=0.1).numpy())
    assert list(module.state_dict()) == ["weight"]
    log_p = z.log_softmax(1)
    np.testing.assert_allclose(nn.NLLLoss(w)(log_p, t).numpy(), F.nll_loss(log_p, t, w).numpy())
    y = tc.tensor(rng.standard_normal((5, 3)))
    probabilities = z.sigmoid()
    pairs = [(nn.L1Loss(), F.l1_loss(z, y)), (nn.SmoothL1Loss(beta=0.5), F.smooth_l1_loss(z, y, beta=0.5)),
             (nn.HuberLoss(delta=2.0), F.huber_loss(z, y, delta=2.0)), (nn.MSELoss(reduction="none"),
                                                                         F.mse_loss(z, y, reduction="none"))]
    for module, expected in pairs:
        np.testing.assert_allclose(module(z, y).numpy(), expected.numpy())
    target = tc.tensor(rng.uniform(0, 1, (5, 3)))
    np.testing.assert_allclose(nn.BCELoss()(probabilities, target).numpy(),
                               F.binary_cross_entropy(probabilities, target).numpy())
    np.testing.assert_allclose(nn.KLDivLoss(reduction="batchmean")(log_p, target).numpy(),
                               F.kl_div(log_p, target, reduction="batchmean").numpy())
    with pytest.raises(ValueError, match="CrossEntropyLoss: size_average and reduce are deprecated"):
        nn.CrossEntropyLoss(size_average=True)


def test_reprs_follow_pytorch():
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)" and repr(nn.ReLU6()) == "ReLU6()"
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.Embedding(5, 2)) == "Embedding(5, 2)"
    assert repr(nn.Dropout2d(0.2)) == "Dropout2d(p=0.2)"
