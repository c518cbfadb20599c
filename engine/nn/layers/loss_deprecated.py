"""Loss names torch keeps for old scripts: NLLLoss2d (NLLLoss, which has taken (N, C, H, W) inputs for long)."""

from __future__ import annotations

import warnings

from engine.nn.layers.loss import NLLLoss
from engine.tensor import Tensor


class NLLLoss2d(NLLLoss):
    """NLLLoss under its old name for image inputs; warns, as torch does."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean") -> None:
        warnings.warn("`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in replacement and "
                      "see https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details.", FutureWarning,
                      stacklevel=2)
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
