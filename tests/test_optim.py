"""Optimizers: several steps against the update rules written out here, parameter groups, state_dict layout,
and resuming from a state_dict taking exactly the uninterrupted step."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.nn import Parameter
from tinygrad_cnn.serialization import load, save


def make_problem(seed=0, dtype=np.float64):
    """Two parameters of a least-squares fit and a function computing the loss."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    params = [Parameter(rng.standard_normal((3, 2)), dtype=dtype), Parameter(rng.standard_normal(2), dtype=dtype)]

    def loss():
        diff = tc.tensor(x, dtype=dtype) @ params[0] + params[1] - tc.tensor(y, dtype=dtype)
        return (diff * diff).mean()
    return params, loss


def sgd_reference(p, g, state, t, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD as documented."""
    g = g + weight_decay * p
    if momentum:
        b = g if t == 1 else momentum * state["b"] + (1 - dampening) * g
        state["b"] = b
        g = g + momentum * b if nesterov else b
    return p - lr * g


def adam_reference(p, g, state, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """Adam (Kingma & Ba) with bias-corrected moments; L2 decay in the gradient, or AdamW's decoupled decay."""
    beta1, beta2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    state["m"] = beta1 * state.get("m", 0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0) + (1 - beta2) * g * g
    m_hat, v_hat = state["m"] / (1 - beta1 ** t), state["v"] / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def check_against_reference(make_optimizer, references, steps=6, rtol=1e-11):
    """Run `steps` optimizer steps; `references[i](p, g, state, t)` must give parameter i after each step."""
    params, loss = make_problem()
    optimizer = make_optimizer(params)
    expected = [p.numpy().copy() for p in params]
    states = [{} for _ in params]
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        loss().backward()
        grads = [p.grad.numpy().copy() for p in params]
        optimizer.step()
        for i, (reference, g) in enumerate(zip(references, grads)):
            expected[i] = reference(expected[i], g, states[i], t)
            np.testing.assert_allclose(params[i].numpy(), expected[i], rtol=rtol, atol=1e-14,
                                       err_msg=f"param {i} after step {t}")
    assert not np.allclose(expected[0], make_problem()[0][0].numpy())  # the parameters did move


@pytest.mark.parametrize("options", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.1),
    dict(lr=0.1, weight_decay=0.2, momentum=0.9, nesterov=True),
])
def test_sgd_follows_the_documented_update(options):
    def reference(p, g, state, t):
        return sgd_reference(p, g, state, t, **options)
    check_against_reference(lambda ps: optim.SGD(ps, **options), [reference, reference])


@pytest.mark.parametrize("options", [dict(), dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1)])
def test_adam_follows_the_documented_update(options):
    def reference(p, g, state, t):
        return adam_reference(p, g, state, t, **options)
    check_against_reference(lambda ps: optim.Adam(ps, **options), [reference, reference])


@pytest.mark.parametrize("options", [dict(lr=0.05), dict(lr=0.01, weight_decay=0.3, betas=(0.85, 0.95))])
def test_adamw_decays_the_weights_before_the_adam_step(options):
    def reference(p, g, state, t):
        return adam_reference(p, g, state, t, **{"weight_decay": 1e-2, **options}, decoupled=True)
    check_against_reference(lambda ps: optim.AdamW(ps, **options), [reference, reference])


def test_adamw_without_decay_is_adam():
    def reference(p, g, state, t):
        return adam_reference(p, g, state, t, lr=0.02)
    check_against_reference(lambda ps: optim.AdamW(ps, lr=0.02, weight_decay=0.0), [reference, reference])


def test_parameter_groups_use_their_own_options_and_the_defaults_otherwise():
    def first(p, g, state, t):
        return sgd_reference(p, g, state, t, lr=0.2, momentum=0.9)

    def second(p, g, state, t):
        return sgd_reference(p, g, state, t, lr=0.05, momentum=0.5)
    check_against_reference(lambda ps: optim.SGD([{"params": [ps[0]], "lr": 0.2, "momentum": 0.9},
                                                  {"params": [ps[1]]}], lr=0.05, momentum=0.5),
                            [first, second])


def test_adam_groups_with_different_betas():
    def first(p, g, state, t):
        return adam_reference(p, g, state, t, lr=0.01, betas=(0.5, 0.9))

    def second(p, g, state, t):
        return adam_reference(p, g, state, t, lr=0.03)
    check_against_reference(lambda ps: optim.Adam([{"params": ps[:1], "lr": 0.01, "betas": (0.5, 0.9)},
                                                   {"params": ps[1:]}], lr=0.03), [first, second])


def test_changing_a_groups_lr_changes_the_next_step():
    params, loss = make_problem()
    optimizer = optim.SGD(params, lr=0.1)
    loss().backward()
    before = params[1].numpy().copy()
    optimizer.param_groups[0]["lr"] = 0.5
    optimizer.step()
    np.testing.assert_allclose(params[1].numpy(), before - 0.5 * params[1].grad.numpy(), rtol=1e-12)


# ---- mechanics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make_optimizer", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                            lambda ps: optim.Adam(ps, lr=0.1), lambda ps: optim.AdamW(ps, lr=0.1)])
def test_step_updates_in_place_records_no_graph_and_keeps_float32(make_optimizer):
    params, loss = make_problem(dtype=np.float32)
    arrays = [p.numpy() for p in params]
    versions = [p._version for p in params]
    optimizer = make_optimizer(params)
    loss().backward()
    optimizer.step()
    for p, array, version in zip(params, arrays, versions):
        assert p.numpy() is array and p.dtype == np.float32 and p.is_leaf and p.requires_grad
        assert p._version > version
    for state in optimizer.state.values():
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


def test_parameters_without_gradients_are_skipped():
    params, loss = make_problem()
    frozen = Parameter(np.ones(3))
    optimizer = optim.Adam(params + [frozen], lr=0.1)
    loss().backward()
    optimizer.step()
    np.testing.assert_array_equal(frozen.numpy(), np.ones(3))
    assert frozen not in optimizer.state


def test_zero_grad_sets_none_or_zeros():
    params, loss = make_problem()
    optimizer = optim.SGD(params, lr=0.1)
    loss().backward()
    optimizer.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in params)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_a_model_s_parameters_generator_is_accepted():
    from tinygrad_cnn import nn
    model = nn.Linear(3, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    assert len(optimizer.param_groups[0]["params"]) == 2


def test_bad_arguments_are_refused():
    params, _ = make_problem()
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([params[0], params[0]], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": params}, {"params": params[:1]}], lr=0.1)
    with pytest.raises(TypeError, match="leaf Tensors that require grad"):
        optim.SGD([tc.tensor(np.ones(2))], lr=0.1)
    with pytest.raises(TypeError, match="leaf Tensors"):
        optim.SGD([params[0] * 2], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        optim.Adam(params, lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(params, betas=(0.9, 1.0))


# ---- state_dict and resuming --------------------------------------------------------------------
def test_state_dict_has_pytorchs_layout_and_is_a_copy():
    params, loss = make_problem()
    optimizer = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    loss().backward()
    optimizer.step()
    state = optimizer.state_dict()
    assert sorted(state) == ["param_groups", "state"]
    assert [g["params"] for g in state["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in state["param_groups"]] == [0.1, 0.5]
    assert state["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(state["state"]) == [0, 1] and sorted(state["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    assert state["state"][1]["step"] == 1
    saved = state["state"][0]["exp_avg"].copy()
    loss().backward()
    optimizer.step()
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], saved)


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam([{"params": ps[:1], "lr": 0.02}, {"params": ps[1:]}], lr=0.05, weight_decay=0.1),
    lambda ps: optim.AdamW(ps, lr=0.05),
])
@pytest.mark.parametrize("through_file", [False, True])
def test_resuming_from_state_dict_takes_the_uninterrupted_step(make_optimizer, through_file, tmp_path):
    params, loss = make_problem()
    optimizer = make_optimizer(params)
    for _ in range(3):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    state = optimizer.state_dict()
    if through_file:
        save(state, tmp_path / "optimizer.ckpt")
        state = load(tmp_path / "optimizer.ckpt")

    resumed_params, resumed_loss = make_problem()
    with tc.no_grad():
        for p, q in zip(resumed_params, params):
            p.copy_(q)
    resumed = make_optimizer(resumed_params)
    resumed.load_state_dict(state)
    fresh_params, fresh_loss = make_problem()  # a new optimizer without the state, for contrast
    with tc.no_grad():
        for p, q in zip(fresh_params, params):
            p.copy_(q)
    fresh = make_optimizer(fresh_params)

    for opt, f in ((optimizer, loss), (resumed, resumed_loss), (fresh, fresh_loss)):
        opt.zero_grad()
        f().backward()
        opt.step()
    for p, q, r in zip(params, resumed_params, fresh_params):
        np.testing.assert_array_equal(q.numpy(), p.numpy())
    assert not np.allclose(fresh_params[0].numpy(), params[0].numpy(), rtol=1e-9, atol=0)


def test_load_state_dict_casts_state_to_the_parameters_dtype():
    params64, loss64 = make_problem()
    source = optim.Adam(params64, lr=0.1)
    loss64().backward()
    source.step()
    params32, _ = make_problem(dtype=np.float32)
    target = optim.Adam(params32, lr=0.1)
    target.load_state_dict(source.state_dict())
    assert target.state[params32[0]]["exp_avg"].dtype == np.float32
    assert target.state[params32[0]]["step"] == 1


def test_load_state_dict_refuses_a_different_layout():
    params, loss = make_problem()
    source = optim.SGD(params, lr=0.1, momentum=0.9)
    loss().backward()
    source.step()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(source.state_dict())
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        optim.SGD(params[:1], lr=0.1).load_state_dict(source.state_dict())
    other = [Parameter(np.zeros((2, 3))), Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*shape \(2, 3\)"):
        optim.SGD(other, lr=0.1, momentum=0.9).load_state_dict(source.state_dict())


# ---- RMSprop, Adagrad, Adadelta ---------------------------------------------------------------
def rmsprop_reference(p, g, state, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                      maximize=False):
    """RMSprop as PyTorch documents it: square average, optional centring by the mean gradient, optional momentum
    on the normalised step."""
    g = (-g if maximize else g) + weight_decay * p
    state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * g ** 2
    variance = state["v"]
    if centered:
        state["mean"] = alpha * state.get("mean", 0.0) + (1 - alpha) * g
        variance = variance - state["mean"] ** 2
    normalised = g / (np.sqrt(variance) + eps)
    if momentum > 0:
        state["b"] = momentum * state.get("b", 0.0) + normalised
        return p - lr * state["b"]
    return p - lr * normalised


def adagrad_reference(p, g, state, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                      eps=1e-10, maximize=False):
    """Adagrad: the step is lr/(1 + (t−1)·lr_decay) times g over the root of all squared gradients so far."""
    g = (-g if maximize else g) + weight_decay * p
    state["sum"] = state.get("sum", initial_accumulator_value) + g ** 2
    return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(state["sum"]) + eps)


def adadelta_reference(p, g, state, t, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    """Adadelta: the step has the units of p, the ratio of running RMS of past steps to that of gradients."""
    g = (-g if maximize else g) + weight_decay * p
    state["v"] = rho * state.get("v", 0.0) + (1 - rho) * g ** 2
    delta = np.sqrt(state.get("u", 0.0) + eps) / np.sqrt(state["v"] + eps) * g
    state["u"] = rho * state.get("u", 0.0) + (1 - rho) * delta ** 2
    return p - lr * delta


ADAPTIVE = [
    (optim.RMSprop, rmsprop_reference, dict()),
    (optim.RMSprop, rmsprop_reference, dict(lr=0.03, alpha=0.9, eps=1e-6)),
    (optim.RMSprop, rmsprop_reference, dict(lr=0.01, momentum=0.9)),
    (optim.RMSprop, rmsprop_reference, dict(lr=0.01, centered=True, weight_decay=0.1)),
    (optim.RMSprop, rmsprop_reference, dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    (optim.Adagrad, adagrad_reference, dict()),
    (optim.Adagrad, adagrad_reference, dict(lr=0.1, lr_decay=0.3, initial_accumulator_value=0.5)),
    (optim.Adagrad, adagrad_reference, dict(lr=0.1, weight_decay=0.2, eps=1e-3, maximize=True)),
    (optim.Adadelta, adadelta_reference, dict()),
    (optim.Adadelta, adadelta_reference, dict(lr=0.5, rho=0.6, eps=1e-4)),
    (optim.Adadelta, adadelta_reference, dict(weight_decay=0.1, maximize=True)),
]


@pytest.mark.parametrize("make, reference, options", ADAPTIVE)
def test_adaptive_optimizers_follow_the_documented_update(make, reference, options):
    def rule(p, g, state, t):
        return reference(p, g, state, t, **options)
    check_against_reference(lambda ps: make(ps, **options), [rule, rule], steps=8)


def test_adaptive_optimizers_keep_pytorchs_state_names_and_defaults():
    params, loss = make_problem()
    loss().backward()
    names = {}
    for make, options in ((optim.RMSprop, dict(momentum=0.9, centered=True)), (optim.Adagrad, {}),
                          (optim.Adadelta, {})):
        optimizer = make(params, **options)
        optimizer.step()
        names[make.__name__] = sorted(optimizer.state_dict()["state"][0])
    assert names == {"RMSprop": ["grad_avg", "momentum_buffer", "square_avg", "step"],
                     "Adagrad": ["step", "sum"], "Adadelta": ["acc_delta", "square_avg", "step"]}
    assert optim.RMSprop(params).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                                                  centered=False, maximize=False)
    assert optim.Adagrad(params).defaults == dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                                                  eps=1e-10, maximize=False)
    assert optim.Adadelta(params).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)


def test_adagrad_has_its_accumulators_before_the_first_step():
    params, _ = make_problem()
    optimizer = optim.Adagrad(params, initial_accumulator_value=0.25)
    state = optimizer.state_dict()["state"]
    assert sorted(state) == [0, 1] and state[1]["step"] == 0
    np.testing.assert_array_equal(state[0]["sum"], np.full((3, 2), 0.25))


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    lambda ps: optim.Adagrad([{"params": ps[:1], "lr": 0.2}, {"params": ps[1:]}], lr=0.1, lr_decay=0.1),
    lambda ps: optim.Adadelta(ps, rho=0.8),
])
def test_adaptive_optimizers_resume_from_state_dict(make_optimizer, tmp_path):
    test_resuming_from_state_dict_takes_the_uninterrupted_step(make_optimizer, True, tmp_path)


@pytest.mark.parametrize("call, match", [
    (lambda ps: optim.RMSprop(ps, lr=-0.1), "RMSprop: lr must be >= 0, got -0.1"),
    (lambda ps: optim.RMSprop(ps, momentum=-1), "RMSprop: momentum"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Adagrad: lr_decay"),
    (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1), "Adagrad: initial_accumulator_value"),
    (lambda ps: optim.Adadelta(ps, rho=1.5), r"Adadelta: rho must lie in \[0, 1\], got 1.5"),
    (lambda ps: optim.Adadelta(ps, eps=-1e-6), "Adadelta: eps"),
])
def test_adaptive_optimizers_refuse_bad_options(call, match):
    params, _ = make_problem()
    with pytest.raises(ValueError, match=match):
        call(params)


def test_adaptive_optimizers_keep_float32():
    params, loss = make_problem(dtype=np.float32)
    loss().backward()
    for make in (optim.RMSprop, optim.Adagrad, optim.Adadelta):
        optimizer = make(params, **({"centered": True, "momentum": 0.5} if make is optim.RMSprop else {}))
        optimizer.step()
        assert all(p.dtype == np.float32 for p in params)
        assert all(v.dtype == np.float32 for s in optimizer.state.values() for v in s.values()
                   if isinstance(v, np.ndarray))


@pytest.mark.parametrize("make, reference", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True),
     lambda p, g, state, t: sgd_reference(p, -g, state, t, lr=0.1, momentum=0.9, weight_decay=0.1)),
    (lambda ps: optim.Adam(ps, lr=0.05, maximize=True), lambda p, g, state, t: adam_reference(p, -g, state, t, lr=0.05)),
    (lambda ps: optim.AdamW(ps, lr=0.05, maximize=True),
     lambda p, g, state, t: adam_reference(p, -g, state, t, lr=0.05, weight_decay=1e-2, decoupled=True)),
])
def test_maximize_ascends_the_gradient(make, reference):
    check_against_reference(make, [reference, reference])


def test_sgd_defaults_and_amsgrad_refused():
    params, _ = make_problem()
    assert optim.SGD(params).defaults["lr"] == 1e-3  # PyTorch's default since 2.x
    with pytest.raises(ValueError, match="Adam: amsgrad=True is not supported"):
        optim.Adam(params, amsgrad=True)


@pytest.mark.parametrize("options", [dict(), dict(momentum=0.9), dict(momentum=0.8, dampening=0.3),
                                     dict(momentum=0.9, nesterov=True, weight_decay=0.01),
                                     dict(momentum=0.5, weight_decay=0.1, maximize=True)])
def test_sgd_kernel_gives_the_bits_of_the_update_written_in_numpy_float32(options):
    """The one-pass kernel rounds each product and sum on its own: the same float32 bits as the update written
    step by step in NumPy, over steps with a non-contiguous gradient."""
    rng = np.random.default_rng(3)
    weight = tc.Tensor(rng.standard_normal((37, 29)).astype(np.float32), requires_grad=True)
    optimizer = optim.SGD([weight], lr=0.05, **options)
    p, buffer = weight.numpy().copy(), None
    momentum, dampening = options.get("momentum", 0.0), options.get("dampening", 0.0)
    decay, nesterov = options.get("weight_decay", 0.0), options.get("nesterov", False)
    for _ in range(3):
        grad = rng.standard_normal((29, 37)).astype(np.float32).T  # a transposed view
        weight.grad = tc.Tensor(grad)
        optimizer.step()
        g = -grad if options.get("maximize") else grad
        if decay:
            g = g + decay * p
        if momentum:
            buffer = g.copy() if buffer is None else buffer * np.float32(momentum) + (1 - dampening) * g
            g = g + momentum * buffer if nesterov else buffer
        p = p - 0.05 * g
        np.testing.assert_array_equal(weight.numpy(), p)
