"""What the graph's source nodes read in their boxes: an input by the name the script gave it, a parameter
by its name in the module box it sits in.

Two nodes labelled "input" (a batch's data and the loss's target) could not be told apart, and a parameter's
dotted path ("fc1.weight") did not fit its box: cut from the left it read "…ight", shortened where it did not
fit it read "weight" beside "out.bias".

    input_name("cross_entropy", 1, "loss = F.cross_entropy(logits, y)")   # "y"
    input_name("cross_entropy", 1, "")                                     # "target" (the argument's name)
    param_name("fc1.weight", "MLP.fc1")                                    # "weight"

A model (a root module) reads as the name the script calls it by: `fake = G(z)` names G, `D(real)` names D, where
the engine numbers two Sequentials "Sequential" and "Sequential_2" (`root_names`); `script_named` names a key, a path
or a breakpoint pattern so ("D.0/linear:0"), and `engine_named` takes it back.

An op reads as the name the script assigns its output to: `q, k, v = qkv.chunk(3, dim=-1)` names its three
split ops q, k and v; `scores = q @ k.transpose(-2, -1) / s` names the div (the op whose output the name
receives), not the transpose or the matmul; `h = self.fc(x)` names the module's last op. `op_names` decides
this for a whole iteration when the graph is built, from the source lines the debugger already records:
nothing is done per op while the script runs.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import keyword
import re
from collections.abc import Hashable, Sequence

import engine.nn.functional as F

# ops that a Python operator runs, by the operator's ast class
_OPERATORS = {"add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "div": ast.Div, "matmul": ast.MatMult,
              "pow": ast.Pow, "floordiv": ast.FloorDiv, "remainder": ast.Mod}
_COMPARISONS = {"eq": ast.Eq, "ne": ast.NotEq, "lt": ast.Lt, "le": ast.LtE, "gt": ast.Gt, "ge": ast.GtE}
LONGEST = 16  # characters: an argument written as a longer expression is not a name to show
_ROOT = re.compile(r"[^.#/*?\[]+(?=$|[.#/])")  # a key's model: "Sequential_2" of "Sequential_2#1.0/linear:0"


@functools.lru_cache(maxsize=1024)
def input_name(op: str, arg: int, line: str, nth: int = 0) -> str:
    """The name of the tensor a script passed as argument `arg` of `op` on source line `line` (a variable,
    "batch.x"), else the name of that argument in engine.nn.functional (cross_entropy's "target"), else
    "input". `nth`: which run of `op` on the line this is ("xb, yb = X[idx], Y[idx]": 0 for X, 1 for Y)."""
    written = _written(op, arg, line.strip(), nth)
    if written:
        return written
    fn = getattr(F, op, None)
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)] if callable(fn) else []
    except (TypeError, ValueError):  # a builtin without a signature
        names = []
    return names[arg] if arg < len(names) else "input"


def param_name(label: str, module: str) -> str:
    """A parameter's name in the box of module call `module` ("MLP.fc1"): "weight" for "fc1.weight" (the
    model's path drops its root's name); a parameter of another module (a tied weight) keeps its path."""
    parts = module.split(".")
    for start in range(len(parts)):
        prefix = ".".join(parts[start:]) + "."
        if label.startswith(prefix) and len(label) > len(prefix):
            return label[len(prefix):]
    return label


def _written(op: str, arg: int, line: str, nth: int = 0) -> str:
    """The expression passed as argument `arg` of the `nth` use of `op` on `line` (counted round again for a
    line that runs more than once), where it is a short name; else ''."""
    tree = _parse(line)
    if tree is None:
        return ""
    uses = sorted((node for node in ast.walk(tree) if _short(_argument(node, op, arg))),
                  key=lambda node: (node.lineno, node.col_offset))  # left to right, as the line runs them
    return _short(_argument(uses[nth % len(uses)], op, arg)) if uses else ""


def _argument(node: ast.AST, op: str, arg: int) -> ast.AST | None:
    """The expression `node` passes as argument `arg` when it is a use of `op` (a call, an operator or an
    index: x[i] runs getitem); else None."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == op:
            args = node.args
            if isinstance(func, ast.Attribute) and not _is_module_path(func.value):
                args = [func.value, *args]  # x.view(...): the tensor is the first argument
            return args[arg] if arg < len(args) else None
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS.get(op, ())) and arg < 2:
        return (node.left, node.right)[arg]
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and arg < 2 \
            and isinstance(node.ops[0], _COMPARISONS.get(op, ())):
        return (node.left, node.comparators[0])[arg]
    elif isinstance(node, ast.Subscript) and op == "getitem" and arg < 2 and isinstance(node.ctx, ast.Load):
        return (node.value, node.slice)[arg]
    return None


def _parse(line: str) -> ast.AST | None:
    """The line as Python, also where it opens a block ("for x, y in zip(a, b):") or is an `elif`."""
    for text in (line, line + " pass", line.removeprefix("el") + " pass"):
        try:
            return ast.parse(text)
        except SyntaxError:
            continue
    return None


def _is_module_path(node: ast.AST) -> bool:
    """F in F.cross_entropy, torch.nn.functional in torch.nn.functional.relu: a module, not a tensor."""
    if isinstance(node, ast.Name):
        return node.id in ("F", "torch", "engine", "nn", "functional")
    return isinstance(node, ast.Attribute) and _is_module_path(node.value)


def _short(node: ast.AST | None) -> str:
    """A name or a dotted attribute of one ("batch.x"), short enough for a node's box; else ''."""
    if isinstance(node, ast.Name) or (isinstance(node, ast.Attribute) and _dotted(node)):
        text = ast.unparse(node)
        return text if len(text) <= LONGEST else ""
    return ""


def _dotted(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) or (isinstance(node, ast.Attribute) and _dotted(node.value))


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda, ast.NamedExpr)


@functools.lru_cache(maxsize=4096)
def assigned(line: str) -> tuple[tuple[str, ...], bool] | None:
    """The plain local names source line `line` assigns ("q, k, v = ...": ("q", "k", "v")), and whether its
    value reads one of them (`h = f(h)`: a loop may run the line again on its own output); None for anything
    else: an attribute or an item (`self.cache = x`, `out[i] = y`), several assignments, a comprehension."""
    try:
        body = ast.parse(line.strip()).body
    except SyntaxError:  # a line of a statement written over several lines
        return None
    if len(body) != 1:
        return None
    stmt = body[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, reads = stmt.targets[0], False
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        target, reads = stmt.target, False
    elif isinstance(stmt, ast.AugAssign):  # total += loss reads total
        target, reads = stmt.target, True
    else:
        return None
    elements = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
    if not elements or not all(isinstance(e, ast.Name) for e in elements):
        return None
    names = tuple(e.id for e in elements)
    nodes = list(ast.walk(stmt.value))
    if any(isinstance(node, _COMPREHENSIONS) for node in nodes):
        return None
    reads = reads or any(isinstance(node, ast.Name) and node.id in names for node in nodes)
    return names, reads


def op_names(ops: Sequence[str], stacks: Sequence[tuple], inputs: Sequence[Sequence[int]],
             calls: Sequence[tuple[Hashable, ...]]) -> list[str]:
    """Per op of one iteration, in the order they ran, the name the script assigned its output to, else "".

    Per op: `ops` its name ("split"), `stacks` the user frames it ran under (anything with .text), innermost
    first, as the debugger's records hold them, `inputs` the earlier ops (indices here) whose outputs it read,
    `calls` the module calls around it, outermost first, each a value of its own.

    A line's run: the ops that ran under it, one after another, until an op of another line ran (at the
    line's depth in the stack, so a module or helper it calls belongs to it). The assignment receives the
    last op of the run; tuple unpacking its last ops, one per name in order, where nothing in the run read
    them (the outputs of a chunk, a split, an unbind). A loop that runs one line again and again runs it as
    one long run: see _executions. Where two lines name one op (`return self.fc2(h)` inside
    `logits = model(x)`), the innermost wins."""
    n = len(ops)
    names = [""] * n
    first: dict[Hashable, int] = {}
    last: dict[Hashable, int] = {}
    for i, around in enumerate(calls):
        for call in around:
            first.setdefault(call, i)
            last[call] = i
    starts: list[int] = []  # where the run of each frame of `prev` (counted from the outermost) began
    prev: tuple = ()
    for i in range(n + 1):
        new = stacks[i] if i < n else ()
        lp, ln = len(prev), len(new)
        same = 0
        if new is prev:
            same = lp
        else:  # frames shared from the outermost in
            most = min(lp, ln)
            while same < most:
                a, b = prev[lp - 1 - same], new[ln - 1 - same]
                if a is not b and a != b:
                    break
                same += 1
        for depth in range(lp - 1, same - 1, -1):  # innermost first: it names first
            made = assigned(getattr(prev[lp - 1 - depth], "text", ""))
            if made is not None:
                start = starts[depth]
                inside = {call for j in range(start, i) for call in calls[j] if first[call] >= start and last[call] < i}
                for a, b in _executions(ops, inputs, calls, start, i, made, inside):
                    for j, name in zip(_outputs(inputs, a, b, len(made[0])), made[0], strict=False):
                        names[j] = names[j] or name
        del starts[same:]
        starts.extend([i] * (ln - same))
        prev = new
    return names


def _executions(ops: Sequence[str], inputs: Sequence[Sequence[int]], calls: Sequence[tuple], start: int,
                stop: int, made: tuple[tuple[str, ...], bool], inside: set) -> list[tuple[int, int]]:
    """The run ops[start:stop] of one line cut into the times the line ran: into the fewest equal parts that
    run the same ops where each part uses an earlier part's work only through the names the line assigns
    (`attn = attn * 2` in a loop: every mul is one time; `x = a * (b * c)`: both muls are one) and no module
    call the line made spans two parts. One part where nothing else fits."""
    n = stop - start
    targets, reads = made
    for p in range(1, n):
        if n % p or any(ops[i] != ops[i - p] for i in range(start + p, stop)):
            continue
        if any(inside.intersection(calls[c - 1], calls[c]) for c in range(start + p, stop, p)):
            continue
        outputs = [_outputs(inputs, a, a + p, len(targets)) for a in range(start, stop, p)]
        if len(targets) > 1 and any(len(out) != len(targets) for out in outputs):
            continue
        named = {j for out in outputs for j in out}
        if all(j >= a or (reads and j in named)  # an earlier time's work, read through an assigned name
               for a in range(start + p, stop, p) for i in range(a, a + p) for j in inputs[i] if j >= start):
            return [(a, a + p) for a in range(start, stop, p)]
    return [(start, stop)]


def _outputs(inputs: Sequence[Sequence[int]], start: int, stop: int, count: int) -> list[int]:
    """The ops of one time a line ran (start to stop) whose outputs its `count` names receive: the last op
    for one name; for several (q, k, v = qkv.chunk(3)), the last `count` ops, where nothing there read them."""
    if count == 1:
        return [stop - 1]
    last = range(max(stop - count, start), stop)
    if len(last) < count or any(j in last for i in range(start, stop) for j in inputs[i]):
        return []
    return list(last)


# a callee on a source line: a plain name or one of self's attributes, not an attribute of anything else (torch.ones)
_CALLEE = re.compile(r"(?<![\w.])((?:self\.)?[A-Za-z_]\w*)\s*\(")
_NOT_MODULES = frozenset(dir(builtins)) | frozenset(keyword.kwlist)


def root_names(calls: Sequence[tuple[str, object]]) -> dict[str, str]:
    """Per model (root module path, "Sequential_2"), the name the script calls it by ("D"), else nothing.

    `calls`: each call of a root module in one iteration, in call order, as (its path without the graph's "#n",
    the user frame that made the call: anything with .text, or None). The calls one line made one after another
    are named by the callees on the line in the order they ran (`criterion(model(x), y)`: model, then criterion);
    a line whose callees and calls do not pair up names none of them, nor does a name given to two models (a loop
    over `for m in models`): those keep their paths."""
    found: dict[str, str] = {}
    paths_of: dict[str, set[str]] = {}
    i = 0
    while i < len(calls):
        frame = calls[i][1]
        j = i + 1
        while j < len(calls) and frame is not None and calls[j][1] == frame:
            j += 1
        if frame is not None:
            paths = [path for path, _ in calls[i:j]]
            names = _callees(getattr(frame, "text", ""))
            if len(names) == len(paths):
                pairs = zip(paths, names, strict=True)
            elif len(set(names)) == 1 and len(set(paths)) == 1:  # one model called again and again (a loop)
                pairs = [(paths[0], names[0])]
            else:
                pairs = []
            for path, name in pairs:
                found.setdefault(path, name)
                paths_of.setdefault(name, set()).add(path)
        i = j
    return {path: name for path, name in found.items() if len(paths_of[name]) == 1}


def _callees(line: str) -> list[str]:
    """The names `line` calls (`self.` dropped), in the order the calls end: inner calls before the call around
    them, as Python runs them."""
    code = line.split("#", 1)[0]
    ends = []
    for match in _CALLEE.finditer(code):
        name = match.group(1)
        if name in _NOT_MODULES:
            continue
        depth, end = 0, len(code) + match.start()  # not closed on this line: after everything that is
        for k in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[k], 0)
            if depth == 0:
                end = k
                break
        ends.append((end, name.removeprefix("self.")))
    return [name for _, name in sorted(ends)]


def script_named(text: str, models: dict[str, str]) -> str:
    """A node key, module path or breakpoint pattern with its model named as the graph names it: "D.0/linear:0" for
    "Sequential_2.0/linear:0", "D#1.0" for "Sequential_2#1.0"; `text` itself where the script's name is not known."""
    root = _ROOT.match(text)
    name = models.get(root.group(0)) if root else None
    return name + text[root.end():] if name else text


def engine_named(text: str, models: dict[str, str]) -> str:
    """What script_named made `text` from: "Sequential_2.0/linear:0" for "D.0/linear:0" (a breakpoint typed with the
    script's names matches the engine's keys)."""
    return script_named(text, {name: path for path, name in models.items()})
