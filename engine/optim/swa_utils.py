"""Weight averaging with torch.optim.swa_utils' names: AveragedModel (SWA, EMA), SWALR and update_bn."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable

from engine import nn
from engine.autograd.grad_mode import no_grad
from engine.creation import tensor
from engine.dtypes import int64
from engine.nn.layers.norm import _BatchNorm
from engine.optim.lr_scheduler import LRScheduler, _per_group
from engine.optim.optimizer import Optimizer
from engine.tensor import Tensor

__all__ = ["SWALR", "AveragedModel", "get_ema_avg_fn", "get_ema_multi_avg_fn", "get_swa_avg_fn",
           "get_swa_multi_avg_fn", "update_bn"]


def _lerp_all(averaged: list[Tensor], current: list[Tensor], weight: float) -> None:
    """`avg += weight * (cur - avg)` in place; integer buffers (num_batches_tracked) round toward zero, as torch."""
    with no_grad():
        for avg, cur in zip(averaged, current):
            if avg.is_floating_point():
                avg.lerp_(cur, weight)
            else:
                avg.copy_(avg * (1 - weight) + cur * weight)


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """An exponential moving average over lists of tensors: `avg += (1 - decay) * (current - avg)`."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")

    def ema_update(averaged: list[Tensor], current: list[Tensor], num_averaged) -> None:
        _lerp_all(averaged, current, 1 - decay)

    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """The running mean over lists of tensors: `avg += (current - avg) / (num_averaged + 1)`."""

    def swa_update(averaged: list[Tensor], current: list[Tensor], num_averaged) -> None:
        _lerp_all(averaged, current, 1 / (float(num_averaged) + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """An exponential moving average of one tensor: returns `decay * averaged + (1 - decay) * current`."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")

    def ema_update(averaged: Tensor, current: Tensor, num_averaged) -> Tensor:
        return decay * averaged + (1 - decay) * current

    return ema_update


def get_swa_avg_fn() -> Callable:
    """The running mean of one tensor: returns `averaged + (current - averaged) / (num_averaged + 1)`."""

    def swa_update(averaged: Tensor, current: Tensor, num_averaged) -> Tensor:
        return averaged + (current - averaged) / (float(num_averaged) + 1)

    return swa_update


class AveragedModel(nn.Module):
    """A copy of `model` whose parameters (and, with `use_buffers`, buffers) are averaged over updates.

    Without `avg_fn` or `multi_avg_fn` the average is the plain running mean (SWA);
    `multi_avg_fn=get_ema_multi_avg_fn(0.999)` makes it an exponential moving average (EMA).
    """

    def __init__(self, model: nn.Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"AveragedModel expects an engine.nn.Module, got {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged(self, model: nn.Module) -> list[Tensor]:
        if self.use_buffers:
            return list(itertools.chain(model.parameters(), model.buffers()))
        return list(model.parameters())

    def update_parameters(self, model: nn.Module) -> None:
        """Fold `model`'s current parameters into the average (the first call copies them)."""
        mine, theirs = self._averaged(self.module), self._averaged(model)
        if len(mine) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} tensors to average "
                             f"but the averaged copy has {len(mine)}; pass the model it was built from")
        with no_grad():
            averaged = [p.detach() for p in mine]
            current = [p.detach().to(a.device) for p, a in zip(theirs, averaged)]
            n = int(self.n_averaged.item())
            if n == 0:
                for a, c in zip(averaged, current):
                    a.copy_(c)
            elif self.avg_fn is not None:
                for a, c in zip(averaged, current):
                    a.copy_(self.avg_fn(a, c, self.n_averaged))
            else:
                (self.multi_avg_fn or get_swa_multi_avg_fn())(averaged, current, self.n_averaged)
            if not self.use_buffers:  # buffers (BatchNorm statistics) follow the model as they are
                for b_mine, b_theirs in zip(self.module.buffers(), model.buffers()):
                    b_mine.detach().copy_(b_theirs.detach().to(b_mine.device))
            self.n_averaged += 1


@no_grad()
def update_bn(loader: Iterable, model: nn.Module, device=None) -> None:
    """Recompute the BatchNorm running statistics of `model` with one pass over `loader` (after SWA); with
    gradients off, as in PyTorch: the pass builds no graph."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # a cumulative average over the whole pass
    for batch in loader:
        if isinstance(batch, list | tuple):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


def _cosine_anneal(t: float) -> float:
    return (1 - math.cos(math.pi * t)) / 2


def _linear_anneal(t: float) -> float:
    return t


_ANNEALS = {"cos": _cosine_anneal, "linear": _linear_anneal}


class SWALR(LRScheduler):
    """Anneal each group's rate to `swa_lr` over `anneal_epochs` epochs ("cos" or "linear"), then hold it."""

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        for lr, group in zip(_per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in _ANNEALS:
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        if not isinstance(anneal_epochs, int) or isinstance(anneal_epochs, bool) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        """How far (0 to 1) the rate has moved towards `swa_lr` at fraction `t` of the annealing."""
        return _ANNEALS[self._anneal_strategy](t)

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        # the rate annealing started from is recovered from the current one, so a change by hand carries on
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        groups = self.optimizer.param_groups
        starts = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, starts)]
