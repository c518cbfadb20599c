"""ASGD: SGD with a decaying step size that also keeps a running average of the parameters (`ax`)."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, count_step, l2_gradient, scalar_state, set_scalar, zeros_state


class ASGD(Optimizer):
    """Averaged SGD as in PyTorch: `lambd` decay, step size power `alpha`, averaging from step `t0` on."""

    non_negative = ("lr", "weight_decay")

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0.0, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _init_state(self, param, group: dict) -> dict:
        return {"step": scalar_state(0), "eta": scalar_state(group["lr"]), "mu": scalar_state(1.0),
                "ax": zeros_state(param)}

    def _update(self, param, grad, state: dict, group: dict):
        lr, lambd = group["lr"], group["lambd"]
        grad = l2_gradient(param, grad, group)
        step = count_step(state)
        eta, mu = float(state["eta"].array), float(state["mu"].array)
        param *= 1 - lambd * eta
        param -= eta * grad
        ax = state["ax"].array
        if mu != 1:
            ax += (param - ax) * mu
        else:  # before t0 the average is the parameter itself
            ax[...] = param
        set_scalar(state, "eta", lr / (1 + lambd * lr * step) ** group["alpha"])
        set_scalar(state, "mu", 1 / max(1, step - group["t0"]))

