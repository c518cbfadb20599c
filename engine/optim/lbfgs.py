"""L-BFGS: quasi-Newton steps from a short history of gradient changes, optionally with a strong-Wolfe line search.

Unlike the other optimizers it needs a closure (the loss is evaluated several times per step) and it
treats all parameters as one flat vector, so its state lives with the first parameter, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from engine.autograd.grad_mode import enable_grad, no_grad
from engine.backend import array_module, square_sum, update_squares
from engine.events import hub
from engine.optim.optimizer import Optimizer, restore_state_value
from engine.tensor import Tensor

_FLAT = ("d", "prev_flat_grad")  # state vectors as long as all parameters together
_FLAT_LISTS = ("old_dirs", "old_stps")


class LBFGS(Optimizer):
    """L-BFGS as in PyTorch (one parameter group; `line_search_fn` None or "strong_wolfe")."""

    needs_closure = True  # step(closure) evaluates the loss again as often as its line search needs

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        if max_eval is None and isinstance(max_iter, int):
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        for key in ("max_iter", "max_eval", "history_size"):
            value = group[key]
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Invalid {key}: {value!r} (need a whole number >= 1)")
        for key in ("tolerance_grad", "tolerance_change"):
            value = group[key]
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"Invalid {key}: {value!r}")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"Invalid line_search_fn: {group['line_search_fn']!r} "
                             "(only None and 'strong_wolfe' are supported)")

    def add_param_group(self, param_group: dict) -> None:
        """LBFGS takes one group only: a second one is refused."""
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ---- the flat view of all parameters --------------------------------------------------------
    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_grad(self):
        """Every parameter's gradient in one vector (zeros for a parameter without one)."""
        xp = array_module(self._params[0].array)
        return xp.concatenate([p.grad.array.reshape(-1) if p.grad is not None else xp.zeros_like(p.array).reshape(-1)
                               for p in self._params])

    def _add_grad(self, t: float, d) -> None:
        """params += t * d, d split back into the parameters' shapes."""
        offset = 0
        for p in self._params:
            n = p.array.size
            p.array += t * d[offset:offset + n].reshape(p.array.shape)
            p._vc[0] += 1
            offset += n

    def _set_params(self, arrays: list) -> None:
        for p, a in zip(self._params, arrays):
            p.array[...] = a
            p._vc[0] += 1

    # ---- the step -------------------------------------------------------------------------------
    def step(self, closure: Callable[[], object] | None = None):
        """Run up to `max_iter` L-BFGS iterations; `closure()` must zero the grads, backprop and return the loss."""
        if closure is None:
            raise TypeError("LBFGS.step needs a closure: a function that zeroes the gradients, computes the "
                            "loss, calls loss.backward() and returns the loss")
        group = self.param_groups[0]
        watching = hub.optimizer_norms
        with no_grad():
            with enable_grad():
                orig_loss = closure()
            if watching:  # the gradient that started the step, and the parameters before it
                stepped = [(i, p) for i, p in enumerate(self._params) if p.grad is not None]
                grads = [square_sum(p.grad.array) for _, p in stepped]
                before = [p.array.copy() for _, p in stepped]
            self._iterate(closure, group, orig_loss)
            names, squares = [], []
            if watching:
                for (i, p), grad, old in zip(stepped, grads, before):
                    names.append(self._param_name(0, i, group, p))
                    squares.append(grad)
                    update_squares(old, p.array, squares)
        self._announce_step(names, squares)
        return orig_loss

    def _evaluate(self, closure) -> float:
        hub.reset_top_level()  # each evaluation is the same forward again: the same op keys
        with enable_grad():
            return _loss_value(closure())

    def _iterate(self, closure, group: dict, orig_loss) -> None:
        """PyTorch's L-BFGS loop (minFunc's), on flat arrays; the loss at the start is already evaluated."""
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        loss = _loss_value(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        xp = array_module(flat_grad)
        if float(xp.abs(flat_grad).max()) <= tolerance_grad:  # already optimal
            return
        d, prev_flat_grad = (_array(state.get(k)) for k in _FLAT)
        old_dirs, old_stps = ([a.array for a in state.get(k, [])] for k in _FLAT_LISTS)
        t, h_diag, prev_loss = state.get("t"), state.get("H_diag"), state.get("prev_loss")
        ro = list(state.get("ro", []))
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # the descent direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, h_diag = [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:  # keep the pair only where the curvature is positive
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                d = _two_loop(-flat_grad, old_dirs, old_stps, ro, h_diag)
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            # the step length
            t = (min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) if state["n_iter"] == 1 else 1.0) * lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:  # the direction no longer descends
                break
            ls_func_evals = 0
            if group["line_search_fn"] == "strong_wolfe":
                x_init = [p.array.copy() for p in self._params]

                def obj_func(t, d, x_init=x_init):
                    self._add_grad(t, d)
                    f = self._evaluate(closure)
                    g = self._flat_grad()
                    self._set_params(x_init)
                    return f, g

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:  # the last iteration's loss would go unused
                    loss = self._evaluate(closure)
                    flat_grad = self._flat_grad()
                    opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float(xp.abs(d * t).max()) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break  # no progress left
        state.update(d=_wrap(d), t=t, old_dirs=[Tensor._wrap(a) for a in old_dirs],
                     old_stps=[Tensor._wrap(a) for a in old_stps], ro=ro, H_diag=h_diag,
                     prev_flat_grad=_wrap(prev_flat_grad), prev_loss=prev_loss)

    def _restore_state(self, values: dict, param: Tensor) -> dict:
        # flat vectors span every parameter: moved to the device and dtype, checked against the total length
        flat = Tensor._wrap(array_module(param.array).zeros(sum(p.array.size for p in self._params),
                                                            param.array.dtype))
        restored = {}
        for key, value in values.items():
            if key in _FLAT and value is not None:
                restored[key] = restore_state_value(value, flat, key)
            elif key in _FLAT_LISTS:
                if not isinstance(value, list | tuple):
                    raise ValueError(f"LBFGS state '{key}' must be a list of tensors, got {type(value).__name__}")
                restored[key] = [restore_state_value(v, flat, key) for v in value]
            else:
                restored[key] = restore_state_value(value, param, key)
        return restored


def _loss_value(loss) -> float:
    if (isinstance(loss, Tensor) and loss.numel() == 1) or isinstance(loss, numbers.Real):
        return float(loss.item() if isinstance(loss, Tensor) else loss)  # torch reads it under no_grad: no warning
    raise TypeError(f"LBFGS's closure must return the loss (a one-element tensor), got "
                    f"{f'a tensor of shape {tuple(loss.shape)}' if isinstance(loss, Tensor) else type(loss).__name__}")


def _array(value):
    return value.array if isinstance(value, Tensor) else value


def _wrap(array):
    return Tensor._wrap(array) if array is not None else None


def _two_loop(q, old_dirs: list, old_stps: list, ro: list, h_diag: float):
    """The L-BFGS inverse-Hessian approximation times q (the negated gradient), in two passes over the history."""
    al = [0.0] * len(old_dirs)
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = float(old_stps[i] @ q) * ro[i]
        q -= al[i] * old_dirs[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        be_i = float(old_dirs[i] @ r) * ro[i]
        r += (al[i] - be_i) * old_stps[i]
    return r


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through two points with their slopes, kept within `bounds`."""
    xmin_bound, xmax_bound = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square < 0:
        return (xmin_bound + xmax_bound) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, xmin_bound), xmax_bound)


def _strong_wolfe(obj_func, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step length meeting the strong Wolfe conditions (torch/optim's lswolfe.lua, as PyTorch ports it).

    Returns (loss, flat gradient, step length, evaluations) at the chosen point."""
    xp = array_module(d)
    d_norm = float(xp.abs(d).max())
    f_new, g_new = obj_func(t, d)
    ls_func_evals = 1
    gtd_new = float(g_new @ d)
    # bracket an interval containing a point that satisfies the conditions
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        too_high = f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev)
        if not too_high and abs(gtd_new) <= -c2 * gtd:  # this step length already satisfies both conditions
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if too_high or gtd_new >= 0:  # a minimum lies between the previous trial and this one
            bracket, bracket_f, bracket_g = [t_prev, t], [f_prev, f_new], [g_prev, g_new]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    # zoom: shrink the bracket until a point satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # close to an end of the bracket twice in a row (or at it): move 10% of its width inside instead
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # not enough decrease, or not below the lowest point: the new high end
            bracket[high_pos], bracket_f[high_pos], bracket_g[high_pos] = t, f_new, g_new
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:  # the old high end becomes the new low
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos], bracket_g[low_pos] = t, f_new, g_new
            bracket_gtd[low_pos] = gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
