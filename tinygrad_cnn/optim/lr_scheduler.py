"""Learning-rate schedules: StepLR, MultiStepLR, ExponentialLR, LambdaLR, LinearLR, CosineAnnealingLR,
OneCycleLR, and ReduceLROnPlateau.

Each computes the learning rate of step `last_epoch` in closed form from the groups' initial rates (PyTorch's
formulas), writes it into the optimizer's groups, and can be saved and restored with state_dict.
ReduceLROnPlateau instead lowers the rates in force when a metric stops improving.
"""
import bisect
import math
import types
import warnings

from .optimizer import Optimizer


class LRScheduler:
    """Base: `step()` advances `last_epoch` and sets every group's 'lr' to `get_lr()`; `get_last_lr()` reads it.

    Construction performs the first step (last_epoch becomes 0), as in PyTorch, so the optimizer starts at
    the schedule's first rate. `initial_lr` is recorded in each group (unless resuming, last_epoch >= 0).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param group {i} has no 'initial_lr'; resuming with "
                               "last_epoch >= 0 needs the optimizer state of the interrupted run")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._optimizer_steps_at_start = optimizer._step_count
        self.step()

    def get_lr(self) -> list:
        """The learning rate of each group at step `last_epoch`."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance the schedule by one step (an epoch or a batch, as the loop counts). Call it after
        `optimizer.step()`: stepping it first skips the schedule's first rate, so that order warns as in PyTorch."""
        self._step_count += 1
        if self._step_count == 2 and self.optimizer._step_count == self._optimizer_steps_at_start:
            warnings.warn(f"{type(self).__name__}.step() was called before optimizer.step(): the first learning "
                          "rate of the schedule is skipped. Call optimizer.step() first, then the scheduler's "
                          "step()", UserWarning, stacklevel=2)
        self.last_epoch += 1
        self._set_rates()

    def _set_rates(self) -> None:
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list:
        """The learning rates the last `step()` set, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer (plain numbers, strings and lists, so `tc.save` can store it)."""
        return {key: value for key, value in self.__dict__.items() if key not in self._not_saved}

    _not_saved = ("optimizer", "_optimizer_steps_at_start")

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the position in the schedule and write its current rates (and momentum) into the optimizer,
        so resuming works whether the optimizer's state is loaded before or after this scheduler is made."""
        self.__dict__.update(state_dict)
        self._set_rates()


class StepLR(LRScheduler):
    """lr_t = base_lr · gamma^⌊t / step_size⌋: decay by gamma every step_size steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr_t = base_lr · gamma^(number of milestones ≤ t): decay by gamma at each milestone (a milestone given
    twice decays twice)."""

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = sorted(milestones)
        if not all(isinstance(m, int) and m >= 0 for m in milestones):
            raise ValueError(f"MultiStepLR: milestones must be non-negative integers, got {milestones}")
        self.milestones, self.gamma = milestones, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [base * self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr_t = base_lr · gamma^t: decay by gamma every step."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr_t = base_lr · lr_lambda(t), with one function for all groups or one per group.

    state_dict saves the attributes of callable objects among the lambdas; plain functions are code and are not
    saved (as PyTorch): the resumed scheduler is built with the same functions."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(lambdas) != groups:
            raise ValueError(f"LambdaLR: got {len(lambdas)} lr_lambda functions for {groups} param groups")
        if not all(callable(f) for f in lambdas):
            raise TypeError(f"LambdaLR: lr_lambda must be callable (or a list of callables), got {lr_lambda!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict:
        state = {key: value for key, value in super().state_dict().items() if key != "lr_lambdas"}
        state["lr_lambdas"] = [None if isinstance(f, types.FunctionType) else dict(vars(f)) for f in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        for f, saved in zip(self.lr_lambdas, state.pop("lr_lambdas", [])):
            if saved is not None:
                vars(f).update(saved)
        super().load_state_dict(state)


class LinearLR(LRScheduler):
    """lr_t = base_lr · (start_factor + (end_factor − start_factor) · min(t, total_iters) / total_iters): a linear
    ramp of the factor over total_iters steps (a warm-up with the defaults), then constant."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must lie in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must lie in [0, 1], got {end_factor}")
        if total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive integer, got {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        progress = min(self.last_epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr_t = eta_min + (base_lr − eta_min) · (1 + cos(π·t / T_max)) / 2 (Loshchilov & Hutter, 2017, without
    restarts): from base_lr at t = 0 down to eta_min at t = T_max."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018) with PyTorch's phases, stepped once per batch.

    Two phases (default): over the first pct_start·total_steps − 1 steps the rate anneals from
    max_lr/div_factor up to max_lr, then down to max_lr/(div_factor·final_div_factor) at total_steps − 1.
    three_phase: up, back down to max_lr/div_factor symmetrically, then to the minimum. Within a phase that runs
    from step s0 to s1, with p = (t − s0)/(s1 − s0): cos annealing gives end + (start − end)·(1 + cos πp)/2,
    linear gives start + (end − start)·p. With cycle_momentum, momentum (or Adam's β1) moves inversely between
    max_momentum and base_momentum.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int = None, epochs: int = None,
                 steps_per_epoch: int = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85, max_momentum: float = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 1:
            raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in _ANNEAL:
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        up_end = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (2 * up_end, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                           (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases = [(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"OneCycleLR: got {len(max_lrs)} max_lr values for {len(groups)} param groups")
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum and not self.use_beta1 and "momentum" not in optimizer.defaults:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with 'momentum' or 'betas'")
        if last_epoch == -1:
            for group, peak in zip(groups, max_lrs):
                group.update(initial_lr=peak / div_factor, max_lr=peak, min_lr=peak / div_factor / final_div_factor)
                if cycle_momentum:
                    group.update(max_momentum=max_momentum, base_momentum=base_momentum)
                    self._set_momentum(group, max_momentum)
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, momentum):
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def get_lr(self) -> list:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times; the specified number of total steps is "
                             f"{self.total_steps}")
        anneal = _ANNEAL[self.anneal_strategy]
        lrs = []
        for group in self.optimizer.param_groups:
            phase_start = 0.0
            for i, (phase_end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self.phases):
                if step <= phase_end or i == len(self.phases) - 1:
                    fraction = (step - phase_start) / (phase_end - phase_start)
                    lrs.append(anneal(group[lr_from], group[lr_to], fraction))
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[momentum_from], group[momentum_to], fraction))
                    break
                phase_start = phase_end
        return lrs


def _anneal_cos(start: float, end: float, fraction: float) -> float:
    """Cosine from start (fraction 0) to end (fraction 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def _anneal_linear(start: float, end: float, fraction: float) -> float:
    return (end - start) * fraction + start


_ANNEAL = {"cos": _anneal_cos, "linear": _anneal_linear}


class ReduceLROnPlateau(LRScheduler):
    """Multiply every group's rate by `factor` (not below its min_lr) once the metric passed to `step(metric)`
    has not improved for more than `patience` steps; then wait `cooldown` steps before counting again.

    Improvement (mode 'min'; 'max' mirrors it): metric < best·(1 − threshold) for threshold_mode 'rel',
    metric < best − threshold for 'abs'. A reduction smaller than eps is not made.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0.0,
                 eps: float = 1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected an Optimizer, got {type(optimizer).__name__}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            raise ValueError(f"ReduceLROnPlateau: got {len(min_lrs)} min_lr values for {len(groups)} param groups")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.min_lrs, self.eps = (
            threshold, threshold_mode, cooldown, min_lrs, eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

    def is_better(self, metric: float) -> bool:
        if self.mode == "min":
            bar = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return metric < bar
        bar = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return metric > bar

    def step(self, metrics) -> None:
        """Record one value of the watched metric (a number or a one-element Tensor)."""
        metric = float(metrics)
        self.last_epoch += 1
        if self.is_better(metric):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the counters and the best metric; the rates themselves come back with the optimizer's state."""
        self.__dict__.update(state_dict)
