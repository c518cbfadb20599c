"""The op whose forward raised, found in the exception's traceback as the OpEvent it never emitted.

An op that raises (a linear fed the wrong number of features) emits no event, so neither a live view nor a
tape would show the op that ended the run; its Function.apply frame, still on the traceback, names the op
and holds its inputs. The app marks it in the graph, and a recorder writes it to the tape, from here.
"""

from __future__ import annotations

from typing import NamedTuple

from engine.autograd.function import Function
from engine.events import OpEvent, next_seq
from engine.nn.module import Module
from engine.tensor import Tensor

_APPLY = Function.apply.__func__.__code__
_MODULE_CALL = Module.__call__.__code__


class RaisedOp(NamedTuple):
    """The op that raised: its OpEvent (made after the fact: output 0, a stable key ending in ":failed") and
    how many module calls enclosed it."""

    event: OpEvent
    depth: int


def raised_op(err: BaseException) -> RaisedOp | None:
    """The innermost engine op on `err`'s traceback, as the event it would have emitted; None where no op
    raised it (the script's own `raise`, an error in backward; Ctrl-C or a Stop, which land in whatever op runs)."""
    if not isinstance(err, Exception):
        return None
    apply_frame, module, calls = None, "", 0
    tb = err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code is _APPLY:
            apply_frame = tb.tb_frame
        elif code is _MODULE_CALL:
            module = tb.tb_frame.f_locals.get("path", module)
            calls += 1
        tb = tb.tb_next
    if apply_frame is None:
        return None
    cls = apply_frame.f_locals.get("cls")
    if not isinstance(cls, type) or not issubclass(cls, Function):
        return None
    tensors = [a for a in apply_frame.f_locals.get("args", ()) if isinstance(a, Tensor)]
    key = f"{module}/{cls.op}:failed" if module else f"{cls.op}:failed"
    dtype = tensors[0].dtype.name if tensors else ""
    device = str(tensors[0].device) if tensors else ""
    event = OpEvent(next_seq(), cls.op, key, module, tuple(t.id for t in tensors), 0,
                    tuple(tuple(t.shape) for t in tensors), (), dtype, device, False)
    return RaisedOp(event, calls)


def error_line(err: BaseException) -> str:
    """`err` in one line, as the app and a tape name a failure: 'ShapeError: linear: input has 5 features ...'."""
    # a SyntaxError's str() ends in "(file, line N)": its place is given apart, as file and line
    said = err.msg if isinstance(err, SyntaxError) and err.msg else str(err)
    message = f"{type(err).__name__}: {said}" if said else type(err).__name__
    return message.splitlines()[0]
