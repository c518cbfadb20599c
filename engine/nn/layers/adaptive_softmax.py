"""AdaptiveLogSoftmaxWithLoss (Grave et al., 2016), as torch.nn.AdaptiveLogSoftmaxWithLoss.

The frequent classes (below cutoffs[0]) and one entry per tail cluster share the head; each cluster's own
classes get a smaller projection of the input. A target's log-probability is its head log-probability, or its
cluster's head log-probability plus its log-probability within the cluster. The batch is split by cluster on
the host (as torch's nonzero does); the rest is composed of differentiable ops.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence

import numpy as np

from engine import backend
from engine.nn import functional as F
from engine.nn.containers import ModuleList, Sequential
from engine.nn.layers.linear import Linear
from engine.nn.module import Module
from engine.ops.shape import cat
from engine.tensor import Tensor

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])  # torch's name for forward's result


class AdaptiveLogSoftmaxWithLoss(Module):
    """An efficient softmax over many classes: a head for the frequent ones and clusters for the rest."""

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int], div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             "order, where each value is between 1 and n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [*cutoffs, n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, device=device, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hidden, bias=False, device=device, dtype=dtype),
                                        Linear(hidden, size, bias=False, device=device, dtype=dtype)))

    def reset_parameters(self) -> None:
        """PyTorch's default init of the head and every tail projection."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        """(the target's log-probability for each row, their mean negated: the loss)."""
        if target_.ndim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.ndim != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{tuple(input_.shape)}")
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{tuple(input_.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.ndim > 0
        input = input_ if batched else input_.unsqueeze(0)
        targets = np.asarray(backend.to_host(target_.array)).reshape(-1)
        if targets.dtype.kind not in "iu":
            raise TypeError(f"AdaptiveLogSoftmaxWithLoss: expected an integer target, got {target_.dtype.name}")
        if targets.size and (targets.min() < 0 or targets.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{targets.min()}, {targets.max()}] were found. ")
        head_index = np.where(targets < self.shortlist_size, targets, 0)
        output = None
        for i, (low, high) in enumerate(zip(self.cutoffs, self.cutoffs[1:])):
            rows = np.nonzero((targets >= low) & (targets < high))[0]
            if rows.size == 0:
                continue
            head_index[rows] = self.shortlist_size + i
            at = Tensor._wrap(backend.to_device(rows, input.device))
            local = F.log_softmax(self.tail[i](input.index_select(0, at)), dim=1)
            relative = Tensor._wrap(backend.to_device(targets[rows, None] - low, input.device))
            part = local.gather(1, relative).squeeze(1)
            output = (input.new_zeros(len(targets)) if output is None else output).index_add(0, at, part)
        head = F.log_softmax(self.head(input), dim=1)
        index = Tensor._wrap(backend.to_device(head_index[:, None].astype(np.int64), input.device))
        from_head = head.gather(1, index).squeeze(1)
        output = from_head if output is None else output + from_head
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        """The log-probability of every class, (N, n_classes)."""
        head = F.log_softmax(head_output, dim=1)
        parts = [head[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster + head[:, self.shortlist_size + i:self.shortlist_size + i + 1])
        return cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log-probabilities of all n_classes classes for each row of (N, in_features) (or of one row)."""
        batched = input.ndim > 1
        x = input if batched else input.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each row, computing the tail only for rows whose head says so."""
        batched = input.ndim > 1
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        best = head_output.argmax(dim=1)
        tail_rows = np.nonzero(backend.to_host(best.array) >= self.shortlist_size)[0]
        if tail_rows.size:
            at = Tensor._wrap(backend.to_device(tail_rows, x.device))
            full = self._full_log_prob(x.index_select(0, at), head_output.index_select(0, at))
            best = best.index_copy(0, at, full.argmax(dim=1))
        return best if batched else best.squeeze(0)
