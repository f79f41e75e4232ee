"""Learning-rate schedulers against their formulas, the rates they write into the optimizer, and resuming."""
import math

import numpy as np
import pytest

from tinygrad_cnn import optim
from tinygrad_cnn.nn import Parameter
from tinygrad_cnn.optim.lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR,
                                             OneCycleLR, ReduceLROnPlateau, StepLR)


def two_group_sgd(lr=0.1, momentum=0.9):
    return optim.SGD([{"params": [Parameter(np.zeros(2))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.02}],
                     lr=lr, momentum=momentum)


def rates(scheduler, steps):
    """The rates in force for steps 0 … steps−1 (before each optimizer step), as a training loop sees them."""
    seen = []
    for _ in range(steps):
        seen.append(scheduler.get_last_lr())
        assert seen[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
        scheduler.optimizer.step()  # no gradients: moves nothing, but keeps PyTorch's order of the two steps
        scheduler.step()
    return seen


def test_step_lr_decays_by_gamma_every_step_size_steps():
    scheduler = StepLR(two_group_sgd(), step_size=3, gamma=0.5)
    for t, lrs in enumerate(rates(scheduler, 10)):
        assert lrs == pytest.approx([0.1 * 0.5 ** (t // 3), 0.02 * 0.5 ** (t // 3)], rel=1e-15)


def test_cosine_annealing_follows_the_closed_form():
    scheduler = CosineAnnealingLR(two_group_sgd(), T_max=8, eta_min=0.001)
    for t, lrs in enumerate(rates(scheduler, 9)):
        for lr, base in zip(lrs, (0.1, 0.02)):
            assert lr == pytest.approx(0.001 + (base - 0.001) * (1 + math.cos(math.pi * t / 8)) / 2, rel=1e-12)
    past_the_end = (1 + math.cos(math.pi * 9 / 8)) / 2  # beyond T_max the closed form rises again, as PyTorch's
    assert scheduler.get_last_lr() == pytest.approx([0.001 + (b - 0.001) * past_the_end for b in (0.1, 0.02)])


def one_cycle_reference(t, total, max_lr, pct_start=0.3, div_factor=25.0, final_div_factor=1e4,
                        strategy="cos", three_phase=False):
    """1cycle: initial = max/div → max over [0, pct·T − 1], then → min = initial/final_div at T − 1
    (three_phase: max → initial over [pct·T − 1, 2·pct·T − 2], then → min)."""
    initial, peak = max_lr / div_factor, max_lr
    minimum = initial / final_div_factor
    up = pct_start * total - 1
    phases = ([(0, up, initial, peak), (up, 2 * up, peak, initial), (2 * up, total - 1, initial, minimum)]
              if three_phase else [(0, up, initial, peak), (up, total - 1, peak, minimum)])
    for i, (start, end, a, b) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            p = (t - start) / (end - start)
            return b + (a - b) * (1 + math.cos(math.pi * p)) / 2 if strategy == "cos" else a + (b - a) * p


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_follows_its_phases(strategy, three_phase):
    optimizer = two_group_sgd()
    scheduler = OneCycleLR(optimizer, max_lr=[1.0, 0.5], total_steps=20, anneal_strategy=strategy,
                           three_phase=three_phase)
    for t, lrs in enumerate(rates(scheduler, 20)):
        expected = [one_cycle_reference(t, 20, m, strategy=strategy, three_phase=three_phase) for m in (1.0, 0.5)]
        assert lrs == pytest.approx(expected, rel=1e-12), f"step {t}"


def test_one_cycle_landmarks():
    optimizer = two_group_sgd()
    scheduler = OneCycleLR(optimizer, max_lr=0.4, epochs=2, steps_per_epoch=5)  # total 10, peak at step 2
    seen = rates(scheduler, 10)
    assert seen[0] == pytest.approx([0.4 / 25] * 2)
    assert seen[2] == pytest.approx([0.4] * 2)
    assert seen[9] == pytest.approx([0.4 / 25 / 1e4] * 2)
    with pytest.raises(ValueError, match="total steps is 10"):
        scheduler.step()  # step 10 is allowed (PyTorch's bound), step 11 is not


def test_one_cycle_cycles_momentum_inversely():
    optimizer = two_group_sgd()
    scheduler = OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.95)
    optimizer.step()
    for _ in range(2):  # step 2 = pct_start · 10 − 1: the peak of the rate, the trough of momentum
        scheduler.step()
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.85)
    for _ in range(7):
        scheduler.step()
    assert optimizer.param_groups[1]["momentum"] == pytest.approx(0.95)


def test_one_cycle_cycles_adams_beta1():
    optimizer = optim.Adam([Parameter(np.zeros(2))], betas=(0.9, 0.99))
    scheduler = OneCycleLR(optimizer, max_lr=0.01, total_steps=10, base_momentum=0.8, max_momentum=0.9)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    optimizer.step()
    scheduler.step(), scheduler.step()
    assert optimizer.param_groups[0]["betas"] == pytest.approx((0.8, 0.99))


def test_one_cycle_argument_errors():
    with pytest.raises(ValueError, match="total_steps"):
        OneCycleLR(two_group_sgd(), max_lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(two_group_sgd(), max_lr=1.0, total_steps=5, anneal_strategy="step")
    with pytest.raises(ValueError, match="2 param groups"):
        OneCycleLR(two_group_sgd(), max_lr=[1.0, 2.0, 3.0], total_steps=5)


@pytest.mark.parametrize("make_scheduler", [
    lambda opt: StepLR(opt, step_size=2, gamma=0.3),
    lambda opt: CosineAnnealingLR(opt, T_max=7),
    lambda opt: OneCycleLR(opt, max_lr=0.5, total_steps=12),
    lambda opt: MultiStepLR(opt, milestones=[2, 5, 6], gamma=0.5),
    lambda opt: ExponentialLR(opt, gamma=0.8),
    lambda opt: LambdaLR(opt, lr_lambda=[lambda t: 1 / (t + 1), lambda t: 0.9 ** t]),
    lambda opt: LinearLR(opt, start_factor=0.2, end_factor=0.9, total_iters=6),
])
@pytest.mark.parametrize("optimizer_first", [True, False])
def test_resuming_from_state_dicts_continues_the_schedule(make_scheduler, optimizer_first):
    optimizer = two_group_sgd()
    scheduler = make_scheduler(optimizer)
    rates(scheduler, 4)
    saved_optimizer, saved_scheduler = optimizer.state_dict(), scheduler.state_dict()
    expected = rates(scheduler, 5)
    expected_momentum = optimizer.param_groups[0]["momentum"]

    optimizer2 = two_group_sgd()
    if optimizer_first:  # load the optimizer before making the scheduler, or after: both resume exactly
        optimizer2.load_state_dict(saved_optimizer)
    scheduler2 = make_scheduler(optimizer2)
    if not optimizer_first:
        optimizer2.load_state_dict(saved_optimizer)
    scheduler2.load_state_dict(saved_scheduler)
    assert rates(scheduler2, 5) == expected
    assert optimizer2.param_groups[0]["momentum"] == expected_momentum


def test_scheduler_needs_an_optimizer_and_initial_lr_when_resuming():
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR([Parameter(np.zeros(1))], step_size=1)
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(two_group_sgd(), step_size=1, last_epoch=3)


def test_multistep_lr_decays_at_each_milestone_and_twice_at_a_repeated_one():
    scheduler = MultiStepLR(two_group_sgd(), milestones=[6, 2, 4, 4], gamma=0.5)
    for t, lrs in enumerate(rates(scheduler, 9)):
        passed = sum(m <= t for m in (2, 4, 4, 6))
        assert lrs == pytest.approx([0.1 * 0.5 ** passed, 0.02 * 0.5 ** passed], rel=1e-15)


def test_exponential_lr_decays_every_step():
    for t, lrs in enumerate(rates(ExponentialLR(two_group_sgd(), gamma=0.7), 8)):
        assert lrs == pytest.approx([0.1 * 0.7 ** t, 0.02 * 0.7 ** t], rel=1e-13)


def test_lambda_lr_scales_each_group_by_its_function():
    scheduler = LambdaLR(two_group_sgd(), lr_lambda=[lambda t: 1 / (1 + t), lambda t: max(0.0, 1 - t / 5)])
    for t, lrs in enumerate(rates(scheduler, 8)):
        assert lrs == pytest.approx([0.1 / (1 + t), 0.02 * max(0.0, 1 - t / 5)], rel=1e-15)
    one = LambdaLR(two_group_sgd(), lr_lambda=lambda t: 2.0 ** -t)
    assert rates(one, 3)[2] == pytest.approx([0.1 / 4, 0.02 / 4])


class Warmup:
    """A callable object: LambdaLR saves its attributes."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, t):
        return min(1.0, (t + 1) / self.steps)


def test_lambda_lr_saves_the_attributes_of_callable_objects_not_functions():
    scheduler = LambdaLR(two_group_sgd(), lr_lambda=[Warmup(4), lambda t: 1.0])
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [{"steps": 4}, None]
    changed = LambdaLR(two_group_sgd(), lr_lambda=[Warmup(10), lambda t: 1.0])
    changed.load_state_dict(state)
    assert changed.lr_lambdas[0].steps == 4 and changed.get_last_lr() == pytest.approx([0.1 / 4, 0.02])


def test_linear_lr_ramps_the_factor_then_holds_it():
    scheduler = LinearLR(two_group_sgd(), start_factor=0.25, end_factor=0.75, total_iters=4)
    for t, lrs in enumerate(rates(scheduler, 8)):
        factor = 0.25 + 0.5 * min(t, 4) / 4
        assert lrs == pytest.approx([0.1 * factor, 0.02 * factor], rel=1e-14)
    defaults = LinearLR(two_group_sgd())
    assert defaults.get_last_lr() == pytest.approx([0.1 / 3, 0.02 / 3])
    with pytest.raises(ValueError, match=r"LinearLR: start_factor must lie in \(0, 1\], got 0"):
        LinearLR(two_group_sgd(), start_factor=0)
    with pytest.raises(ValueError, match="LinearLR: end_factor"):
        LinearLR(two_group_sgd(), end_factor=1.5)


def plateau_reference(metrics, lr, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr):
    """The rate after each metric: count steps without improvement on the best value; after more than
    `patience` of them, multiply by factor (floored at min_lr) and ignore the next `cooldown` steps."""
    best, bad, cool, out = None, 0, 0, []
    for m in metrics:
        if best is None:
            improved = True
        elif threshold_mode == "rel":
            improved = m < best * (1 - threshold) if mode == "min" else m > best * (1 + threshold)
        else:
            improved = m < best - threshold if mode == "min" else m > best + threshold
        best, bad = (m, 0) if improved else (best, bad + 1)
        if cool:
            cool, bad = cool - 1, 0
        if bad > patience:
            lr, cool, bad = max(lr * factor, min_lr), cooldown, 0
        out.append(lr)
    return out


@pytest.mark.parametrize("options", [
    dict(mode="min", factor=0.5, patience=2, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0),
    dict(mode="min", factor=0.1, patience=0, threshold=0.05, threshold_mode="abs", cooldown=2, min_lr=1e-4),
    dict(mode="max", factor=0.3, patience=1, threshold=0.01, threshold_mode="rel", cooldown=1, min_lr=0.0),
    dict(mode="max", factor=0.5, patience=1, threshold=0.1, threshold_mode="abs", cooldown=0, min_lr=0.01),
])
def test_reduce_on_plateau_follows_the_counting_rule(options):
    metrics = [5.0, 4.0, 4.0, 3.9999, 4.2, 3.0, 3.01, 2.99, 2.98, 3.5, 3.5, 3.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    if options["mode"] == "max":
        metrics = [-m for m in metrics]
    optimizer = optim.SGD([Parameter(np.zeros(2))], lr=0.1)
    scheduler = ReduceLROnPlateau(optimizer, **options)
    seen = []
    for m in metrics:
        optimizer.step()
        scheduler.step(m)
        seen.append(scheduler.get_last_lr()[0])
        assert seen[-1] == optimizer.param_groups[0]["lr"]
    expected = plateau_reference(metrics, 0.1, **options)
    assert seen == pytest.approx(expected, rel=1e-15)
    assert len(set(expected)) >= 2  # the sequence did reduce


def test_reduce_on_plateau_per_group_floors_eps_and_resuming():
    optimizer = two_group_sgd()
    scheduler = ReduceLROnPlateau(optimizer, patience=0, factor=0.5, min_lr=[0.03, 0.0], eps=0.004)
    scheduler.step(1.0)
    scheduler.step(2.0)  # one bad step > patience 0: 0.1 → 0.05, 0.02 → 0.01
    assert scheduler.get_last_lr() == pytest.approx([0.05, 0.01])
    state = scheduler.state_dict()
    scheduler.step(2.0)  # 0.05 → max(0.025, 0.03) = 0.03; 0.01 → 0.005 is a change of 0.005 > eps
    assert scheduler.get_last_lr() == pytest.approx([0.03, 0.005])
    scheduler.step(2.0)  # 0.03 stays at its floor; 0.005 → 0.0025 is a change below eps: not made
    assert scheduler.get_last_lr() == pytest.approx([0.03, 0.005])
    resumed_optimizer = two_group_sgd(lr=0.05)
    resumed_optimizer.param_groups[1]["lr"] = 0.01
    resumed = ReduceLROnPlateau(resumed_optimizer)
    resumed.load_state_dict(state)
    assert (resumed.best, resumed.patience, resumed.min_lrs) == (1.0, 0, [0.03, 0.0])
    resumed.step(2.0)
    assert resumed.get_last_lr() == pytest.approx([0.03, 0.005])
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor must be < 1.0, got 2"):
        ReduceLROnPlateau(two_group_sgd(), factor=2)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'"):
        ReduceLROnPlateau(two_group_sgd(), mode="lowest")


def test_stepping_the_scheduler_before_the_optimizer_warns_once():
    optimizer = two_group_sgd()
    scheduler = StepLR(optimizer, step_size=1)
    with pytest.warns(UserWarning, match=r"StepLR.step\(\) was called before optimizer.step\(\)"):
        scheduler.step()
    ordered = StepLR(two_group_sgd(), step_size=1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ordered.optimizer.step()
        ordered.step()
        ordered.step()  # later steps never warn
