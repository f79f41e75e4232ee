"""Module: registration, naming, modes, state_dict round trips, strict/non-strict loading, repr, containers."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn


class Block(nn.Module):
    """Two layers and a buffer: a small hand-written module to check registration."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4, np.float32))
        self.register_buffer("count", np.zeros(2, np.int64))
        self.plain = tc.tensor([1.0])  # a Tensor that is not a Parameter is a plain attribute

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.BatchNorm1d(5))
        self.heads = nn.ModuleList([nn.Linear(5, 2), nn.Linear(5, 1, bias=False)])

    def forward(self, x):
        h = self.features(x)
        return [head(h) for head in self.heads]


def test_attributes_register_parameters_modules_and_buffers():
    block = Block()
    assert [n for n, _ in block.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert [n for n, _ in block.named_buffers()] == ["count"]
    assert [n for n, _ in block.named_children()] == ["fc"]
    assert [id(m) for m in block.children()] == [id(block.fc)]
    assert "plain" not in dict(block.named_parameters()) and "plain" not in dict(block.named_buffers())
    assert isinstance(block.count, Tensor) and block.count.dtype == np.int64
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in block.parameters())


def test_dotted_names_follow_pytorch():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
        "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    assert list(net.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
        "features.2.running_mean", "features.2.running_var", "features.2.num_batches_tracked",
        "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    assert [n for n, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "heads", "heads.0", "heads.1"]
    assert len(list(net.modules())) == 8


def test_parameters_without_recursion_are_the_modules_own():
    block = Block()
    assert [id(p) for p in block.parameters(recurse=False)] == [id(block.scale)]


def test_shared_parameter_is_listed_once_but_saved_under_every_name():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert len(list(model.parameters())) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_reassigning_and_deleting_attributes():
    block = Block()
    with pytest.raises(TypeError, match="parameter 'scale'"):
        block.scale = tc.tensor(np.ones(4))
    block.scale = None
    assert "scale" not in dict(block.named_parameters())
    block.fc = nn.Identity()  # a module replaces a module
    assert [n for n, _ in block.named_parameters()] == []
    block.count = np.arange(2)  # assigning to a buffer name keeps it a buffer
    assert np.array_equal(block.state_dict()["count"], [0, 1])
    del block.count
    assert "count" not in block.state_dict()
    with pytest.raises(AttributeError, match="no attribute 'count'"):
        block.count


def test_buffer_set_to_none_is_left_out_of_the_state_dict():
    block = Block()
    block.register_buffer("maybe", None)
    assert block.maybe is None and "maybe" not in block.state_dict()


def test_registration_without_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_bad_names_and_types_are_refused():
    block = Block()
    with pytest.raises(KeyError):
        block.register_buffer("a.b", np.zeros(1))
    with pytest.raises(TypeError):
        block.register_parameter("w", tc.tensor([1.0]))
    with pytest.raises(TypeError):
        block.add_module("m", "not a module")


def test_modules_start_in_training_mode_and_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.heads[1].training


def test_zero_grad_sets_none_or_zeros():
    block = Block()
    block(tc.tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())


def test_calling_a_module_runs_forward_and_base_forward_is_missing():
    block = Block()
    x = tc.tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    np.testing.assert_array_equal(block(x).numpy(), block.forward(x).numpy())
    with pytest.raises(NotImplementedError, match="ModuleList"):
        nn.ModuleList()(x)


def test_apply_visits_every_module_children_first():
    net = Net()
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "ReLU", "BatchNorm1d", "Sequential", "Linear", "Linear", "ModuleList", "Net"]


def test_double_converts_floating_parameters_and_buffers_only():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.features[2].running_mean.dtype == np.float64
    assert net.features[2].num_batches_tracked.dtype == np.int64
    assert all(p.dtype == np.float32 for p in net.float().parameters())


# ---- state_dict ---------------------------------------------------------------------------------
def test_state_dict_values_are_copies():
    net = Net()
    state = net.state_dict()
    state["heads.0.bias"][:] = 123
    assert not np.any(net.heads[0].bias.numpy() == 123)
    assert isinstance(state["features.2.num_batches_tracked"], np.ndarray)
    assert state["features.2.num_batches_tracked"].shape == () and state["features.2.num_batches_tracked"].dtype == np.int64


def test_state_dict_round_trip_reproduces_outputs_and_keeps_parameter_objects():
    tc.manual_seed(0)
    source, target = Net(), Net()
    x = tc.tensor(np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32))
    source(x)  # one training step of BatchNorm statistics
    weight_object = target.heads[0].weight
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.heads[0].weight is weight_object
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    source.eval(), target.eval()
    for a, b in zip(source(x), target(x)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_accepts_tensors_and_casts_to_the_models_dtype():
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": tc.tensor(np.eye(2)), "bias": np.array([1, 2])})
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.numpy(), np.eye(2))
    np.testing.assert_array_equal(lin.bias.numpy(), [1, 2])


def test_load_bumps_versions_so_stale_graphs_are_caught():
    lin = nn.Linear(2, 1)
    out = (lin.weight * lin.weight).sum()  # Mul saves the weight's array
    lin.load_state_dict({"weight": np.zeros((1, 2)), "bias": np.zeros(1)})
    with pytest.raises(RuntimeError, match="modified in place"):
        out.backward()


def test_strict_loading_lists_every_missing_and_unexpected_key_and_copies_nothing():
    net = Net()
    before = net.state_dict()
    state = Net().state_dict()
    del state["heads.0.bias"], state["features.2.running_var"]
    state["extra.weight"] = np.zeros(1)
    state["heads.9.bias"] = np.zeros(1)
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    message = str(error.value)
    for key in ("heads.0.bias", "features.2.running_var", "extra.weight", "heads.9.bias"):
        assert f"'{key}'" in message
    assert "Missing key(s)" in message and "Unexpected key(s)" in message
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_non_strict_loading_returns_keys_and_loads_the_rest():
    net, other = Net(), Net()
    state = other.state_dict()
    del state["heads.1.weight"]
    state["unknown"] = np.ones(3)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["heads.1.weight"] and result.unexpected_keys == ["unknown"]
    np.testing.assert_array_equal(net.heads[0].weight.numpy(), other.heads[0].weight.numpy())


@pytest.mark.parametrize("strict", [True, False])
def test_shape_mismatch_always_raises_naming_key_and_both_shapes(strict):
    net = Net()
    state = net.state_dict()
    state["heads.0.weight"] = np.zeros((3, 5))
    with pytest.raises(RuntimeError, match=r"heads\.0\.weight.*\(3, 5\).*\(2, 5\)"):
        net.load_state_dict(state, strict=strict)


# ---- repr ---------------------------------------------------------------------------------------
def test_repr_matches_pytorch_layout():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.25), nn.Identity()))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.25)\n"
        "    (1): Identity()\n"
        "  )\n"
        ")")
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


# ---- containers ---------------------------------------------------------------------------------
def test_sequential_is_indexable_sliceable_and_iterable():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3
    assert model[0] is layers[0] and model[-1] is layers[2]
    assert [id(m) for m in model] == [id(m) for m in layers]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2 and tail[1] is layers[2]
    assert list(tail.state_dict()) == ["2.weight", "2.bias"]  # slicing keeps names, as PyTorch
    with pytest.raises(IndexError):
        model[3]
    x = tc.tensor(np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32))
    np.testing.assert_array_equal(model(x).numpy(), layers[2](layers[1](layers[0](x))).numpy())
    replacement = nn.Tanh()
    model[1] = replacement
    assert model[1] is replacement and [n for n, _ in model.named_children()] == ["0", "1", "2"]


def test_sequential_from_ordered_dict_and_append():
    model = nn.Sequential(OrderedDict([("conv", nn.Identity()), ("act", nn.ReLU())]))
    model.append(nn.Linear(1, 1))
    assert [n for n, _ in model.named_children()] == ["conv", "act", "2"]


def test_module_list_append_extend_index_iterate_and_register():
    heads = nn.ModuleList()
    heads.append(nn.Linear(2, 2))
    heads.extend([nn.Linear(2, 3), nn.Linear(3, 1)])
    assert len(heads) == 3 and heads[-1].out_features == 1
    assert [m.out_features for m in heads] == [2, 3, 1]
    assert [m.out_features for m in heads[1:]] == [3, 1]
    heads[0] = nn.Linear(2, 5)
    assert heads[0].out_features == 5
    assert [n for n, _ in heads.named_parameters()][:2] == ["0.weight", "0.bias"]


def test_identity_returns_its_input():
    x = tc.tensor([1.0, 2.0])
    assert nn.Identity()(x) is x


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros(3))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float64
    assert repr(p).startswith("Parameter containing:")


def test_deepcopy_gives_an_independent_model():
    import copy
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    clone = copy.deepcopy(model)
    assert clone[0].weight is not model[0].weight
    np.testing.assert_array_equal(clone[0].weight.numpy(), model[0].weight.numpy())
    with tc.no_grad():
        clone[0].weight.zero_()
    assert np.any(model[0].weight.numpy() != 0)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
