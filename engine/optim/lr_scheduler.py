"""Learning-rate schedulers with PyTorch's names, arguments and values.

Most schedulers are "chainable", as in PyTorch: each step computes the new rate from the group's
current `lr`, so a rate changed by hand (or from the debugger) mid-run is carried forward rather than
overwritten. Their state dicts are plain data (numbers, strings, lists, dicts), never functions.
"""

from __future__ import annotations

import bisect
import copy
import math
import sys
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence

from engine.events import hub
from engine.optim.optimizer import Optimizer
from engine.tensor import Tensor
from engine.user_warning import caller_site


class LRScheduler:
    """Base class: sets each group's `lr` from `get_lr()` on every `step()`."""

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        caller = sys._getframe(1)  # type.__call__ is C: the frame that wrote `LambdaLR(...)`
        _made_at[self] = (caller.f_code.co_filename, caller.f_lineno)
        return self

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                lr = group["lr"]
                group.setdefault("initial_lr", lr.clone() if isinstance(lr, Tensor) else lr)
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                                   f"a scheduler with last_epoch={last_epoch}; "
                                   "load the optimizer's state_dict first")
        self.base_lrs = [_scalar(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        _track_step_calls(optimizer)
        self._step_count = 0
        # True while step() asks get_lr(): schedulers written after torch's own warn when it is False
        self._get_lr_called_within_step = False
        self._is_initial = True  # the constructor's step sets the starting rates
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate of each group for epoch `last_epoch`."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last `step()`."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or batch) and set the optimizer's learning rates.

        `step(epoch)` is deprecated, as in PyTorch: it jumps to `epoch` and warns, and the rate comes from
        the scheduler's closed form where it has one (from the initial rates, so changes by hand are lost).
        """
        if self._step_count == 1:
            _warn_step_order(self.optimizer)
        self._step_count += 1
        self._get_lr_called_within_step = True
        try:
            lrs = self._advance(epoch)
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, lrs):
            set_lr(group, lr)
        self._last_lr = _last_lrs(self.optimizer)
        if not self._is_initial and hub.active:  # the script's call, not the constructor's: a debugger names its line
            site = caller_site(sys._getframe(1))  # past SequentialLR's step, which calls ours
            if site is not None:
                _stepped_at[self] = site

    def _advance(self, epoch) -> list[float]:
        """Move to the next epoch, or to `epoch`; the rates there."""
        if epoch is None:
            self.last_epoch += 1
            return self.get_lr()
        warnings.warn(EPOCH_DEPRECATION, UserWarning, stacklevel=3)
        self.last_epoch = epoch
        closed_form = getattr(self, "_get_closed_form_lr", None)
        return closed_form() if closed_form is not None else self.get_lr()

    def _restart(self) -> None:
        """Start over at epoch 0 from the initial rates (what SequentialLR does at a milestone)."""
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            set_lr(group, base)
        self.last_epoch = -1
        self._step_count = 0  # a fresh start: no step-order warning
        self._is_initial = True
        self.step()
        self._is_initial = False

    def _current_lrs(self) -> list[float]:
        """Each group's rate as a float: a rate held in a tensor is read once, and rates are computed from
        floats, so stepping a schedule records no ops."""
        return [_scalar(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Everything but the optimizer, as plain data (a copy)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the state saved by `state_dict()`."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"scheduler state_dict must be a dict, got {type(state_dict).__name__}")
        unknown = set(state_dict) - set(self.__dict__)
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict: unknown keys "
                             f"{sorted(map(str, unknown))}; was this state saved from a different scheduler?")
        self.__dict__.update(copy.deepcopy(state_dict))


# every scheduler not yet collected -> the file and line that made it (a debugger names the one that zeroed a rate),
# and -> those of the script's last call of its step() (one stepped per batch where it was meant per epoch); kept
# here, not on the scheduler, whose state dict holds its attributes
_made_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_stepped_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def schedulers_of(optimizer: Optimizer) -> list[tuple[LRScheduler, str, int]]:
    """The live schedulers that set `optimizer`'s rates, each with the file and line that made it, in the order
    they were made."""
    return [(sched, *site) for sched, site in list(_made_at.items()) if getattr(sched, "optimizer", None) is optimizer]


def stepped_at(sched: LRScheduler) -> tuple[str, int] | None:
    """(file, line) of the script's last call of `sched.step()`, or None before the first."""
    return _stepped_at.get(sched)


def _scalar(lr) -> float:
    return float(lr) if isinstance(lr, Tensor) else lr


def set_lr(group: dict, lr) -> None:
    """Set a param group's rate; a rate held in a tensor is filled in place, as PyTorch does, so the tensor the
    user passed keeps holding the group's rate."""
    held = group["lr"]
    if isinstance(held, Tensor):
        held.array[...] = _scalar(lr)
        held._vc[0] += 1
    else:
        group["lr"] = lr


def _last_lrs(optimizer: Optimizer) -> list:
    """The groups' rates, a rate held in a tensor as a copy (the next step fills the group's tensor)."""
    return [lr.clone() if isinstance(lr, Tensor) else lr for lr in (g["lr"] for g in optimizer.param_groups)]


class _LRScheduler(LRScheduler):
    """The old name of LRScheduler, kept by PyTorch for subclasses written against it."""


# the start of PyTorch's words, which scripts filter warnings by
EPOCH_DEPRECATION = ("The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where "
                     "possible. Please use `scheduler.step()` to step the scheduler. With an epoch, a scheduler that "
                     "has a closed form computes the rate from it, from the initial rates.")
# torch's first sentence (scripts filter by it), then ours
_STEP_ORDER = ("Detected call of `lr_scheduler.step()` before `optimizer.step()`. Call `optimizer.step()` first and "
               "`lr_scheduler.step()` after it in each iteration: the other way round, the schedule skips its first "
               "learning rate.")
_STEP_REPLACED = ("Seems like `optimizer.step()` has been overridden after learning rate scheduler initialization. "
                  "Please, make sure to call `optimizer.step()` before `lr_scheduler.step()`. See more details at "
                  "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate")


def _track_step_calls(optimizer: Optimizer) -> None:
    """Wrap this optimizer's `step` so that it notes it ran (`_opt_called`), as PyTorch's schedulers do."""
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        return
    step = type(optimizer).step
    opt_ref = weakref.ref(optimizer)  # no cycle through the instance's own attribute

    def wrapper(*args, **kwargs):
        opt = opt_ref()
        opt._opt_called = True
        return step(opt, *args, **kwargs)

    wrapper._wrapped_by_lr_sched = True
    wrapper.__doc__ = step.__doc__
    optimizer.step = wrapper


def _warn_step_order(optimizer: Optimizer) -> None:
    """PyTorch's warnings for a first `scheduler.step()` that comes before any `optimizer.step()`; a step that a
    GradScaler skipped (inf or NaN gradients) counts as taken (engine.amp marks it), where torch warns."""
    if not hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        warnings.warn(_STEP_REPLACED, UserWarning, stacklevel=3)
    elif not getattr(optimizer, "_opt_called", False):
        warnings.warn(_STEP_ORDER, UserWarning, stacklevel=3)


def function_state(fn) -> dict | None:
    """What a state dict keeps of a user's schedule function: nothing of a plain function (None), a copy of
    a callable object's attributes."""
    return None if fn is None or isinstance(fn, types.FunctionType) else copy.deepcopy(vars(fn))


def load_function_state(fn, attrs: dict | None) -> None:
    """Give `fn` back the attributes `function_state` kept (nothing for a plain function)."""
    if attrs is not None and fn is not None:
        vars(fn).update(copy.deepcopy(attrs))


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), one function per group (or one for all)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list,
                 last_epoch: int = -1) -> None:
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, "
                                 f"but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict:
        """As the base, but functions are left out (None); callable objects keep their attributes."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items()
                 if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [function_state(fn) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        saved_lambdas = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        super().load_state_dict(state)
        for fn, attrs in zip(self.lr_lambdas, saved_lambdas):
            load_function_state(fn, attrs)


class MultiplicativeLR(LambdaLR):
    """Multiply the rate by `lr_lambda(epoch)` every epoch, one function per group (or one for all)."""

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, self._current_lrs())]


class StepLR(LRScheduler):
    """Multiply the rate by `gamma` every `step_size` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by `gamma` at each milestone epoch (a repeated milestone multiplies again)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones: dict[int, int] = {}  # epoch -> how many times it was listed
        for m in milestones:
            self.milestones[m] = self.milestones.get(m, 0) + 1
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        times = self.milestones.get(self.last_epoch, 0)
        if not times:
            return self._current_lrs()
        return [lr * self.gamma ** times for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        passed = sum(times for m, times in self.milestones.items() if m <= self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by `gamma` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the initial rate down to `eta_min` over `T_max` epochs (then back up, periodically)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # resumed at epoch t: the closed form
            return [low + (base - low) * (1 + math.cos(t * math.pi / T)) / 2 for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:  # the bottom of a period: the recurrence would divide by zero
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        # the recurrence keeps any change made to the rate by hand
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - low) + low for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        low = self.eta_min
        return [low + (base - low) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Scale the rate by `factor` for the first `total_iters` epochs, then restore it."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if not 0 <= factor <= 1:
            raise ValueError(f"ConstantLR: factor must be between 0 and 1, got {factor!r}")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lrs = self._current_lrs()
        if self.last_epoch == 0:
            return [lr * self.factor for lr in lrs]
        if self.last_epoch == self.total_iters:
            return [lr / self.factor for lr in lrs]
        return lrs

    def _get_closed_form_lr(self) -> list[float]:
        done = self.last_epoch >= self.total_iters
        return [base * (self.factor + done * (1 - self.factor)) for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate linearly from `start_factor` to `end_factor` over `total_iters` epochs, then hold it."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be greater than 0 and at most 1, got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be between 0 and 1, got {end_factor!r}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, start, end, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        lrs = self._current_lrs()
        if t == 0:
            return [lr * start for lr in lrs]
        if t > n:
            return lrs
        # factor(t) / factor(t - 1), so a rate changed by hand is carried forward
        ratio = 1.0 + (end - start) / (n * start + (t - 1) * (end - start))
        return [lr * ratio for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        start, end, n = self.start_factor, self.end_factor, self.total_iters
        return [base * (start + (end - start) * min(n, self.last_epoch) / n) for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine from the initial rate to `eta_min` over `T_0` epochs, restarting; each period `T_mult` times longer."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got {T_0!r}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got {T_mult!r}")
        self.T_0 = T_0
        self.T_i = T_0  # the length of the current period
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch  # epochs (a float when stepped per batch) since the last restart
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        low = self.eta_min
        return [low + (base - low) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2 for base in self.base_lrs]

    def _advance(self, epoch: float | None) -> list[float]:
        """Advance one epoch, or go to `epoch` (no warning: here a float, such as `epoch + i / iters`, is how
        a person steps once per batch)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        elif epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:  # the period `epoch` falls in, by PyTorch's formula, for identical rates
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        return self.get_lr()


class _OfSchedulers(LRScheduler):
    """A scheduler made of others (in `_schedulers`): its state dict holds theirs."""

    def state_dict(self) -> dict:
        """Plain data: this scheduler's counters and each inner scheduler's own state dict."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [sched.state_dict() for sched in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        inner = state.pop("_schedulers", None)
        if inner is None or len(inner) != len(self._schedulers):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected states of "
                             f"{len(self._schedulers)} schedulers under '_schedulers'")
        super().load_state_dict(state)
        for sched, sub in zip(self._schedulers, inner):
            sched.load_state_dict(sub)


class SequentialLR(_OfSchedulers):
    """Run `schedulers` one after another, switching to the next at each epoch of `milestones`."""

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int],
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if not schedulers:
            raise ValueError("SequentialLR expects at least one scheduler")
        for i, sched in enumerate(schedulers):
            if not isinstance(sched, LRScheduler) or isinstance(sched, ReduceLROnPlateau | SequentialLR):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(sched).__name__}; it takes epoch "
                                "schedulers (not ReduceLROnPlateau or SequentialLR)")
            if sched.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] drives a different optimizer than the one given")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        # the schedulers' constructors already stepped the rates: start over from the first one alone
        self._schedulers[0]._restart()
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch with the scheduler whose turn it is; a scheduler starts from its epoch 0."""
        if epoch is not None:
            raise TypeError("step(epoch) is deprecated in PyTorch and not supported here: call step() once "
                            "per epoch")
        self.last_epoch += 1
        i = bisect.bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[i]
        if i > 0 and self._milestones[i - 1] == self.last_epoch:
            sched._restart()
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()



class PolynomialLR(LRScheduler):
    """Decay the rate as `(1 - epoch / total_iters) ** power` over `total_iters` epochs, then hold it."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        if not isinstance(total_iters, int) or isinstance(total_iters, bool) or total_iters <= 0:
            raise ValueError(f"PolynomialLR: total_iters must be a positive integer, got {total_iters!r}")
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, n = self.last_epoch, self.total_iters
        if self._is_initial or t > n:
            return self._current_lrs()
        # factor(t) / factor(t - 1), so a rate changed by hand is carried forward
        ratio = ((1.0 - t / n) / (1.0 - (t - 1) / n)) ** self.power
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        n = self.total_iters
        return [base * (1.0 - min(n, self.last_epoch) / n) ** self.power for base in self.base_lrs]


class ChainedScheduler(_OfSchedulers):
    """Step several schedulers of one optimizer together, each scaling the rate the previous one set."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.")
        optimizer = optimizer or schedulers[0].optimizer
        for i, sched in enumerate(schedulers):
            if not hasattr(sched, "optimizer"):
                raise TypeError(f"ChainedScheduler at index {i} should have `optimizer` as its attribute.")
            if isinstance(sched, ReduceLROnPlateau):
                raise ValueError("ChainedScheduler does not support `ReduceLROnPlateau` scheduler as it requires "
                                 "additional kwargs to be specified when calling `step`, but got one at index "
                                 f"{i} in the given schedulers sequence.")
            if sched.optimizer is not optimizer:
                raise ValueError(f"ChainedScheduler expects all schedulers to belong to the same optimizer, but got "
                                 f"scheduler {type(sched).__name__} at index {i} has {sched.optimizer}, which is "
                                 f"different from {type(optimizer).__name__}.")
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._last_lr = _last_lrs(self.optimizer)

    def step(self) -> None:  # type: ignore[override]
        """Step every scheduler, in order."""
        for sched in self._schedulers:
            sched.step()
        self._last_lr = _last_lrs(self.optimizer)


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    if isinstance(value, list | tuple):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name} must have the same length as optimizer.param_groups. {name} has "
                             f"{len(value)} values, param_groups has {len(optimizer.param_groups)}.")
        return list(value)
    return [value] * len(optimizer.param_groups)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by `factor` when a metric has stopped improving for `patience` epochs."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0,
                 eps: float = 1e-8) -> None:
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown! Use 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown! Use 'rel' or 'abs'")
        self.optimizer = optimizer
        self.factor = factor
        self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        self.default_min_lr = None if isinstance(min_lr, list | tuple) else min_lr  # as torch keeps it
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = _last_lrs(self.optimizer)
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record this epoch's metric (a number or 0-d tensor) and reduce the rates after a plateau."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during a cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _last_lrs(self.optimizer)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        # a relative threshold scales `best` (so best = inf stays inf), an absolute one shifts it
        sign = -1 if self.mode == "min" else 1
        if self.threshold_mode == "rel":
            bar = best * (1.0 + sign * self.threshold)
        else:
            bar = best + sign * self.threshold
        return a < bar if self.mode == "min" else a > bar

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            raise RuntimeError(f"the optimizer has {len(self.optimizer.param_groups)} param groups but "
                               f"ReduceLROnPlateau was built for {len(self.min_lrs)}; "
                               "set its min_lrs to match")
        for group, low in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, low)
            if old - new > self.eps:  # changes smaller than eps are not worth making
                set_lr(group, new)




from engine.optim.lr_cyclic import CyclicLR, OneCycleLR  # noqa: E402, F401  (exported here; they build on LRScheduler)
