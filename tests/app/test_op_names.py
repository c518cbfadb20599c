"""Op nodes read as what the script calls their outputs: `q, k, v = qkv.chunk(3, dim=-1)` names the three
splits q, k and v, `scores = q @ k.transpose(-2, -1) / s` the div (not the transpose or the matmul), in the
graph's boxes, tooltips, search, the Inspector's title and the DOT export, live and in a replay alike."""

import io
import math
import threading
from dataclasses import dataclass

import numpy as np

import engine
import engine.nn.functional as F
from app.graph_model import OP, GraphModel
from engine import nn
from engine.debug import Debugger
from engine.debug.node_names import assigned, op_names
from engine.tape.export import export


class Attention(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        qkv = self.qkv(x)
        q, k, v = qkv.chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        attn = scores.softmax(-1)
        self.cache = attn * 1.0  # an attribute: not a name of the script's
        return self.out(attn @ v)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = self.drop(x)
        return self.fc2(x)


class Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.w = nn.Parameter(engine.randn(4, 4))

    def forward(self, x):
        h = x
        for layer in self.layers:
            h = layer(h)
        for _ in range(4):
            h = engine.tanh(h @ self.w)
        y = h * (h * 2.0)
        return y


def graph_of(fn) -> tuple[GraphModel, object]:
    """The GraphModel of what `fn()` runs under the debugger (its records carry the source lines), called
    from library code as the app's runpy calls a script: the test's own lines are no part of the script."""
    with Debugger("structure") as dbg:
        threading.Thread(target=fn).run()  # here, in this thread
    model = GraphModel()
    model.apply_batch(list(dbg.history))
    return model, model.view()


def names(view) -> dict[str, str]:
    """Op key -> what its box reads, for the ops that read as a name."""
    return {view.keys[i]: view.caption[i] for i in range(len(view))
            if view.kind[i] == OP and view.caption[i] != view.label[i]}


def attention_step():
    net = Attention()
    x = engine.randn(2, 5, 8)
    out = net(x)
    loss = out.pow(2).mean()
    loss.backward()


def test_attention_names_q_k_v_scores_and_attn_and_nothing_else():
    _model, view = graph_of(attention_step)
    assert names(view) == {
        "Attention.qkv/linear:0": "qkv",
        "Attention/split:0": "q", "Attention/split:1": "k", "Attention/split:2": "v",
        "Attention/div:0": "scores",  # the op the assignment receives: not the transpose, not the matmul
        "Attention/softmax:0": "attn",
        "Attention.out/linear:0": "out",  # `return self.out(...)` names nothing; `out = net(x)` does
        "mean:0": "loss",
    }
    q = view.keys.index("Attention/split:0")
    assert (view.caption[q], view.label[q], view.sublabel[q]) == ("q", "split", "split \u00b7 2\u00d75\u00d78")
    assert view.tooltip(q).startswith("q  (split)\nAttention/split:0\n")
    matmul = view.keys.index("Attention/matmul:0")
    assert (view.caption[matmul], view.sublabel[matmul]) == ("matmul", "2\u00d75\u00d75")
    assert view.tooltip(matmul).startswith("matmul  (op)\n")


def test_an_mlp_names_each_layer_by_the_line_that_assigns_it():
    net = MLP()
    X, Y = engine.randn(10, 6), engine.tensor(np.arange(10) % 3)

    def step():
        idx = engine.tensor(np.arange(4))
        xb, yb = X[idx], Y[idx]
        logits = net(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()

    _model, view = graph_of(step)
    assert names(view) == {"getitem:0": "xb", "getitem:1": "yb", "MLP/relu:0": "x", "MLP.drop/dropout:0": "x",
                           "MLP.fc2/linear:0": "logits", "cross_entropy:0": "loss"}


def test_a_line_run_again_and_again_names_each_time_and_a_module_call_its_last_op():
    net = Stack()
    _model, view = graph_of(lambda: net(engine.randn(2, 4)).sum().backward())
    assert names(view) == {
        "Stack.layers.0/linear:0": "h", "Stack.layers.1/linear:0": "h", "Stack.layers.2/linear:0": "h",
        "Stack/tanh:0": "h", "Stack/tanh:1": "h", "Stack/tanh:2": "h", "Stack/tanh:3": "h",
        "Stack/mul:1": "y",  # h * (h * 2.0): the outer mul, the inner one is no time of its own
    }


def test_what_is_no_plain_name_or_no_single_assignment_names_nothing():
    x = engine.randn(3)
    out = engine.zeros(3)

    def step():
        out[0] = (x * 2.0)[0]
        a = b = x * 3.0  # noqa: F841
        c = x * 4.0; d = x * 5.0  # noqa: E702, F841
        e = [t * 6.0 for t in (x,)]  # noqa: F841

    _model, view = graph_of(step)
    assert names(view) == {}
    assert assigned("self.cache = attn") is None and assigned("out[i] = y") is None
    assert assigned("q, k, v = qkv.chunk(3, dim=-1)") == (("q", "k", "v"), False)
    assert assigned("h = layer(h)") == (("h",), True) and assigned("total += loss") == (("total",), True)


def test_a_replay_names_the_ops_as_the_live_run_did_and_the_dot_export_too(tmp_path):
    path = tmp_path / "attn.tape"
    with engine.record(path, "structure", max_bytes=0):
        attention_step()
    _model, live = graph_of(attention_step)
    with engine.tape.open(path) as tape:
        replayed = GraphModel()
        replayed.apply_batch(list(tape.records()))
        assert names(replayed.view()) == names(live)
        out = io.StringIO()
        export(tape, "dot", out)
    dot = out.getvalue()  # a named op's box: its name over the op, its key and its shape
    assert 'label="scores\\ndiv\\nAttention/div:0\\n2x5x5 float32"' in dot
    assert 'label="q\\nsplit\\nAttention/split:0\\n' in dot
    assert 'label="matmul\\nAttention/matmul:0\\n' in dot


def test_naming_follows_the_order_ops_ran_and_reads_through_names_only():
    lines = [Frame("x = a * (b * c)")] * 2 + [Frame("h = h * w")] * 3
    assert op_names(["mul"] * 5, [(line,) for line in lines], [(), (0,), (), (2,), (3,)], [()] * 5) == \
        ["", "x", "h", "h", "h"]


@dataclass(frozen=True)
class Frame:  # a source line, as engine.debug.source.SourceFrame holds it
    text: str
