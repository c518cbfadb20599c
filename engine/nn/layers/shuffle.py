"""ChannelShuffle, ShuffleNet's interleaving of channel groups, as torch.nn.ChannelShuffle."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.module import Module
from engine.tensor import Tensor


class ChannelShuffle(Module):
    """(N, C, *): the C channels split into `groups` groups and interleaved."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
