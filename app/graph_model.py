"""The computational graph as the app shows it, built by applying engine events (live or from a tape).

    model = GraphModel()
    off = model.subscribe(on_change)        # on_change(GraphChange), called from flush()
    model.apply_batch(events)               # the event pump: apply a frame's events, then notify once
    view = model.view()                     # plain data for app.layout and widgets.graph_canvas
    model.collapse("encoder.block0")        # module groups; the next view() shows it as one node

Wiring it to the canvas (the app's session controller; a LayoutJob runs in a worker for big graphs):

    def on_change(change):
        view = model.view()                 # cheap when nothing changed; same signature -> same layout
        if layout is None or view.signature != layout.signature:
            layout = layout_view(view, cache=cache)        # or LayoutJob(view, cache=cache) in a thread
        canvas.set_graph(view, layout)      # same layout object again: only labels and data change
        canvas.set_node_values(model.metric_array(view, GRAD_NORM), model.nonfinite_array(view), "grad norm",
                               model.nonfinite_notes(view))
        canvas.set_current(model.current)
    canvas.groupToggleRequested.connect(lambda path: (model.toggle(path), model.flush()))

`apply(event)` is O(1) and never lays anything out: it only records the op, its edges and flags.
Listeners hear about changes once per `flush()` (which `apply_batch` calls), never once per event.

Nodes are ops, and tensors that were consumed but not produced in the iteration (parameters and inputs,
keyed by their first consumer: "fc1/linear:0/in1"). Edges are tensors, labelled with their shapes.
An op key that repeats within an iteration (a module called twice) gets "#1", "#2"...; so does the
module call ("cell", "cell#1"), so every call is its own group. An iteration ends at an optimizer
step, or at an explicit boundary (`new_iteration()`, or the debugger's IterationEvent, after which
optimizer steps stop counting, as in engine.debug). When an iteration repeats the previous one's
structure (same keys, same edges, same order), the displayed view and its layout are kept; otherwise
the change reports the added and removed keys.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from engine.debug.breakpoints import namer
from engine.debug.node_names import input_name, op_names, param_name, root_names
from engine.debug.nonfinite import by_design
from engine.events import AlertEvent, BackwardEvent, ModuleEvent, OpEvent, OptimizerEvent
from engine.nn.module import NUMBERED_ROOT

OP, PARAM, INPUT, MODULE = 0, 1, 2, 3
KIND_NAMES = ("op", "param", "input", "module")
# what a node's values held, per direction (its output, its gradient), as bits of GraphModel.nonfinite:
# NaN, or only +-Inf (a summary said so), or an engine alert (or a failed op) named the node
FORWARD_NAN, BACKWARD_NAN = 1, 2
FORWARD_INF, BACKWARD_INF = 4, 8
FORWARD_ALERT, BACKWARD_ALERT = 16, 32
FAILED = 64  # the op raised (a ShapeError): no values at all, an error
_FORWARD, _BACKWARD = (FORWARD_NAN, FORWARD_INF, FORWARD_ALERT), (BACKWARD_NAN, BACKWARD_INF, BACKWARD_ALERT)
# nonfinite_array's levels (as widgets.graph_canvas names and colours them): finite; only +-Inf and no alert
# (amber: a mask's -inf); and, red, what an alert or NaN marks: NaN, +-Inf (an alert named it), both or not
# known which (an alert without a summary), and an op that raised
FINITE, INF_ONLY, NAN, INF, NAN_INF, ERROR = 0, 1, 2, 3, 4, 5
ACTIVATION, GRAD_NORM = "activation", "grad_norm"
SOFTMAXES = frozenset({"softmax", "log_softmax"})  # a finite output of one proves the infinities fed to it were -inf
MASK_DEPTH = 4  # ops back from a softmax (an add, a view, a cast) through which its -inf mask is recognised


TIMES = "\u00d7"  # the multiplication sign between dimensions


@functools.lru_cache(maxsize=4096)  # a view names ~10 shapes per node, from a few dozen distinct ones
def shape_text(shape: tuple[int, ...]) -> str:
    """'5x8' (with a multiplication sign) for (5, 8), 'scalar' for ()."""
    return TIMES.join(map(str, shape)) if shape else "scalar"


@functools.lru_cache(maxsize=4096)
def _shapes_text(shapes: tuple[tuple[int, ...], ...]) -> str:
    return ", ".join(map(shape_text, shapes))


@dataclass(frozen=True)
class StructureDiff:
    """What changed between two iterations' graphs (keys of ops and source tensors; edges as key pairs)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    added_edges: tuple[tuple[str, str], ...] = ()
    removed_edges: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IterationInfo:
    """An iteration that just ended: its number, and whether its structure repeated the previous one."""

    number: int
    same_structure: bool
    diff: StructureDiff | None


@dataclass
class GraphChange:
    """What a flush reports. `structure`: get a new view() and lay it out; otherwise values only."""

    structure: bool = False
    values: bool = False
    current: str | None = None
    iterations: list[IterationInfo] = field(default_factory=list)


@dataclass(eq=False)
class GraphView:
    """The visible graph as plain data: what `app.layout` lays out and `widgets.graph_canvas` draws.

    Node i: `keys[i]`, `kind[i]` (OP, PARAM, INPUT or MODULE for a collapsed module, whose key is its
    path), `label`/`sublabel` (op name and output shape), `group[i]` (index into `groups`, the innermost
    expanded module holding it; 0 is the top level). `order` is execution order (breaks cycles that
    collapsing repeated module calls can create). `node_of` maps every key of the structure, hidden
    ones included, to the visible node that shows it. `signature` is equal for views that lay out alike.
    """

    signature: int
    keys: list[str]
    kind: np.ndarray
    label: list[str]
    sublabel: list[str]
    op: list[str]
    module: list[str]
    in_shapes: list[str]
    out_shape: list[str]
    dtype: list[str]
    source: list[str]
    order: np.ndarray
    group: np.ndarray
    edges: np.ndarray
    edge_shape: list[str]
    groups: list[str]
    group_cls: list[str]
    group_parent: np.ndarray
    node_of: dict[str, int]
    backward: np.ndarray
    backward_edges: np.ndarray
    added: np.ndarray
    group_order: np.ndarray | None = None  # per group: where its call began in `order` (an empty one too)
    caption: list[str] | None = None  # what node i's box reads: an input's name in the script, a parameter's
    # in its module ("weight"), an op's the name the script assigned its output to ("q", its op under it);
    # its label is the full name ("fc1.weight") or the op ("split"), as the tooltip says
    # a model's path ("Sequential_2") -> the name the script calls it by ("D"), where the source lines tell it: its
    # box, its row in the Modules panel and its node when collapsed read so, its class under it
    root_names: dict[str, str] = field(default_factory=dict)
    # the collapsed module calls and those inside them, which no group shows (a collapsed call that ran an op is a
    # node): (call, class, the call that made it, where it began in `order`), each after the call that made it; the
    # Modules tree lists them (a module folded into one box in the graph is reached through the tree)
    hidden_calls: list[tuple[str, str, str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def tooltip(self, i: int) -> str:
        """Hover text of node i: op, shapes, module, dtype and source line."""
        kind = int(self.kind[i])
        name = self.label[i] if kind == PARAM or self.caption is None else self.caption[i]
        named = kind in (PARAM, INPUT) or name != self.label[i]  # "q  (split)", not "q  (op)"
        lines = [f"{name}  ({self.op[i] if named else KIND_NAMES[kind]})", self.keys[i]]
        if self.in_shapes[i]:
            lines.append(f"in: {self.in_shapes[i]}")
        if self.out_shape[i]:
            lines.append(f"out: {self.out_shape[i]}  {self.dtype[i]}")
        if self.module[i]:
            lines.append(f"module: {self.module[i]}")
        if self.source[i]:
            lines.append(self.source[i])
        return "\n".join(lines)


class _Iteration:
    """One iteration's structure, appended to event by event (parallel lists: appends are cheap)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.kind: list[int] = []
        self.group: list[int] = []  # index into self.groups
        self.label: list[str] = []
        self.in_shapes: list[tuple] = []
        self.out_shape: list[tuple] = []
        self.dtype: list[str] = []
        self.tensor: list[int] = []  # a source node's tensor id (0 for ops)
        self.esrc: list[int] = []
        self.edst: list[int] = []
        self.eshape: list[tuple] = []
        self.producer: dict[int, int] = {}  # tensor id -> node producing (or standing for) it
        self.key_count: dict[str, int] = {}
        self.by_seq: dict[int, int] = {}  # forward event seq -> node
        self.groups: list[str] = [""]  # module calls: "cell", "cell#1" for its second call
        self.group_path: list[str] = [""]  # their module paths, as events name them: "cell"
        self.group_cls: list[str] = [""]
        self.group_parent: list[int] = [-1]
        self.group_at: list[float] = [-1.0]  # where each call began, in node order (before the node run next)
        self.group_count: dict[str, int] = {}
        self.stack: list[int] = [0]
        self.entry: set[int] = set()  # tensors passed into some module call
        self.backward: list[int] = []  # forward nodes, in the order their backward ran
        # op key -> (its SourceFrame, the user frames it ran under, innermost first) in this iteration: a key another
        # line made in an earlier iteration (`mean:0` of a diagnostic after the step) is named by this one's line
        self.frames: dict[str, tuple] = {}
        self.diverged = False  # differs from the previous iteration (in order, keys or edges)
        self.reshaped = False  # the same so far, but some node's shapes differ (a smaller last batch)


class GraphModel:
    """Graph state built from engine events (see the module docstring for the protocol)."""

    def __init__(self) -> None:
        self.iteration = 0
        self.current: str | None = None
        self.collapsed: set[str] = set()
        self.last_diff: StructureDiff | None = None
        self.tensor_names: dict[int, str] = {}
        self.buffers: set[str] = set()  # keys of source nodes a module holds that are no parameters (running_mean)
        self._root_prefix: dict[str, str] = {}  # a model's root name -> what its parameters' labels start with
        self.metrics: dict[str, dict[str, float]] = {ACTIVATION: {}, GRAD_NORM: {}}
        self.nonfinite: dict[str, int] = {}  # node key -> FORWARD_NAN | BACKWARD_INF | ... bits
        self.nonfinite_version = 0  # bumped whenever `nonfinite` changes
        # ops whose infinities are a mask: -inf that a softmax turned into zeros (a causal attention mask added to the
        # scores); not marked as a fault, this iteration or the next
        self.masks: set[str] = set()
        self.alerts: dict[str, str] = {}
        self._prev: _Iteration | None = None
        self._cur = _Iteration()
        self._marks = False
        # fed the debugger's records, the model ends an iteration where their iteration number changes: the
        # debugger's rule (a GAN's discriminator and generator steps are one iteration), not every step
        self._record_iteration: int | None = None
        self._ended = False  # the run ended: its last iteration is complete, though no step closed it
        self._cut = False  # the iteration in progress lacks its start (events lost before it): compared with none
        self._version = 0
        self._data_version = 0
        self._view: GraphView | None = None
        self._view_version = (-1, -1)
        self._listeners: tuple[Callable[[GraphChange], None], ...] = ()
        self._pending = GraphChange()
        self._handlers: dict[type, Callable] = {
            OpEvent: self._on_op, BackwardEvent: self._on_backward, ModuleEvent: self._on_module,
            OptimizerEvent: self._on_optimizer, AlertEvent: self._on_alert,
        }

    # ---- listeners -----------------------------------------------------------------------
    def subscribe(self, fn: Callable[[GraphChange], None]) -> Callable[[], None]:
        """Call `fn(change)` at every flush that has something to report; returns the unsubscribe."""
        self._listeners = (*self._listeners, fn)
        return lambda: setattr(self, "_listeners", tuple(f for f in self._listeners if f != fn))

    def flush(self) -> GraphChange | None:
        """Tell listeners what changed since the last flush; returns that change (None if nothing)."""
        change = self._pending
        if not (change.structure or change.values or change.iterations):
            return None
        self._pending = GraphChange()
        for fn in self._listeners:
            fn(change)
        return change

    # ---- applying events -----------------------------------------------------------------
    def apply(self, event) -> None:
        """Absorb one event (engine event, debugger record, or unknown: ignored). O(1); no notification."""
        handler = self._handlers.get(type(event))
        if handler is None:
            handler = self._handlers[type(event)] = self._handler_for(event)
        handler(event)

    def apply_batch(self, events: Iterable) -> GraphChange | None:
        """Apply events in order, then flush once."""
        apply = self.apply
        for event in events:
            apply(event)
        return self.flush()

    def end_run(self) -> None:
        """The run finished: the iteration it ended in is complete (a last evaluation pass after the final
        optimizer step), so it is shown alone, not over the training iteration before it."""
        if self._ended or self._prev is None or not self._cur.keys:
            return
        self._ended = True
        self._version += 1
        self._pending.structure = True

    def new_iteration(self) -> IterationInfo:
        """End the current iteration now (for loops without an optimizer step)."""
        cur, prev = self._cur, self._prev
        if prev is not None and not cur.keys:  # an empty iteration (two boundaries in a row)
            info = IterationInfo(self.iteration, True, None)
            self._pending.iterations.append(info)
            self.iteration += 1
            return info
        same = prev is not None and not cur.diverged and len(cur.keys) == len(prev.keys) \
            and len(cur.esrc) == len(prev.esrc)
        diff = None
        if not same:
            diff = _diff(prev, cur)
            self.last_diff = diff if prev is not None else None
            self._version += 1
            self._pending.structure = True
        elif not _shows_alike(prev, cur):  # same graph, other shapes (a smaller last batch)
            self._data_version += 1
        info = IterationInfo(self.iteration, same, diff)
        self._pending.iterations.append(info)
        self._prev = None if self._cut else cur
        self._cut = False
        self._cur = _Iteration()
        self.iteration += 1
        return info

    def skip_gap(self) -> None:
        """Events were lost here (a damaged tape): the graph starts again with the next event. Neither what came
        before nor the iteration the gap cut short is compared with what follows: their difference is the damage's,
        not the run's, and would be marked as changed."""
        self._prev = None
        self._cur = _Iteration()
        self._record_iteration = None
        self.last_diff = None
        self._cut = True
        self._version += 1
        self._pending.structure = True

    def _handler_for(self, event) -> Callable:
        # debugger types are matched by shape (once per type), so this module needs no engine.debug import
        if type(event).__name__ == "IterationEvent":
            return self._on_mark
        if hasattr(event, "event"):  # OpRecord, BackwardRecord, EventRecord: the event plus summaries
            return self._on_record
        return _ignore

    def _on_op(self, ev: OpEvent) -> None:
        cur = self._cur
        key = ev.key
        n = cur.key_count.get(key, 0)
        cur.key_count[key] = n + 1
        if n:
            key = f"{key}#{n}"
        group = cur.stack[-1]
        if cur.group_path[group] != ev.module:
            group = self._group_of_path(cur, ev.module)
        producer = cur.producer
        for i, t in enumerate(ev.inputs):
            src = producer.get(t)
            if src is None:
                src = self._add_source(cur, t, key, ev.op, i, ev.input_shapes[i], group, ev.dtype)
            self._add_edge(cur, src, ev.input_shapes[i])
        idx = self._add_node(cur, key, OP, group, ev.op, ev.input_shapes, ev.output_shape, ev.dtype, 0)
        # edges were appended before the node existed: their destination is this node
        edst = cur.edst
        for j in range(len(edst) - len(ev.inputs), len(edst)):
            edst[j] = idx
        self._check_edges(cur, len(ev.inputs))
        producer[ev.output] = idx
        cur.by_seq[ev.seq] = idx
        self.current = key
        self._pending.current = key
        self._pending.values = True

    def _add_node(self, cur: _Iteration, key: str, kind: int, group: int, label: str, in_shapes: tuple,
                  out_shape: tuple, dtype: str, tensor: int) -> int:
        idx = len(cur.keys)
        cur.keys.append(key)
        cur.index[key] = idx
        cur.kind.append(kind)
        cur.group.append(group)
        cur.label.append(label)
        cur.in_shapes.append(in_shapes)
        cur.out_shape.append(out_shape)
        cur.dtype.append(dtype)
        cur.tensor.append(tensor)
        prev = self._prev
        if not cur.diverged and (prev is None or idx >= len(prev.keys) or prev.keys[idx] != key):
            self._diverge(cur)
        elif cur.diverged:
            self._version += 1
            self._pending.structure = True
        elif prev.out_shape[idx] != out_shape or prev.in_shapes[idx] != in_shapes:
            cur.reshaped = True  # shown with its own shapes, not the last iteration's (see _shown_iteration)
            self._data_version += 1
        return idx

    def _add_source(self, cur: _Iteration, tensor: int, consumer: str, op: str, arg: int, shape: tuple,
                    group: int, dtype: str) -> int:
        # inside a module, a tensor nobody produced and nobody passed in belongs to the module: a parameter,
        # named by the module's call; unnamed, a buffer (BatchNorm's running_var) or one the module made itself
        # (an LSTM's zero initial state), named as the op's argument is (a tape names them alike)
        key = f"{consumer}/in{arg}"
        label = self.tensor_names.get(tensor)
        if group and tensor not in cur.entry:
            kind = PARAM
            if label is None:
                label = input_name(op, arg, "")
                label = "constant" if label == KIND_NAMES[INPUT] else label
                self.buffers.add(key)
        else:
            kind, group = INPUT, 0
            label = label or KIND_NAMES[kind]
        idx = self._add_node(cur, key, kind, group, label, (), shape, dtype, tensor)
        cur.producer[tensor] = idx
        return idx

    def _add_edge(self, cur: _Iteration, src: int, shape: tuple) -> None:
        cur.esrc.append(src)
        cur.edst.append(-1)
        cur.eshape.append(shape)

    def _check_edges(self, cur: _Iteration, count: int) -> None:
        if cur.diverged:
            return
        prev = self._prev
        end = len(cur.esrc)
        if end > len(prev.esrc) or prev.esrc[end - count:end] != cur.esrc[end - count:end] \
                or prev.edst[end - count:end] != cur.edst[end - count:end]:
            self._diverge(cur)

    def _diverge(self, cur: _Iteration) -> None:
        cur.diverged = True
        self._version += 1
        self._pending.structure = True

    def _group_of_path(self, cur: _Iteration, path: str) -> int:
        # ops under a module path without a ModuleEvent (functional code): a group per path, by prefix
        if not path:
            return 0
        for g in range(len(cur.groups) - 1, 0, -1):
            if cur.group_path[g] == path:
                return g
        parent = self._group_of_path(cur, path.rsplit(".", 1)[0]) if "." in path else 0
        cur.groups.append(path)
        cur.group_path.append(path)
        cur.group_cls.append("")
        cur.group_parent.append(parent)
        cur.group_at.append(len(cur.keys) - 0.5)
        return len(cur.groups) - 1

    def _on_module(self, ev: ModuleEvent) -> None:
        cur = self._cur
        if not ev.enter:
            if len(cur.stack) > 1:
                cur.stack.pop()
            return
        n = cur.group_count.get(ev.path, 0)
        cur.group_count[ev.path] = n + 1
        cur.groups.append(f"{ev.path}#{n}" if n else ev.path)
        cur.group_path.append(ev.path)
        cur.group_cls.append(ev.cls)
        cur.group_parent.append(cur.stack[-1])
        cur.group_at.append(len(cur.keys) - 0.5)
        cur.stack.append(len(cur.groups) - 1)
        cur.entry.update(ev.tensors)
        params = ev.params
        if params or "." not in ev.path:
            prefix = self._model_prefix(ev.path, ev.cls)
            if params and any(self.tensor_names.get(tid) != prefix + name for tid, name in params):
                # once per module, not every iteration: names rarely change
                self.set_tensor_names({tid: prefix + name for tid, name in params})

    def _model_prefix(self, path: str, cls: str) -> str:
        """What the labels of the parameters of module call `path` start with: "" for the first model of a class
        ("net.0.weight", as the model names them), the root name for a second ("Actor_2.net.0.weight"), so that a
        target network's parameters are told from the online one's. Decided by the call alone, so that a replay
        starting anywhere labels them as the live run did."""
        root, dot, _ = path.partition(".")
        prefix = self._root_prefix.get(root)
        if prefix is None or not dot:
            # a model's own call names its class ("Net_2" may be one); a submodule called directly, only the root
            second = NUMBERED_ROOT.fullmatch(root) is not None and (bool(dot) or root != cls)
            prefix = self._root_prefix[root] = root + "." if second else ""
        return prefix

    def _on_backward(self, ev: BackwardEvent) -> None:
        cur = self._cur
        idx = cur.by_seq.get(ev.forward_seq)
        if idx is None:
            idx = cur.index.get(ev.key)
        if idx is not None:
            cur.backward.append(idx)
            key = cur.keys[idx]
        else:
            key = ev.key
        self.current = key
        self._pending.current = key
        self._pending.values = True

    def _on_optimizer(self, ev: OptimizerEvent) -> None:
        if not self._marks and self._record_iteration is None:
            self.new_iteration()

    def _on_mark(self, ev) -> None:
        self._marks = True
        if self._record_iteration is None:
            self.new_iteration()

    def _on_alert(self, ev: AlertEvent) -> None:
        key = self._latest_key(ev.key)
        if ev.kind.startswith("nonfinite"):  # red, whatever the values: an origin the engine reports
            bit = BACKWARD_ALERT if ev.kind.endswith("backward") else FORWARD_ALERT
            self._set_flags(key, self.nonfinite.get(key, 0) | bit)
        self.alerts[key] = ev.message
        self._pending.values = True

    def _on_record(self, rec) -> None:
        it = getattr(rec, "iteration", None)
        if it is not None and it != self._record_iteration:
            if self._record_iteration is not None:
                self.new_iteration()
            self._record_iteration = it
        self.apply(rec.event)
        summary = getattr(rec, "summary", None)
        if isinstance(rec.event, OpEvent):
            key = self.current
            source = getattr(rec, "source", None)
            if source is not None:
                self._cur.frames[key] = (source, getattr(rec, "stack", ()) or (source,))
            if summary is not None:
                # a mask's -inf is by design (as for the debugger's alerts): not marked as a problem
                nan = summary.nan_count > 0
                clean = summary.finite or by_design(rec.event.op, nan) or (not nan and key in self.masks)
                self._record_summary(key, ACTIVATION, summary.abs_max, clean, nan, _FORWARD)
                if summary.finite and rec.event.op in SOFTMAXES:
                    self._find_masks(rec.event.inputs)
        elif isinstance(rec.event, BackwardEvent):
            grad = getattr(rec, "grad_output", None)
            if grad is not None:
                self._record_summary(self.current, GRAD_NORM, grad.norm, grad.finite, grad.nan_count > 0,
                                     _BACKWARD)

    def _find_masks(self, tensors: tuple) -> None:
        """A softmax's output is finite: the infinities (no NaN) of the ops that fed it, and of those that fed them
        up to MASK_DEPTH back, were -inf it turned into zeros (+inf would have made NaN): a mask, not a fault."""
        cur = self._cur
        todo = [(cur.producer[t], 1) for t in tensors if t in cur.producer]
        seen = set()
        while todo:
            j, depth = todo.pop()
            key = cur.keys[j]
            flags = self.nonfinite.get(key, 0)
            if j in seen or not flags & FORWARD_INF or flags & (FORWARD_NAN | FORWARD_ALERT | FAILED):
                continue
            seen.add(j)
            self.masks.add(key)
            self._set_flags(key, flags & ~FORWARD_INF)
            if depth < MASK_DEPTH:
                todo += [(src, depth + 1) for src, dst in zip(cur.esrc, cur.edst, strict=True) if dst == j]

    def is_mask(self, key: str) -> bool:
        """Whether op `key`'s infinities are a mask that a softmax turned into zeros (see _find_masks)."""
        return key in self.masks

    def _record_summary(self, key: str, metric: str, value: float, clean: bool, nan: bool,
                        bits: tuple[int, int, int]) -> None:
        """Note a summary's metric and what non-finite values it saw (`bits`: _FORWARD or _BACKWARD)."""
        self.metrics[metric][key] = value
        nan_bit, inf_bit, alert_bit = bits
        old = self.nonfinite.get(key, 0)
        if clean:  # finite again: an earlier alert no longer applies either
            flags = old & ~(nan_bit | inf_bit | alert_bit)
        else:  # an alert stays: it comes after the summary of the op it names, and holds while it is not finite
            flags = old & ~(nan_bit | inf_bit) | (nan_bit if nan else inf_bit)
        if flags != old:
            self._set_flags(key, flags)

    def _set_flags(self, key: str, flags: int) -> None:
        if flags:
            self.nonfinite[key] = flags
        else:
            self.nonfinite.pop(key, None)
        self.nonfinite_version += 1

    def _latest_key(self, key: str) -> str:
        """The deduplicated key of the latest op with event key `key` in the current iteration."""
        n = self._cur.key_count.get(key, 0)
        return f"{key}#{n - 1}" if n > 1 else key

    # ---- values the app sets -------------------------------------------------------------
    def set_metric(self, name: str, values: dict[str, float]) -> None:
        """Set a per-node metric (e.g. 'grad_norm'), by node key; nodes not named keep their value."""
        self.metrics.setdefault(name, {}).update(values)
        self._pending.values = True

    def set_nonfinite(self, key: str, flag: bool = True) -> None:
        """Mark node `key` in red, as an alert does; `flag` False clears every mark."""
        self._set_flags(key, self.nonfinite.get(key, 0) | FORWARD_ALERT if flag else 0)
        self._pending.values = True

    def set_failed(self, key: str) -> None:
        """Mark node `key` as the op that raised (an error, not a value that went non-finite)."""
        self._set_flags(key, self.nonfinite.get(key, 0) | FAILED)
        self._pending.values = True

    def set_tensor_names(self, names: dict[int, str]) -> None:
        """Name source tensors by tensor id (e.g. {p.id: '0.weight'} from named_parameters())."""
        self.tensor_names.update(names)
        for it in (self._prev, self._cur):
            if it is not None:
                for i, t in enumerate(it.tensor):
                    if t in names:
                        it.label[i] = names[t]
        self._version += 1
        self._pending.structure = True

    def metric_array(self, view: GraphView, name: str) -> np.ndarray:
        """Metric `name` per visible node (NaN where unknown; a collapsed module shows its largest)."""
        out = np.full(len(view), np.nan)
        node_of = view.node_of
        for key, value in self.metrics.get(name, {}).items():
            i = node_of.get(key)
            if i is not None and not out[i] >= value:  # `not >=` also replaces NaN
                out[i] = value
        return out

    def nonfinite_array(self, view: GraphView) -> np.ndarray:
        """Per visible node, what its values hold, as a level named for it: ERROR (the op raised), NAN, INF (an
        alert named it), NAN_INF (both, or an alert that did not say which), INF_ONLY (+-Inf, no alert), else
        FINITE. A module or a fan shows what its red members hold together (an error first)."""
        seen = np.zeros(len(view), np.int8)  # bits: 1 amber +-Inf, 2 NaN, 4 red +-Inf, 8 red of unknown kind, 16 error
        node_of = view.node_of
        for key, flags in self.nonfinite.items():
            i = node_of.get(key)
            if i is not None:
                seen[i] |= _kind_bits(flags)
        out = np.zeros(len(view), np.int8)
        out[seen & 1 > 0] = INF_ONLY
        red = seen & 14
        out[red == 2] = NAN
        out[red == 4] = INF
        out[(red != 0) & (red != 2) & (red != 4)] = NAN_INF
        out[seen & 16 > 0] = ERROR
        return out

    def nonfinite_notes(self, view: GraphView) -> dict[int, str]:
        """Per visible node with non-finite values, what they are ("NaN in its output"), for its hover text."""
        members: dict[int, list[str]] = {}
        node_of = view.node_of
        for key in self.nonfinite:
            i = node_of.get(key)
            if i is not None:
                members.setdefault(i, []).append(key)
        notes = {}
        for i, keys in members.items():
            if len(keys) == 1 and view.keys[i] == keys[0]:
                notes[i] = self._note(keys[0])
                continue
            # a module, or a fan of ops: how many of its ops hold what
            counts: dict[str, int] = {}
            for k in keys:
                what = _MEMBER_WORDS[_kind_bits(self.nonfinite[k]).bit_length() - 1]
                counts[what] = counts.get(what, 0) + 1
            parts = [f"{what} in {n}" for what, n in sorted(counts.items(), key=lambda item: _ORDER[item[0]])]
            parts[0] += " of its ops"
            notes[i] = "; ".join(parts)
        return notes

    def _note(self, key: str) -> str:
        flags = self.nonfinite[key]
        lines = []
        for nan, inf, where in ((FORWARD_NAN, FORWARD_INF, "output"), (BACKWARD_NAN, BACKWARD_INF, "gradient")):
            if flags & nan:
                lines.append(f"NaN in its {where}")
            elif flags & inf:
                lines.append(f"\u00b1Inf in its {where}, no NaN")
        message = self.alerts.get(key, "")
        if flags & FAILED:
            lines.append(f"error: {message}" if message else "error: this op raised")
        elif flags & (FORWARD_ALERT | BACKWARD_ALERT):
            lines.append(f"alert: {message}" if message else "alert: non-finite values start here")
        return "\n".join(lines)

    # ---- module groups -------------------------------------------------------------------
    def collapse(self, path: str) -> None:
        """Show module call `path` as one node."""
        self._set_collapsed(path, True)

    def expand(self, path: str) -> None:
        """Show the inside of module call `path`."""
        self._set_collapsed(path, False)

    def toggle(self, path: str) -> None:
        """Collapse `path` if expanded, else expand it."""
        self._set_collapsed(path, path not in self.collapsed)

    def collapse_below(self, depth: int) -> None:
        """Collapse every module call nested `depth` or more levels deep (1: top-level modules)."""
        it = self._shown_iteration()
        for g, path in enumerate(it.groups):
            d, p = 0, g
            while p > 0:
                d, p = d + 1, it.group_parent[p]
            if d >= depth:
                self.collapsed.add(path)
        self._version += 1
        self._pending.structure = True

    def _set_collapsed(self, path: str, collapsed: bool) -> None:
        if (path in self.collapsed) == collapsed:
            return
        (self.collapsed.add if collapsed else self.collapsed.discard)(path)
        self._version += 1
        self._pending.structure = True

    def call_of(self, key: str) -> str | None:
        """The module call node `key` ran in this iteration, as the graph names it ("Net.pool#1" for a
        second call); "" at the top level, None when it has not run in this iteration."""
        cur = self._cur
        idx = cur.index.get(key)
        return None if idx is None else cur.groups[cur.group[idx]]

    def latest_call(self, path: str) -> str | None:
        """The latest call of module `path` in this iteration, as the graph names it ("Net.pool#1" for a
        second call), or None when it has not been called in this iteration."""
        cur = self._cur
        for g in range(len(cur.groups) - 1, 0, -1):
            if cur.group_path[g] == path:
                return cur.groups[g]
        return None

    def tensor_of(self, key: str) -> int:
        """The tensor id a parameter or input node stood for in the latest iteration that has it (0: none)."""
        for it in (self._cur, self._prev):
            i = it.index.get(key) if it is not None else None
            if i is not None and it.tensor[i]:
                return it.tensor[i]
        return 0

    # ---- the view ------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Bumped whenever view() would return a differently shaped graph."""
        return self._version

    def _shown_iteration(self) -> _Iteration:
        cur, prev = self._cur, self._prev
        if prev is None or self._ended:
            return cur
        if cur.diverged or cur.reshaped:
            return _union(prev, cur)
        return prev

    def view(self) -> GraphView:
        """The visible graph: the last complete iteration, plus what the running one added so far."""
        if self._view is not None and self._view_version == (self._version, self._data_version):
            return self._refresh_backward(self._view)
        it = self._shown_iteration()
        sources = {key: f"{frame.file}:{frame.line}  {frame.text}" for key, (frame, _) in it.frames.items()}
        stacks = {key: stack for key, (_, stack) in it.frames.items()}
        self._view = _build_view(it, self.collapsed, sources, self.last_diff, self._backward_iteration(),
                                 self.buffers, stacks)
        self._view_version = (self._version, self._data_version)
        return self._view

    def _backward_iteration(self) -> _Iteration:
        cur = self._cur
        return cur if cur.backward or self._prev is None or self._ended else self._prev

    def _refresh_backward(self, view: GraphView) -> GraphView:
        it = self._backward_iteration()
        if len(it.backward) != len(view.backward):
            view.backward, view.backward_edges = _backward_arrays(it, view)
        return view


def _ignore(event) -> None:
    return None


# what one op's flags say, as the bits nonfinite_array combines (the highest is the member's word in a module note)
_MEMBER_WORDS = ("\u00b1Inf, no NaN,", "NaN", "\u00b1Inf (alert)", "NaN or \u00b1Inf (alert)", "an error")
_ORDER = {word: j for j, word in enumerate(reversed(_MEMBER_WORDS))}


def _kind_bits(flags: int) -> int:
    """One op's flags as one bit: 16 it raised, 2 NaN, 4 +-Inf an alert named, 8 an alert of unknown kind,
    1 +-Inf without an alert."""
    if flags & FAILED:
        return 16
    alert = flags & (FORWARD_ALERT | BACKWARD_ALERT)
    nan, inf = flags & (FORWARD_NAN | BACKWARD_NAN), flags & (FORWARD_INF | BACKWARD_INF)
    if nan and inf:
        return 8
    if nan:
        return 2
    if alert:
        return 4 if inf else 8
    return 1 if inf else 0


def _diff(prev: _Iteration | None, cur: _Iteration) -> StructureDiff:
    old = set(prev.keys) if prev is not None else set()
    new = set(cur.keys)
    old_edges = _edge_keys(prev) if prev is not None else set()
    new_edges = _edge_keys(cur)
    return StructureDiff(tuple(k for k in cur.keys if k not in old),
                         tuple(k for k in prev.keys if k not in new) if prev is not None else (),
                         tuple(sorted(new_edges - old_edges)), tuple(sorted(old_edges - new_edges)))


_VIEW_FIELDS = ("keys", "kind", "label", "group", "in_shapes", "out_shape", "dtype", "esrc", "edst", "eshape",
                "groups", "group_cls", "group_parent")


def _shows_alike(a: _Iteration, b: _Iteration) -> bool:
    """Whether two iterations give the same graph view (then the view built for one serves the other)."""
    return all(getattr(a, name) == getattr(b, name) for name in _VIEW_FIELDS)


def _edge_keys(it: _Iteration) -> set[tuple[str, str]]:
    return {(it.keys[s], it.keys[d]) for s, d in zip(it.esrc, it.edst, strict=True)}


def _union(prev: _Iteration, cur: _Iteration) -> _Iteration:
    """prev's graph plus whatever cur added so far (while the running iteration departs from prev)."""
    out = _Iteration()
    out.groups, out.group_cls = list(prev.groups), list(prev.group_cls)
    out.group_path, out.group_parent = list(prev.group_path), list(prev.group_parent)
    out.group_at = list(prev.group_at)
    group_map, new_groups = {}, []
    for g, path in enumerate(cur.groups):
        if path in out.groups:
            group_map[g] = out.groups.index(path)
        else:
            group_map[g] = len(out.groups)
            new_groups.append(g)
            out.groups.append(path)
            out.group_path.append(cur.group_path[g])
            out.group_cls.append(cur.group_cls[g])
            out.group_parent.append(group_map.get(cur.group_parent[g], 0))
            out.group_at.append(np.inf)  # set below, from the node run next, once nodes have their order
    fields = ("keys", "kind", "label", "in_shapes", "out_shape", "dtype", "tensor")
    for name in fields:
        setattr(out, name, list(getattr(prev, name)))
    out.group = list(prev.group)
    out.order = list(range(len(prev.keys)))  # new nodes go right after the last known node before them
    anchor = -0.5
    for i, key in enumerate(cur.keys):
        j = prev.index.get(key)
        if j is not None:
            anchor = j
            for name in fields[1:]:
                getattr(out, name)[j] = getattr(cur, name)[i]
            continue
        anchor += 1e-3
        for name in fields:
            getattr(out, name).append(getattr(cur, name)[i])
        out.group.append(group_map[cur.group[i]])
        out.order.append(anchor)
    out.index = {k: i for i, k in enumerate(out.keys)}
    for g in new_groups:  # a new call began just before the node run next (or after all, none yet)
        after = int(cur.group_at[g] + 0.5)
        if after < len(cur.keys):
            out.group_at[group_map[g]] = out.order[out.index[cur.keys[after]]] - 1e-4
    pairs = set(zip(prev.esrc, prev.edst, strict=True))
    out.esrc, out.edst, out.eshape = list(prev.esrc), list(prev.edst), list(prev.eshape)
    for s, d, shape in zip(cur.esrc, cur.edst, cur.eshape, strict=True):
        if d < 0:
            continue
        s2, d2 = out.index[cur.keys[s]], out.index[cur.keys[d]]
        if (s2, d2) not in pairs:
            pairs.add((s2, d2))
            out.esrc.append(s2)
            out.edst.append(d2)
            out.eshape.append(shape)
    out.backward = []
    out.frames = {**prev.frames, **cur.frames}
    return out


def _module_name(path: str) -> str:
    """A collapsed module's label: the attribute it is held in ("block1"), as the script names it (its class is
    under it); a Sequential's or a ModuleList's child keeps its container's name ("features.3", not "3")."""
    parts = path.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def _build_view(it: _Iteration, collapsed: set[str], sources: dict[str, str], diff: StructureDiff | None,
                bw: _Iteration, buffers: set[str] = frozenset(), stacks: dict[str, tuple] | None = None) -> GraphView:
    """Contract collapsed modules into single nodes and lay the result out as arrays."""
    n_groups = len(it.groups)
    # rep[g]: the outermost collapsed module containing group g (itself included), or -1
    rep = [-1] * n_groups
    for g in range(1, n_groups):
        parent = it.group_parent[g]
        rep[g] = rep[parent] if rep[parent] >= 0 else (g if it.groups[g] in collapsed else -1)
    order_of = getattr(it, "order", None) or range(len(it.keys))
    keys, kind, label, sublabel, op, module, in_s, out_s, dtype, src, order, group = ([] for _ in range(12))
    caption: list[str] = []
    uses: dict[tuple, int] = {}  # inputs named so far, by (op, argument, source line)
    node_of: dict[str, int] = {}
    module_node: dict[int, int] = {}
    visible_group: dict[int, int] = {0: 0}  # structure group -> view group (expanded, visible groups)
    groups, group_cls, group_parent, group_at = [""], [""], [-1], [-np.inf]
    hidden = []
    for g in range(1, n_groups):
        if rep[g] < 0:
            visible_group[g] = len(groups)
            groups.append(it.groups[g])
            group_cls.append(it.group_cls[g])
            group_parent.append(visible_group[it.group_parent[g]])
            group_at.append(it.group_at[g])
        else:
            hidden.append((it.groups[g], it.group_cls[g], it.groups[it.group_parent[g]], float(it.group_at[g])))
    added = set(diff.added) if diff is not None else set()
    fan_of, fan_size = _fans(it, rep)
    assigned = _assigned_names(it, stacks) if stacks else {}
    models = root_names(_root_calls(it, stacks)) if stacks else {}
    node_rep = []
    for i, key in enumerate(it.keys):
        g = it.group[i]
        r = rep[g]
        first = fan_of.get(i)
        if first is not None and first != i:  # shown by the first op of its fan
            v = node_rep[first]
            node_of[key] = v
            node_rep.append(v)
            continue
        if r >= 0:
            v = module_node.get(r)
            if v is None:
                v = module_node[r] = len(keys)
                path = it.groups[r]
                keys.append(path)
                kind.append(MODULE)
                model = models.get(it.group_path[r])  # a model's own call: the name the script calls it by
                label.append(model + path[len(it.group_path[r]):] if model else _module_name(path))
                caption.append(label[-1])
                # a root is named by its class: "whole model" under it, not its class twice
                sublabel.append(it.group_cls[r] if it.group_cls[r] != label[-1] else "whole model")
                op.append(it.group_cls[r])
                module.append(path)
                in_s.append("")
                out_s.append("")
                dtype.append("")
                src.append("")
                order.append(order_of[i])
                group.append(visible_group[it.group_parent[r]])
            node_of[key] = v
            node_rep.append(v)
            if key in added:  # a collapsed module that ran something new is new too
                added.add(keys[v])
            continue
        v = len(keys)
        node_of[key] = v
        node_rep.append(v)
        keys.append(key)
        kind.append(it.kind[i])
        failed = key.endswith(":failed")  # the op that raised (app.script_io keys it so): no output, no name
        name = None if failed else assigned.get(i)
        if first is None:
            label.append(it.label[i])
            sublabel.append("raised" if failed else shape_text(it.out_shape[i]))  # not "scalar"
            if name:  # "q" over "split \u00b7 2x4x8"
                sublabel[-1] = f"{it.label[i]} \u00b7 {sublabel[-1]}"
        else:  # a fan's ops were assigned to names one by one, if at all: it reads as its op
            name = None
            label.append(f"{it.label[i]} \u00d7{fan_size[i]}")
            sublabel.append(f"each {shape_text(it.out_shape[i])}")
        caption.append(name or _caption(it, i, sources, uses))
        op.append(it.label[i] if it.kind[i] == OP else "buffer" if key in buffers else KIND_NAMES[it.kind[i]])
        module.append(it.groups[g])
        in_s.append(_shapes_text(it.in_shapes[i]))
        out_s.append(shape_text(it.out_shape[i]))
        dtype.append(it.dtype[i])
        src.append(sources.get(key, ""))
        order.append(order_of[i])
        group.append(visible_group[g])
    _number_alike(caption, kind)
    edges, edge_shape, seen = [], [], set()
    for s, d, shape in zip(it.esrc, it.edst, it.eshape, strict=True):
        if d < 0:
            continue
        a, b = node_rep[s], node_rep[d]
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            edges.append((a, b))
            edge_shape.append(shape_text(shape))
    edge_arr = np.array(edges, dtype=np.int32).reshape(-1, 2)
    signature = hash((tuple(keys), tuple(edges), tuple(groups), tuple(group_parent)))
    view = GraphView(signature, keys, np.array(kind, np.int8), label, sublabel, op, module, in_s, out_s,
                     dtype, src, np.array(order, float), np.array(group, np.int32), edge_arr, edge_shape,
                     groups, group_cls, np.array(group_parent, np.int32), node_of, np.zeros(0, np.int32),
                     np.zeros((0, 2), np.int32), np.array([k in added for k in keys], bool),
                     np.array(group_at, float), caption, models, hidden)
    view.backward, view.backward_edges = _backward_arrays(bw, view)
    return view


def _root_calls(it: _Iteration, stacks: dict[str, tuple]) -> list[tuple[str, object]]:
    """Each call of a model (a root module) in the iteration, in call order: (its path, the user frame that made
    the call, or None), for engine.debug.node_names.root_names."""
    n = len(it.groups)
    root = [0] * n
    for g in range(1, n):
        parent = it.group_parent[g]
        root[g] = g if parent == 0 else root[parent]
    ops: dict[int, list[int]] = {}
    for i, g in enumerate(it.group):
        if g and it.kind[i] == OP:
            ops.setdefault(root[g], []).append(i)
    calls = []
    for g in sorted(ops, key=it.group_at.__getitem__):
        if "." in it.group_path[g] or not it.group_cls[g]:
            continue  # a model's module called by itself, or ops under a path no module call made
        members = ops[g]
        ran = [stacks.get(it.keys[i], ()) for i in (members[0], members[len(members) // 2], members[-1])]
        calls.append((it.group_path[g], _call_site(ran)))
    return calls


def _call_site(stacks: list[tuple]) -> object | None:
    """The frame that made a module call, from the user frames some of its ops ran under (innermost first): the
    innermost one they all share, past the module's own forward (a one-line forward is shared too)."""
    first = stacks[0]
    shared = len(first)
    for other in stacks[1:]:
        n = 0
        while n < min(shared, len(other)) and first[len(first) - 1 - n] == other[len(other) - 1 - n]:
            n += 1
        shared = n
    return next((frame for frame in first[len(first) - shared:] if getattr(frame, "function", "") != "forward"),
                None)


def _caption(it: _Iteration, i: int, sources: dict[str, str], uses: dict[tuple, int]) -> str:
    """What node i's box reads (see GraphView.caption): a parameter's name in its module, an input's in
    the script (from its consumer's source line) where nothing named it. `uses` counts the inputs named so
    far by (op, argument, line): "X[idx], Y[idx]" names the first getitem's input X and the second's Y."""
    kind, label = it.kind[i], it.label[i]
    if kind == PARAM:
        return param_name(label, it.group_path[it.group[i]])
    if kind != INPUT or label != KIND_NAMES[INPUT]:
        return label
    consumer, _, arg = it.keys[i].rpartition("/in")
    op = engine_key(consumer).rpartition("/")[2].rpartition(":")[0]
    line = sources.get(consumer, "").partition("  ")[2]
    if not arg.isdigit():
        return label
    use = (op, arg, sources.get(consumer, ""))
    nth = uses[use] = uses.get(use, -1) + 1
    return input_name(op, int(arg), line, nth)


def _assigned_names(it: _Iteration, stacks: dict[str, tuple]) -> dict[int, str]:
    """Op node -> the name the script assigned its output to (engine.debug.node_names.op_names), from the
    source lines recorded for the iteration's ops: worked out once per view, never per event."""
    kinds, keys = it.kind, it.keys
    ops = [i for i in range(len(keys)) if kinds[i] == OP]
    order = getattr(it, "order", None)  # a union of two iterations: its nodes in the order they ran
    if order:
        ops.sort(key=order.__getitem__)
    position = np.full(len(keys) + 1, -1, np.int64)  # node -> its place in `ops`; the last: an unknown dst
    position[ops] = np.arange(len(ops))
    src, dst = position[np.asarray(it.esrc, np.int64)], position[np.asarray(it.edst, np.int64)]
    keep = (src >= 0) & (dst >= 0)
    by_dst = np.argsort(dst[keep], kind="stable")
    bounds = np.searchsorted(dst[keep][by_dst], np.arange(len(ops) + 1))
    inputs = _Reads(bounds.tolist(), src[keep][by_dst].tolist())
    calls: list[tuple[int, ...]] = [()]  # per module call: it and the calls around it, outermost first
    for g in range(1, len(it.groups)):
        calls.append((*calls[it.group_parent[g]], g))
    get, label, group = stacks.get, it.label, it.group
    names = op_names([label[i] for i in ops], [get(keys[i], ()) for i in ops], inputs,
                     [calls[group[i]] for i in ops])
    return {ops[p]: name for p, name in enumerate(names) if name}


class _Reads:
    """Per op, the ops whose outputs it read, as one flat list: 20k lists of two made the collector walk every
    object alive, which cost more than the naming did."""

    def __init__(self, bounds: list[int], flat: list[int]) -> None:
        self.bounds, self.flat = bounds, flat

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, i: int) -> list[int]:
        return self.flat[self.bounds[i]:self.bounds[i + 1]]


def _number_alike(caption: list[str], kind: list[int]) -> None:
    """Number the inputs that would read alike ("input 1", "input 2"), in place: two boxes read "input"."""
    inputs = [i for i, k in enumerate(kind) if k == INPUT]
    count: dict[str, int] = {}
    for i in inputs:
        count[caption[i]] = count.get(caption[i], 0) + 1
    seen: dict[str, int] = {}
    for i in inputs:
        name = caption[i]
        if count[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            caption[i] = f"{name} {seen[name]}"


def engine_key(name: str) -> str:
    """A node key or module call as the engine names it: without the graph's "#n" of a repeated call."""
    base, _, n = name.rpartition("#")
    return base if base and n.isdigit() else name


def breakpoint_marks(view: GraphView, specs) -> tuple[np.ndarray, np.ndarray]:
    """(visible nodes, visible module groups) that op and module breakpoints `specs` name. An op shows
    through the node that shows it (its fan, its collapsed module); a module breakpoint names every call
    of its path, as the engine matches it."""
    names_op, names_module = namer(specs, "op"), namer(specs, "module")
    nodes: set[int] = set()
    if names_op is not None:
        kinds = view.kind.tolist()
        for key, v in view.node_of.items():
            base = engine_key(key)
            tail = base.rpartition("/")[2]
            if ":" in tail and kinds[v] in (OP, MODULE) and names_op(tail.rpartition(":")[0], base):
                nodes.add(v)  # an op's key (a source's ends in "/in0")
    groups: list[int] = []
    if names_module is not None:
        groups = [g for g, name in enumerate(view.groups) if g and names_module(engine_key(name))]
        nodes.update(v for v in np.flatnonzero(view.kind == MODULE).tolist() if names_module(engine_key(view.keys[v])))
    return np.array(sorted(nodes), np.int64), np.array(groups, np.int64)


FAN_MIN = 12  # sibling ops drawn as one node from this many on
_FAN_WORDS = np.random.default_rng(12)


def _fans(it: _Iteration, rep: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Fans: at least FAN_MIN ops of one name in one visible module call, all reading the same nodes and
    feeding the same nodes ("[ids[s:s + 64] for s in starts]" stacked: 900 slices of one tensor). One node
    shows them all, so a layer is not 900 nodes wide; each op keeps its key, its values and its stops.
    Returns (node -> the first op of its fan, for every member; first op -> the fan's size)."""
    fan_of: dict[int, int] = {}
    sizes: dict[int, int] = {}
    n = len(it.keys)
    if n < FAN_MIN:
        return fan_of, sizes
    # a node's inputs, its consumers, its name and its module call as one 64-bit fingerprint: the XOR of a
    # random word per input and per consumer, mixed with random words for the name and the call
    src, dst = np.asarray(it.esrc, np.int64), np.asarray(it.edst, np.int64)
    pairs = np.unique(src[dst >= 0] * n + dst[dst >= 0])
    a, b = pairs // n, pairs % n
    names: dict[str, int] = {}
    name = np.fromiter((names.setdefault(x, len(names)) for x in it.label), np.int64, n)
    group = np.asarray(it.group, np.int64)
    words = _FAN_WORDS.integers(0, 1 << 63, (4, max(n, len(names), len(it.groups))), dtype=np.int64)
    sig = words[2, name] ^ words[3, group]
    np.bitwise_xor.at(sig, b, words[0, a])
    np.bitwise_xor.at(sig, a, words[1, b])
    candidate = (np.asarray(it.kind) == OP) & (np.asarray(rep, np.int64)[group] < 0)
    nodes = np.flatnonzero(candidate)
    _, inverse, counts = np.unique(sig[nodes], return_inverse=True, return_counts=True)
    big = counts[inverse] >= FAN_MIN
    fans: dict[int, list[int]] = {}
    for i, f in zip(nodes[big].tolist(), inverse[big].tolist()):
        fans.setdefault(f, []).append(i)
    for members in fans.values():
        first = members[0]
        if all(name[i] == name[first] and group[i] == group[first] for i in members):  # no hash collision
            sizes[first] = len(members)
            fan_of.update(dict.fromkeys(members, first))
    return fan_of, sizes


def _backward_arrays(it: _Iteration, view: GraphView) -> tuple[np.ndarray, np.ndarray]:
    """Visible nodes whose backward ran (in backward order), and gradient-flow edges between them."""
    seen, nodes = set(), []
    for idx in it.backward:
        v = view.node_of.get(it.keys[idx]) if idx < len(it.keys) else None
        if v is not None and v not in seen:
            seen.add(v)
            nodes.append(v)
    if not nodes or not len(view.edges):
        return np.array(nodes, np.int32), np.zeros((0, 2), np.int32)
    has = np.zeros(len(view), bool)
    has[nodes] = True
    e = view.edges
    flow = e[has[e[:, 0]] & has[e[:, 1]]][:, ::-1]  # gradients flow against the forward edges
    return np.array(nodes, np.int32), np.ascontiguousarray(flow)
