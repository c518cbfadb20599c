"""The in-place modification error, with the lines that saved the tensor and changed it; and the error of a
backward through a graph already freed, with the op whose graph it was.

An op that needs a tensor in its backward keeps the tensor's version; an in-place write bumps it, and backward
then refuses the stale tensor. PyTorch's message names only the backward node. Here, while anybody listens to
the hub (a debugger, a recorder, anomaly mode), each in-place write notes its version counter, the version it
made, the id its value took and the user line that wrote it (WRITES of them are kept), and in anomaly mode each
op's line is kept by event seq (FORWARDS of them), so the error can say: the output of sigmoid at line 6,
changed in place by `h += 1` at line 7. A debugger also fills in the op's line from its own records
(engine.debug.Debugger.explain_failure) and turns the error into an alert.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from engine.events import hub

WRITES = 4096
FORWARDS = 65536

# id(version counter) -> (counter, version made, written id, Site)
_writes: OrderedDict = OrderedDict()
_forwards: OrderedDict = OrderedDict()  # forward event seq -> Site (anomaly mode only)


class Site(NamedTuple):
    """Where something ran: the user's line (an engine.debug.SourceFrame, or None) and the module path."""

    frame: object
    module: str

    def __str__(self) -> str:
        inside = f" in {self.module}" if self.module else ""
        frame = self.frame
        if frame is None:
            return inside.strip()
        text = f" (`{frame.text}`)" if frame.text else ""
        return f"{inside.strip()} at {frame.file}:{frame.line}{text}".strip()


def _site(module: str) -> Site:
    from engine.debug.source import capture  # (only while somebody listens: engine.debug loads then)

    return Site(capture(2)[0], module)


def note_write(tensor) -> None:
    """`tensor` was just written in place (its version counter bumped): keep where, while anybody listens."""
    vc = tensor._vc
    _writes[id(vc)] = (vc, vc[0], tensor._id, _site(hub.module_path))  # the counter kept alive: its id stays its own
    _writes.move_to_end(id(vc))
    if len(_writes) > WRITES:
        _writes.popitem(last=False)


def note_forward(event) -> None:
    """Anomaly mode: keep the user line of a forward op's event, for the error of its backward."""
    _forwards[event.seq] = _site(event.module)
    if len(_forwards) > FORWARDS:
        _forwards.popitem(last=False)


def forget() -> None:
    """Drop what was kept (anomaly mode turned off, a test's clean start)."""
    _writes.clear()
    _forwards.clear()


class InplaceModifiedError(RuntimeError):
    """A tensor that a backward node saved was changed in place before backward used it.

    node: the backward node's name (SigmoidBackward0); op: its forward op; saved: "the output" or "input i";
    forward_seq: the op's event seq (0 if nobody listened); written_id: the id the tensor took at the write
    (0 if unknown); op_site / write_site: the Site of each, when known."""

    def __init__(self, node: str, op: str, saved: str, version: int, expected: int, forward_seq: int = 0,
                 written_id: int = 0, op_site: Site | None = None, write_site: Site | None = None) -> None:
        self.node, self.op, self.saved = node, op, saved
        self.version, self.expected = version, expected
        self.forward_seq, self.written_id = forward_seq, written_id
        self.op_site, self.write_site = op_site, write_site
        super().__init__(self.describe())

    def describe(self) -> str:
        """The message, with whatever lines are known so far (explain_failure may add the op's)."""
        head = (f"one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"{self.saved} of {self.op}, saved by {self.node}, is at version {self.version}; expected version "
                f"{self.expected} instead.")
        made = f" by {self.op} {self.op_site}" if self.op_site is not None else ""
        if self.write_site is not None:
            where = f" It was changed in place {self.write_site} after it was saved{made}."
        elif made:
            where = f" It was saved{made}."
        else:
            where = (" engine.autograd.set_detect_anomaly(True), or running under tapescope, names the line that "
                     "saved it and the line that changed it.")
        return (f"{head}{where} Hint: clone() the tensor before changing it in place, or change it out of place "
                "(x = x + y rather than x += y; inplace=False on a ReLU)")

    def __str__(self) -> str:
        return self.describe()


def saved_changed(node, vc, version: int, role: int) -> InplaceModifiedError:
    """The error for backward node `node`, whose saved tensor (input `role`, or -1: its output) with version
    counter `vc` is no longer at `version`."""
    seq = node.__dict__.get("_event_seq", 0)
    write = _writes.get(id(vc))
    written_id, write_site = (write[2], write[3]) if write is not None and write[0] is vc else (0, None)
    saved = "the output" if role < 0 else f"input {role}"
    return InplaceModifiedError(node.name(), node.op, saved, vc[0], version, seq, written_id,
                                _forwards.get(seq) if seq else None, write_site)



class FreedGraphError(RuntimeError):
    """backward() reached a node whose saved tensors an earlier backward() freed: most often a tensor carried over
    from an earlier iteration (an RNN's hidden state) that still links to that iteration's graph.

    node: the backward node's name; op: its forward op; forward_seq: the op's event seq (0 if nobody listened);
    op_site: the op's Site when known (a debugger's explain_failure fills it in), iteration: the op's (-1: unknown)."""

    def __init__(self, node: str, op: str, forward_seq: int = 0) -> None:
        self.node, self.op, self.forward_seq = node, op, forward_seq
        self.op_site: Site | None = None
        self.iteration = -1
        super().__init__(self.describe())

    def describe(self) -> str:
        made = ""
        if self.op_site is not None:
            made = f" The graph is the one {self.op} {self.op_site} made" + \
                (f" in iteration {self.iteration}." if self.iteration >= 0 else ".")
        return (f"Trying to backward through the graph a second time ({self.node}'s saved tensors were already freed "
                f"by an earlier backward()).{made} A tensor kept from an earlier iteration (an RNN's hidden state "
                "carried across batches, a running total of losses) still links to that graph: detach it (h = "
                "h.detach()) before the next batch uses it. retain_graph=True on the first backward() is for going "
                "through one graph twice, and would keep every earlier batch's graph alive")

    def __str__(self) -> str:
        return self.describe()


def freed(node) -> FreedGraphError:
    """The error for backward node `node`, whose saved tensors were freed."""
    return FreedGraphError(node.name(), node.op, node.__dict__.get("_event_seq", 0))
