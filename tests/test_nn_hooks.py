"""Module hooks (forward pre-, forward and full backward hooks with removable handles), requires_grad_, to(),
named_* with PyTorch's arguments, and the keyed containers ModuleDict, ParameterList, ParameterDict."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn


def linear_with(weight, bias):
    layer = nn.Linear(*weight.shape[::-1]).double()
    with tc.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def test_forward_pre_hook_replaces_args_and_forward_hook_the_output():
    layer = nn.Linear(3, 2)
    seen = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    post = layer.register_forward_hook(lambda m, args, out: seen.append((m, args[0].numpy().copy())) or out + 1)
    x = tc.tensor(np.ones((1, 3), np.float32))
    out = layer(x)
    expected = 2 * np.ones((1, 3)) @ layer.weight.numpy().T + layer.bias.numpy() + 1
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert seen[0][0] is layer and np.all(seen[0][1] == 2)  # the forward hook sees the replaced args
    pre.remove()
    with post:
        pass  # leaving the with block removes it
    np.testing.assert_allclose(layer(x).numpy(), np.ones((1, 3)) @ layer.weight.numpy().T + layer.bias.numpy(),
                               rtol=1e-6)
    assert len(seen) == 1


def test_full_backward_hook_sees_input_and_output_gradients_and_can_replace_them():
    rng = np.random.default_rng(0)
    w, b, x = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal((4, 3))
    layer = linear_with(w, b)
    seen = {}

    def hook(module, grad_input, grad_output):
        seen.update(module=module, grad_input=[g.numpy().copy() for g in grad_input],
                    grad_output=[g.numpy().copy() for g in grad_output])
        return (grad_input[0] * 3,)
    handle = layer.register_full_backward_hook(hook)
    inputs = tc.tensor(x, requires_grad=True)
    upstream = rng.standard_normal((4, 2))
    (layer(inputs) * tc.tensor(upstream)).sum().backward()
    assert seen["module"] is layer
    np.testing.assert_allclose(seen["grad_output"][0], upstream, rtol=1e-12)
    np.testing.assert_allclose(seen["grad_input"][0], upstream @ w, rtol=1e-12)  # dL/dx = dL/dy · W
    np.testing.assert_allclose(inputs.grad.numpy(), 3 * upstream @ w, rtol=1e-12)  # replaced by the hook
    np.testing.assert_allclose(layer.weight.grad.numpy(), upstream.T @ x, rtol=1e-12)  # parameters unaffected
    handle.remove()
    inputs.grad = None
    (layer(inputs) * tc.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(inputs.grad.numpy(), upstream @ w, rtol=1e-12)


def test_full_backward_hook_without_input_gradients_gets_none():
    layer = nn.Linear(3, 2).double()
    calls = []
    layer.register_full_backward_hook(lambda m, gi, go: calls.append((gi, go[0].shape)))
    layer(tc.tensor(np.ones((5, 3)))).sum().backward()
    assert calls == [((None,), (5, 2))]


def test_requires_grad_freezes_and_to_accepts_devices_and_dtypes():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert model.requires_grad_(False) is model and not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
    assert model.to("cpu") is model and model.cpu() is model
    model.to("cpu", tc.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    model.to(dtype=np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    model.to(tc.tensor(np.zeros(1)))  # a tensor's dtype
    assert all(p.dtype == np.float64 for p in model.parameters())
    with pytest.raises(RuntimeError, match=r"Sequential.to: device 'cuda:0' is not supported here: tinygrad_cnn runs on the CPU"):
        model.to("cuda:0")
    with pytest.raises(RuntimeError, match="Sequential.cuda: CUDA is not supported here"):
        model.cuda()
    with pytest.raises(TypeError, match="Sequential.to: only float32 and float64 are supported, got int64"):
        model.to(np.int64)


def test_named_members_take_pytorchs_arguments():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_parameters(prefix="net")] == ["net.0.weight", "net.0.bias"]
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == ["0.weight", "0.bias", "2.weight",
                                                                              "2.bias"]
    assert [n for n, _ in model.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [n for n, _ in model.named_modules(prefix="m")] == ["m", "m.0", "m.1"]
    assert [n for n, _ in model.named_parameters(recurse=False)] == []


def test_module_dict():
    blocks = nn.ModuleDict({"conv": nn.Conv2d(1, 2, 3), "act": nn.ReLU()})
    blocks["head"] = nn.Linear(2, 1)
    assert list(blocks) == ["conv", "act", "head"] and "act" in blocks and len(blocks) == 3
    assert list(blocks.state_dict()) == ["conv.weight", "conv.bias", "head.weight", "head.bias"]
    assert isinstance(blocks.pop("act"), nn.ReLU) and list(blocks.keys()) == ["conv", "head"]
    blocks.update(OrderedDict(extra=nn.Identity()))
    assert list(blocks) == ["conv", "head", "extra"]
    with pytest.raises(KeyError, match=r"ModuleDict has no module 'act'; its keys are \['conv', 'head', 'extra'\]"):
        blocks["act"]
    with pytest.raises(TypeError, match="must be an nn.Module"):
        blocks["bad"] = 3


def test_parameter_list_and_dict_register_their_members():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(np.ones(2)), np.zeros(3)])
            self.named = nn.ParameterDict({"a": nn.Parameter(np.ones(1))})

    holder = Holder()
    holder.scales.append(tc.tensor(np.ones(4)))
    holder.named["b"] = np.full(2, 5.0)
    assert [n for n, _ in holder.named_parameters()] == ["scales.0", "scales.1", "scales.2", "named.a", "named.b"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in holder.parameters())
    assert holder.scales[-1].shape == (4,) and len(holder.scales) == 3 and len(holder.scales[1:]) == 2
    assert list(holder.named) == ["a", "b"] and holder.named["b"].numpy().tolist() == [5.0, 5.0]
    with pytest.raises(TypeError, match="ParameterList.append: expected an nn.Parameter, Tensor or array, got str"):
        holder.scales.append("x")


def test_non_persistent_buffers_and_submodule_lookup():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.register_buffer("saved", np.ones(2))
            self.register_buffer("scratch", np.zeros(3), persistent=False)

    model = nn.Sequential(Block(), nn.ReLU())
    assert list(model.state_dict()) == ["0.saved", "0.fc.weight", "0.fc.bias"]  # own buffers before children
    assert [n for n, _ in model.named_buffers()] == ["0.saved", "0.scratch"]  # still a buffer, just not saved
    assert model.get_submodule("0.fc") is model[0].fc and model.get_submodule("") is model
    assert model.get_parameter("0.fc.bias") is model[0].fc.bias
    with pytest.raises(AttributeError, match=r"get_submodule: '0.conv' is not a submodule of Block"):
        model.get_submodule("0.conv")
    with pytest.raises(AttributeError, match="get_parameter: Linear has no parameter 'scale'"):
        model.get_parameter("0.fc.scale")


def test_parameters_to_vector_and_back():
    from tinygrad_cnn.nn.utils import parameters_to_vector, vector_to_parameters
    layer = nn.Linear(3, 2)
    vec = parameters_to_vector(layer.parameters())
    np.testing.assert_array_equal(vec.numpy(), np.concatenate([layer.weight.numpy().ravel(), layer.bias.numpy()]))
    vector_to_parameters(np.arange(8.0), layer.parameters())
    np.testing.assert_array_equal(layer.weight.numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(layer.bias.numpy(), [6.0, 7.0])
    with pytest.raises(ValueError, match=r"vector_to_parameters: expected a 1-D vector of 8 values"):
        vector_to_parameters(np.ones(7), layer.parameters())
