"""Learning-rate schedulers against their formulas, the rates they write into the optimizer, and resuming."""
import math

import numpy as np
import pytest

from tinygrad_cnn import optim
from tinygrad_cnn.nn import Parameter
from tinygrad_cnn.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR


def two_group_sgd(lr=0.1, momentum=0.9):
    return optim.SGD([{"params": [Parameter(np.zeros(2))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.02}],
                     lr=lr, momentum=momentum)


def rates(scheduler, steps):
    """The rates in force for steps 0 … steps−1 (before each optimizer step), as a training loop sees them."""
    seen = []
    for _ in range(steps):
        seen.append(scheduler.get_last_lr())
        assert seen[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
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
