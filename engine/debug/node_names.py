"""What the graph's source nodes read in their boxes: an input by the name the script gave it, a parameter
by its name in the module box it sits in.

Two nodes labelled "input" (a batch's data and the loss's target) could not be told apart, and a parameter's
dotted path ("fc1.weight") did not fit its box: cut from the left it read "…ight", shortened where it did not
fit it read "weight" beside "out.bias".

    input_name("cross_entropy", 1, "loss = F.cross_entropy(logits, y)")   # "y"
    input_name("cross_entropy", 1, "")                                     # "target" (the argument's name)
    param_name("fc1.weight", "MLP.fc1")                                    # "weight"
"""

from __future__ import annotations

import ast
import functools
import inspect

import engine.nn.functional as F

# ops that a Python operator runs, by the operator's ast class
_OPERATORS = {"add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "div": ast.Div, "matmul": ast.MatMult,
              "pow": ast.Pow, "floordiv": ast.FloorDiv, "remainder": ast.Mod}
_COMPARISONS = {"eq": ast.Eq, "ne": ast.NotEq, "lt": ast.Lt, "le": ast.LtE, "gt": ast.Gt, "ge": ast.GtE}
LONGEST = 16  # characters: an argument written as a longer expression is not a name to show


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
