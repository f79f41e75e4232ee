"""Anomaly mode: `tc.detect_anomaly()` stops at the first op whose forward result or backward gradient holds
NaN or Inf, naming the op's Function and the line of user code (here: this file) that created it."""
import inspect
import re

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, autograd, nn
from tinygrad_cnn.nn import functional as F

HERE = __file__


def next_line() -> str:
    """'this file:N' for the line after the caller's: where the op under test is created."""
    return f"{HERE}:{inspect.currentframe().f_back.f_lineno + 1}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def quiet_numpy():
    with np.errstate(all="ignore"):  # the NaN and Inf below are made on purpose
        yield


def test_off_by_default_nan_flows_through_silently():
    assert autograd._anomaly_hook is None
    x = tc.tensor([-1.0, 4.0], requires_grad=True)
    y = x.log()
    assert np.isnan(y.numpy()[0])
    y.backward(np.array([0.5, -2.0], np.float32))  # no error: the NaN result is the user's to see
    np.testing.assert_allclose(x.grad.numpy(), [-0.5, -0.5])


@pytest.mark.parametrize("make, function", [
    (lambda x: x.log(), "Log"),                      # log of a negative number: NaN
    (lambda x: x.sqrt(), "Sqrt"),                    # NaN
    (lambda x: x / (x - x), "Div"),                  # 0/0 and ±1/0
    (lambda x: (x * 100).exp(), "Exp"),              # e^400 overflows float32: Inf
    (lambda x: x * np.float32(1e38) * 10, "Mul"),    # float32 overflow in a product
    (lambda x: x.reshape(3, 1) @ tc.tensor([[np.inf, 1.0]]), "MatMul"),
], ids=["log", "sqrt", "div", "exp", "mul", "matmul"])
def test_forward_stops_at_the_op_that_made_nan_or_inf(make, function):
    x = tc.tensor([-2.0, 0.5, 4.0], requires_grad=True)
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError) as raised:
        make(x)
    where = f"{HERE}:{make.__code__.co_firstlineno}"  # the innermost user line: inside the lambda above
    message = str(raised.value)
    assert message.startswith(f"{function} produced NaN or Inf")
    assert message.endswith(f"created at {where}")


def test_forward_is_checked_without_grad_too():
    with tc.detect_anomaly(), tc.no_grad(), pytest.raises(tc.AnomalyError) as raised:
        where = next_line()
        tc.tensor([-1.0]).log()
    assert str(raised.value).startswith("Log produced") and str(raised.value).endswith(f"at {where}")


def test_backward_stops_at_the_first_gradient_with_nan_or_inf_and_names_where_the_op_was_made(rng):
    """sqrt(0) = 0 is fine; its gradient 1/(2·sqrt(0)) is not. The ops after it in the backward walk (Sum,
    Mul) have finite gradients and are passed; the error names Sqrt and the line that created it."""
    x = tc.tensor([0.0, 1.0, 4.0], requires_grad=True)
    with tc.detect_anomaly():
        where = next_line()
        root = x.sqrt()
        loss = (root * tc.tensor(rng.standard_normal(3))).sum()
        with pytest.raises(tc.AnomalyError) as raised:
            loss.backward()
    assert str(raised.value) == (f"Sqrt.backward produced NaN or Inf in the gradient of input 0; the op was created "
                                 f"at {where}")
    assert x.grad is None  # stopped before anything reached the leaf


def test_a_leaf_that_already_holds_nan_is_reported_at_the_first_op_that_uses_it():
    weights = tc.tensor([1.0, np.nan], requires_grad=True)
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError) as raised:
        where = next_line()
        weights + 1
    assert str(raised.value).startswith("Add produced") and str(raised.value).endswith(f"at {where}")


def test_graph_recorded_before_anomaly_mode_is_still_checked_in_backward():
    x = tc.tensor([0.0, 2.0], requires_grad=True)
    y = x.sqrt().sum()
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError, match="Sqrt.backward.*an unknown location"):
        y.backward()


# ---- through layers and conv ----------------------------------------------------------------------

def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4))


def test_a_nan_weight_in_a_conv_layer_is_caught_at_conv2d_on_the_line_calling_the_model(rng):
    tc.manual_seed(0)
    model = small_cnn()
    with tc.no_grad():
        model[0].weight[1, 0, 2, 2] = np.nan
    x = tc.tensor(rng.standard_normal((2, 1, 6, 6)), dtype=np.float32)
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError) as raised:
        where = next_line()
        model(x)
    assert str(raised.value) == f"Conv2d produced NaN or Inf in output 0 (shape (2, 3, 6, 6)), created at {where}"


class Scaled(nn.Module):
    """A user-defined layer: the line reported is inside its forward, in this file."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        hidden = self.linear(x)
        return (hidden * 1e30).exp()  # FORWARD_EXP_LINE


def test_the_line_reported_inside_a_users_own_module_is_its_forward():
    line = next(i for i, text in enumerate(open(HERE), 1) if text.rstrip().endswith("# FORWARD_EXP_LINE"))
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError, match=f"^Exp produced.*at {re.escape(HERE)}:{line}$"):
        Scaled()(tc.tensor(np.ones((1, 3))))


def test_conv_backward_overflow_is_caught_at_conv2d_naming_the_weight_gradient(rng):
    """Forward finite: 1e20-sized inputs against 1e-20-sized weights give outputs near 1, scaled by 1e20. Backward:
    dL/dW = X ⋆ dL/dO ≈ 1e20 · 1e20 overflows float32, while dL/dX = W ⋆ dL/dO ≈ 1 stays finite."""
    x = tc.tensor(rng.uniform(1, 2, (1, 2, 5, 5)) * 1e20, dtype=np.float32, requires_grad=True)
    weight = tc.tensor(rng.uniform(1, 2, (3, 2, 3, 3)) * 1e-20, dtype=np.float32, requires_grad=True)
    with tc.detect_anomaly():
        where = next_line()
        out = F.conv2d(x, weight, padding=1)
        loss = (out * tc.tensor(rng.uniform(1, 2, out.shape) * 1e20, dtype=np.float32)).sum()
        with pytest.raises(tc.AnomalyError) as raised:
            loss.backward()
    assert np.isfinite(out.numpy()).all()
    assert str(raised.value) == (f"Conv2d.backward produced NaN or Inf in the gradient of input 1; the op was created "
                                 f"at {where}")


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pools_are_checked(pool):
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.inf
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError) as raised:
        where = next_line()
        pool(tc.tensor(x), 2)
    assert re.fullmatch(f"(Max|Avg)Pool2d produced .* created at {re.escape(where)}", str(raised.value))


def test_cross_entropy_of_infinite_logits_is_caught():
    logits = tc.tensor([[np.inf, 0.0, 1.0]], requires_grad=True)
    with tc.detect_anomaly(), pytest.raises(tc.AnomalyError, match="^CrossEntropy produced"):
        F.cross_entropy(logits, np.array([1]))


# ---- a clean run, and the mode's scope -------------------------------------------------------------

def train_steps(anomaly: bool, steps: int = 3):
    tc.manual_seed(1)
    model = small_cnn()
    optimizer = tc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = np.random.default_rng(2)
    losses = []
    for _ in range(steps):
        x = tc.tensor(data.standard_normal((4, 1, 6, 6)), dtype=np.float32)
        y = data.integers(0, 4, 4)
        with (tc.detect_anomaly() if anomaly else tc.enable_grad()):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, model.state_dict()


def test_a_clean_training_run_passes_and_gives_bit_identical_results():
    checked_losses, checked_state = train_steps(anomaly=True)
    plain_losses, plain_state = train_steps(anomaly=False)
    assert checked_losses == plain_losses
    for key in plain_state:
        np.testing.assert_array_equal(checked_state[key], plain_state[key])


def test_the_hook_is_removed_on_exit_even_after_an_error_and_nesting_restores_it():
    with pytest.raises(tc.AnomalyError):
        with tc.detect_anomaly():
            tc.tensor([-1.0]).log()
    assert autograd._anomaly_hook is None
    with tc.detect_anomaly():
        outer = autograd._anomaly_hook
        with tc.detect_anomaly():
            assert autograd._anomaly_hook is not None
        assert autograd._anomaly_hook is outer
    assert autograd._anomaly_hook is None
    assert np.isnan(tc.tensor([-1.0]).log().item())


def test_integer_and_bool_results_are_not_checked():
    x = tc.tensor([np.nan, 1.0])
    with tc.detect_anomaly():
        with pytest.raises(tc.AnomalyError):
            x * 1
        assert (x > 0).tolist() == [False, True]  # a comparison with a NaN operand is a plain bool result
        assert x.argmax().item() == 0
