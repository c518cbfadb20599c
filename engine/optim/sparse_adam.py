"""SparseAdam: torch's Adam for sparse gradients. The engine's gradients are always dense, so its step
refuses them with torch's own error, pointing at Adam."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, check_betas


class SparseAdam(Optimizer):
    """torch.optim.SparseAdam's interface; every step raises, as torch does for dense gradients."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        if isinstance(lr, int | float) and not lr > 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not eps > 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))

    def _update(self, param, grad, state: dict, group: dict):
        raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead "
                           "(the engine's gradients are always dense)")
