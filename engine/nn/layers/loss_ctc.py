"""CTCLoss: the connectionist temporal classification loss as a module."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.module import Module
from engine.ops.loss import check_reduction
from engine.tensor import Tensor


class CTCLoss(Module):
    """Negative log-likelihood of targets under all alignments with log_probs (T, N, C), as nn.CTCLoss."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__()
        check_reduction("CTCLoss", reduction)
        self.blank, self.reduction, self.zero_infinity = blank, reduction, zero_infinity

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths, target_lengths) -> Tensor:
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                          self.zero_infinity)
