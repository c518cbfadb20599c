"""Which learning-rate scheduler set an optimizer's rate to 0 (or decayed it to nothing), the line to change, and a
guess at why that fits how often its step() ran.

A scheduler that takes a rate that trained down to exactly 0, and keeps it there, is a mistake at once (a warmup
written the wrong way round, a decay whose length is counted in epochs but stepped every batch), where a rate of 0
given by hand may still be raised by the script: the learning-rate alert names the scheduler a step after the rate
reached 0 instead of twenty. Its steps are counted against the optimizer's: a scheduler stepped at every iteration
is never "a step() never called".
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass

from engine.optim.lr_scheduler import LambdaLR, MultiplicativeLR, schedulers_of, stepped_at

# a scheduler's settings that say how fast it decays, as the alerts write them: StepLR(step_size=1, gamma=0.7)
SETTINGS = ("step_size", "milestones", "gamma", "T_max", "eta_min", "factor", "end_factor", "total_iters")


@dataclass(frozen=True, slots=True)
class Zeroed:
    """What set a rate to 0: the scheduler's class, what it did and what to try, and the line to look at (a
    LambdaLR's function, else the line that made the scheduler)."""

    name: str
    text: str
    file: str
    line: int
    code: str


def zeroed_by(opt, steps: int, zero_steps: int) -> Zeroed | None:
    """The live scheduler of `opt` whose last step set a rate of 0, or None; `steps`: the optimizer steps seen so
    far, `zero_steps`: how many of the last ones had a rate of 0."""
    groups = [i for i, group in enumerate(opt.param_groups) if hyper_number(group.get("lr")) == 0]
    for sched, file, line in schedulers_of(opt):
        last = getattr(sched, "_last_lr", None)
        if hasattr(sched, "_schedulers") or not last:  # SequentialLR, ChainedScheduler: one inside set it
            continue
        zeroed = [i for i in groups if i < len(last) and hyper_number(last[i]) == 0]
        if zeroed:
            return _described(sched, zeroed[0], file, line, steps, zero_steps)
    return None


def decay_guess(opt, steps: int) -> tuple[str, tuple[str, int] | None]:
    """Why a rate that trained fell to nothing, fitted to how its scheduler was stepped (`steps`: the optimizer
    steps seen), and the line to change (file, line; None where none is known): every iteration, where it was meant
    per epoch (the scheduler.step() call to move out of the batch loop); per epoch, a decay too steep (the line that
    made the scheduler); none, a decay by hand."""
    found = [(sched, (file, line)) for sched, file, line in schedulers_of(opt) if not hasattr(sched, "_schedulers")]
    if not found:
        return ("No scheduler set it: a rate decayed by hand (lr *= gamma) at every step? Decay it per epoch, or by "
                "less"), None
    sched, made_at = found[0]
    name, calls = type(sched).__name__, getattr(sched, "_step_count", 1) - 1
    settings = ", ".join(f"{key}={_setting(getattr(sched, key))}" for key in SETTINGS if hasattr(sched, key))
    made = f"{name}({settings})" if settings else name
    if calls >= steps - 1:
        return (f"{name}'s step() runs at every iteration: meant for every epoch? {made} stepped {calls} times in "
                f"{steps} optimizer steps. Call scheduler.step() once per epoch, after the loop over the batches, or "
                "give it its length in batches"), stepped_at(sched) or made_at
    return (f"{name}'s step() ran {calls} times in {steps} optimizer steps (once per epoch) and {made} decays it this "
            "far: give it a gentler decay (a larger step_size, a gamma nearer 1) or fewer epochs"), made_at


def _described(sched, group: int, file: str, line: int, steps: int, zero_steps: int) -> Zeroed:
    name = type(sched).__name__
    calls = getattr(sched, "_step_count", 1) - 1  # the constructor's own step is not the script's
    epoch = sched.last_epoch
    every = calls >= steps - 1  # stepped once per optimizer step (its first step() may follow the second)
    fn = sched.lr_lambdas[group] if isinstance(sched, LambdaLR) else None
    if fn is not None:
        code = getattr(fn, "__code__", None)
        if code is None and callable(fn):  # a callable object: its __call__'s
            code = getattr(type(fn).__call__, "__code__", None)
        if code is not None:
            file, line = code.co_filename, code.co_firstlineno
    if calls <= 0:
        text = (f"{name} set it when it was made (a warmup that starts at 0) and its step() is never called: call "
                "scheduler.step() after each optimizer.step() (or once per epoch, as it is meant)")
        return Zeroed(name, text, file, line, _code(file, line))
    pace = ("its step() runs at every iteration" if every else
            f"its step() ran {calls} times in {steps} optimizer steps (once per epoch?)")
    start = epoch - zero_steps + 1 if every else epoch
    since = f"from epoch {start} on" if every else f"at epoch {epoch}"
    if isinstance(sched, MultiplicativeLR):
        text = (f"{name}'s lr_lambda (line {line}) returned 0 {since}, and {name} multiplies the rate by what it "
                f"returns, so once 0 it stays 0; {pace}. Make it return the factor wanted (1.0 keeps the rate)")
    elif fn is not None:
        text = (f"{name}'s lr_lambda (line {line}) returns 0 {since}, and {name} sets the rate to the initial one "
                f"times what it returns; {pace}. Make it return the factor wanted there (1.0 keeps the rate; a "
                "warmup that then holds is lambda s: min(1.0, (s + 1) / n))")
    elif every:
        text = (f"{name} (made at line {line}) schedules 0 {since}; {pace}, so its length counts iterations: give "
                "it the run's length in iterations, or a schedule that ends above 0 (eta_min, end_factor)")
    else:
        text = (f"{name} (made at line {line}) schedules 0 {since}; {pace}: give it as many epochs as the run has, "
                "or a schedule that ends above 0 (eta_min, end_factor)")
    return Zeroed(name, text, file, line, _code(file, line))


def hyper_number(value, missing: float | None = None) -> float | None:
    """A hyper-parameter (a rate, a decay) as a float, one held in a tensor too; `missing` where it is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return missing


def _setting(value) -> str:
    """A scheduler's setting as a script writes it: 0.7, 1, [30, 60]."""
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _code(file: str, line: int) -> str:
    return linecache.getline(file, line).strip() if file and line else ""

