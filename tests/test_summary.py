"""summary, conv_output_size, conv_macs, receptive fields and to_dot, checked against hand computations
and published figures."""
import os
import sys
import warnings

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.summary import conv_macs, conv_output_size

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "mnist"))
from models import cnn, lenet  # noqa: E402


# ---- the three formulas ---------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, stride, padding, dilation, expected", [
    (28, 3, 1, 0, 1, 26), (28, 5, 1, 2, 1, 28), (32, 3, 2, 1, 1, 16), (224, 7, 2, 3, 1, 112),
    (10, 3, 1, 0, 2, 6), (7, 7, 1, 0, 1, 1),
])
@pytest.mark.filterwarnings("ignore:conv_output_size")  # some of these leave a padding row unread
def test_conv_output_size_follows_the_rule(size, kernel, stride, padding, dilation, expected):
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected


def test_conv_output_size_warns_with_the_number_of_dropped_rows():
    with pytest.warns(UserWarning, match="last 1 row"):
        assert conv_output_size(10, 3, stride=3) == 3  # windows start at 0, 3, 6: row 9 is never read


def test_conv_output_size_exact_division_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv_output_size(9, 3, stride=3)


def test_conv_output_size_refuses_a_layer_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(4, 5)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(4, 3, stride=0)


def test_conv_macs_is_hw_k2_n_m_and_hwnm_for_1x1():
    assert conv_macs(24, 24, 3, 32, 64) == 24 * 24 * 9 * 32 * 64
    assert conv_macs(16, 16, 1, 64, 128) == 16 * 16 * 64 * 128
    assert conv_macs(8, 8, 3, 32, 32, groups=32) == 8 * 8 * 9 * 32


def test_summary_follows_same_padding_with_an_even_kernel():
    # 'same' pads an even kernel's odd row at the bottom/right only: the output keeps the input's size
    model = nn.Sequential(nn.Conv2d(1, 2, 4, padding="same"), nn.Conv2d(2, 2, (3, 2), padding="same", dilation=2))
    layers = tc.summary(model, (1, 1, 9, 8)).layers
    assert [layer.output_shape for layer in layers] == [(1, 2, 9, 8), (1, 2, 9, 8)]
    # field 4, start 0.5 + (3/2 − 1) = 1; then the 3-tap kernel dilated by 2 spans 5: 4 + 4 = 8, start 1 + (2 − 2)
    assert [(layer.receptive_field, layer.start) for layer in layers] == [(4, 1.0), (8, 1.0)]


# ---- the MNIST models, counted by hand --------------------------------------------------------
def test_summary_of_the_mnist_cnn_matches_hand_counts():
    s = tc.summary(cnn(), (1, 1, 28, 28))
    by_name = {layer.name: layer for layer in s.layers}
    assert by_name["0"].output_shape == (1, 32, 26, 26) and by_name["0"].params == 32 * 9 + 32
    assert by_name["2"].output_shape == (1, 64, 24, 24) and by_name["2"].params == 64 * 32 * 9 + 64
    assert by_name["4"].output_shape == (1, 64, 12, 12)
    assert by_name["7"].params == 9216 * 128 + 128
    assert by_name["0"].macs == 26 * 26 * 9 * 1 * 32
    assert by_name["2"].macs == 24 * 24 * 9 * 32 * 64
    assert s.total_params == s.trainable_params == 320 + 18_496 + 1_179_776 + 1_290
    assert s.total_macs == 194_688 + 10_616_832 + 9216 * 128 + 128 * 10
    # receptive field: 3, then +2 (3x3, jump 1), then +1 (2x2 pool, jump 1) -> 6 with jump 2
    assert [(by_name[n].receptive_field, by_name[n].jump) for n in "024"] == [(3, 1), (5, 1), (6, 2)]
    assert by_name["7"].receptive_field is None  # a Linear layer sees the whole image
    text = str(s)
    assert "Conv2d" in text and "1,199,882" in text and "[1, 64, 24, 24]" in text


def test_summary_of_lenet_matches_hand_counts():
    s = tc.summary(lenet(), (1, 1, 28, 28))
    assert s.total_params == 156 + 2_416 + 48_120 + 10_164 + 850
    assert s.total_macs == 28 * 28 * 25 * 6 + 10 * 10 * 25 * 6 * 16 + 400 * 120 + 120 * 84 + 84 * 10
    fields = [(layer.receptive_field, layer.jump, layer.start) for layer in s.layers[:6]]
    # conv5 p2: 5, start 0.5 + (2 - 2) = 0.5; pool: 6, jump 2; conv5: 6 + 4·2 = 14; pool: 14 + 2 = 16, jump 4
    assert fields[0] == (5, 1, 0.5) and fields[2][:2] == (6, 2) and fields[3][:2] == (14, 2)
    assert fields[5][:2] == (16, 4)


def test_summary_records_no_graph_and_restores_the_model():
    model = cnn()
    tc.summary(model, (2, 1, 28, 28))
    assert "forward" not in vars(model[0])
    out = model(tc.tensor(np.zeros((2, 1, 28, 28), np.float32)))
    assert out.requires_grad  # the model still records a graph normally


# ---- published figures ----------------------------------------------------------------------
def vgg16():
    layers, channels = [], 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks, channels = [], 64
        for width, stride in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
            blocks.append(BasicBlock(channels, width, stride))
            channels = width
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.layers(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.avgpool(x).flatten(1))


def test_vgg16_has_the_published_parameter_count_and_cost():
    s = tc.summary(vgg16(), (1, 3, 224, 224))
    assert s.total_params == 138_357_544
    assert s.total_macs == pytest.approx(15.5e9, rel=0.01)
    assert s.layers[-1].output_shape == (1, 1000)


def test_resnet18_has_the_published_parameter_count_and_cost():
    s = tc.summary(ResNet18(), (1, 3, 224, 224))
    assert s.total_params == 11_689_512
    assert s.total_macs == pytest.approx(1.8e9, rel=0.02)
    # the stem: conv 7x7/2 -> RF 7, jump 2; max-pool 3x3/2 -> RF 11, jump 4
    assert [(l.receptive_field, l.jump) for l in s.layers[:4]] == [(7, 2), (7, 2), (7, 2), (11, 4)]


# ---- custom layers ----------------------------------------------------------------------------
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.factor = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        return x * self.factor


class CountedScale(Scale):
    def macs(self, input_shape, output_shape):
        return int(np.prod(output_shape))


def test_a_custom_layer_shows_shapes_params_and_unknown_macs_unless_it_counts_them():
    s = tc.summary(nn.Sequential(nn.Conv2d(1, 2, 3), Scale()), (1, 1, 5, 5))
    assert s.layers[1].output_shape == (1, 2, 3, 3) and s.layers[1].params == 1 and s.layers[1].macs is None
    assert "unknown" in str(s)
    s = tc.summary(nn.Sequential(nn.Conv2d(1, 2, 3), CountedScale()), (1, 1, 5, 5))
    assert s.layers[1].macs == 18 and s.total_macs == 3 * 3 * 9 * 2 + 18


# ---- to_dot -----------------------------------------------------------------------------------
def test_to_dot_lists_ops_shapes_and_marks_leaves():
    x = tc.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    w = tc.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    dot = tc.to_dot(((x @ w).relu() + 1).sum())
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert "MatMul\\n3×2" in dot and "Sum\\nscalar" in dot
    assert dot.count("shape=ellipse") == 3  # x, w and the constant 1
    assert dot.count("fillcolor") == 2  # only x and w require grad
    assert dot.count("->") == 6  # x, w -> MatMul -> ReLU; ReLU, 1 -> Add -> Sum
