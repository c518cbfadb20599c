"""RNN, LSTM and GRU (and their cells), with torch's parameter names and layout.

The three differ only in their cell: how many gate blocks the weights hold, and how the gates turn
(input projection, hidden projection, h, c) into the next (h, c). That is data (`CELLS`, in
engine.ops.recurrent_fused). Each layer in each direction runs as one op of its own (a loop over time
forward and backward on arrays, as torch's nn.LSTM is one op); a cell module is a few engine ops.
"""

from __future__ import annotations

import math

from engine import creation, ops
from engine.nn import functional as F
from engine.nn import init
from engine.nn.module import Module
from engine.nn.parameter import new_parameter
from engine.nn.settings import Setting
from engine.nn.utils.rnn import PackedSequence
from engine.ops.recurrent_fused import CELLS, recurrent_layer
from engine.tensor import Tensor
from engine.user_warning import warn


class RNNBase(Module):
    """A multi-layer, optionally bidirectional recurrent network over (L, N, H_in) or (N, L, H_in), or over a
    PackedSequence (then the output is one too, and h_n holds each sequence after its own last step)."""

    settings = (Setting("dropout", float, low=0.0, high=1.0,
                        doc="dropout on the outputs of each layer but the last, while training"),)

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1], got {dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: hidden_size ({hidden_size}) and num_layers ({num_layers}) must be > 0")
        if proj_size < 0 or (proj_size and (mode != "LSTM" or proj_size >= hidden_size)):
            raise ValueError(f"{name}: proj_size ({proj_size}) must be 0, or (LSTM only) smaller than "
                             f"hidden_size ({hidden_size})")
        if dropout and num_layers == 1:
            warn(f"{name}: dropout={dropout} falls between recurrent layers, after each but the last: with "
                 "num_layers=1 it does nothing")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gates, _ = CELLS[mode]
        out_size = proj_size or hidden_size
        directions = 2 if bidirectional else 1
        new = dict(device=device, dtype=dtype)
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * directions
            for suffix in ("", "_reverse")[:directions]:
                rows = gates * hidden_size
                shapes = {"weight_ih": (rows, layer_in), "weight_hh": (rows, out_size)}
                if bias:
                    shapes |= {"bias_ih": (rows,), "bias_hh": (rows,)}
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for kind, shape in shapes.items():
                    pname = f"{kind}_l{layer}{suffix}"
                    setattr(self, pname, new_parameter(*shape, **new))
                    self._flat_weights_names.append(pname)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every weight and bias in U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _layer_weights(self, layer: int, suffix: str) -> tuple:
        get = self._parameters.get
        kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        return tuple(get(f"{kind}_l{layer}{suffix}") for kind in kinds)

    def flatten_parameters(self) -> None:
        """Nothing to do: torch packs the weights into one buffer for cuDNN here; the engine's layer reads them
        where they are (a script calls it in forward, after moving the model)."""

    def forward(self, input: Tensor | PackedSequence, hx=None):
        name = type(self).__name__
        lstm = self.mode == "LSTM"
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes = input.data, input.batch_sizes.tolist()
            if data.ndim != 2:
                raise ValueError(f"{name}: a PackedSequence's data must be 2-D (steps, input_size), got shape "
                                 f"{tuple(data.shape)}")
            x, batched, n = data, True, batch_sizes[0]
        else:
            if input.ndim not in (2, 3):
                raise ValueError(f"{name}: expected input to be 2-D or 3-D, got shape {tuple(input.shape)}")
            batched = input.ndim == 3
            if not batched:
                x = input.unsqueeze(1)
            else:
                x = input.transpose(0, 1) if self.batch_first else input
            steps, n = x.shape[:2]
            batch_sizes = [n] * steps
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {x.shape[-1]}")
        if not batch_sizes:
            raise RuntimeError(f"{name}: Expected sequence length to be larger than 0 in RNN")
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype:
            raise ValueError(f"{name}: RNN input dtype ({x.dtype}) does not match weight dtype ({weight.dtype}). "
                             f"Convert input: input.to({weight.dtype}), or convert model: model.to({x.dtype})")
        directions = 2 if self.bidirectional else 1
        out_size = self.proj_size or self.hidden_size
        h0, c0 = self._initial_state(hx, lstm, batched, n, directions, out_size, x)
        if packed and hx is not None and input.sorted_indices is not None:
            # the batch runs longest first: the initial state's columns follow their sequences there
            h0 = h0[:, input.sorted_indices]
            c0 = c0[:, input.sorted_indices] if lstm else None

        # the layers run on rows: step t's are rows [offset_t, offset_t + batch_sizes[t]), as in packed data
        layer_input, h_n, c_n = (x if packed else x.reshape(-1, x.shape[-1])), [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[:directions]):
                k = layer * directions + direction
                ys, h, c = recurrent_layer(self.mode, layer_input, batch_sizes, self._layer_weights(layer, suffix),
                                           h0[k], c0[k] if lstm else None, reverse=direction == 1)
                outputs.append(ys)
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if directions == 1 else ops.cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)

        output, h_n = layer_input, ops.stack(h_n, 0)
        c_n = ops.stack(c_n, 0) if lstm else None
        if packed:
            output = PackedSequence(output, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
            if input.unsorted_indices is not None:  # the final states back in the caller's order
                h_n = h_n[:, input.unsorted_indices]
                c_n = c_n[:, input.unsorted_indices] if lstm else None
        else:
            output = output.view(len(batch_sizes), n, output.shape[-1])
            if not batched:
                output, h_n = output.squeeze(1), h_n.squeeze(1)
                c_n = c_n.squeeze(1) if lstm else None
            elif self.batch_first:
                output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def _initial_state(self, hx, lstm: bool, batched: bool, n: int, directions: int, out_size: int,
                       like: Tensor) -> tuple:
        """(h0, c0) as (layers * directions, N, size): given (and checked) or zeros."""
        name = type(self).__name__
        count = self.num_layers * directions
        expected = [(count, n, out_size)] + ([(count, n, self.hidden_size)] if lstm else [])
        if hx is None:
            states = [creation.zeros(shape, dtype=like.dtype, device=like.device) for shape in expected]
        else:
            states = list(hx) if lstm else [hx]
            if lstm and len(states) != 2:
                raise ValueError(f"{name}: hx must be a tuple (h_0, c_0)")
            if not batched:
                states = [s.unsqueeze(1) for s in states]
            for s, shape, label in zip(states, expected, ("h_0", "c_0")):
                if tuple(s.shape) != shape:
                    raise ValueError(f"{name}: expected {label} of shape {list(shape)}, got {list(s.shape)}")
                if s.dtype != like.dtype:
                    raise RuntimeError(f"{name}: expected {label} of dtype {like.dtype} as the input, got {s.dtype}")
        return states[0], (states[1] if lstm else None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)


class LSTM(RNNBase):
    """Long short-term memory; returns output, (h_n, c_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit; returns output, h_n."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


class RNNCellBase(Module):
    """One time step of an RNN, LSTM or GRU: parameters weight_ih, weight_hh, bias_ih, bias_hh."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device, dtype) -> None:
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gates, _ = CELLS[mode]
        new = dict(device=device, dtype=dtype)
        self.weight_ih = new_parameter(gates * hidden_size, input_size, **new)
        self.weight_hh = new_parameter(gates * hidden_size, hidden_size, **new)
        self.register_parameter("bias_ih", new_parameter(gates * hidden_size, **new) if bias else None)
        self.register_parameter("bias_hh", new_parameter(gates * hidden_size, **new) if bias else None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def forward(self, input: Tensor, hx=None):
        name = type(self).__name__
        lstm = self.mode == "LSTM"
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: expected input to be 1-D or 2-D, got shape {tuple(input.shape)}")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = creation.zeros((input.shape[0], self.hidden_size), dtype=input.dtype, device=input.device)
            h, c = zeros, zeros
        else:
            h, c = hx if lstm else (hx, None)
            if not batched:
                h, c = h.unsqueeze(0), (c.unsqueeze(0) if lstm else None)
        _, cell = CELLS[self.mode]
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        h, c = cell(gi, F.linear(h, self.weight_hh, self.bias_hh), h, c)
        if not batched:
            h, c = h.squeeze(0), (c.squeeze(0) if lstm else None)
        return (h, c) if lstm else h

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One step of an Elman RNN."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias,
                         device, dtype)


class LSTMCell(RNNCellBase):
    """One step of an LSTM; returns (h, c)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)


class GRUCell(RNNCellBase):
    """One step of a GRU."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)
