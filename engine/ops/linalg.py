"""Matrix products (matmul, mm, bmm, einsum), triangles and diagonals, and torch.linalg's decompositions.

Decompositions follow torch.linalg (cholesky, solve_triangular, solve, inv, det, slogdet, norms), batch over
leading dims and run on numpy or CuPy through the array module of the inputs. Backward formulas are the
standard ones (Murray 2016 for Cholesky; Giles 2008 for inverse, determinant and solve).
`LINALG` names what `engine.linalg` holds, as torch.linalg.
"""

from __future__ import annotations

import functools
import math
from collections import namedtuple

import numpy as np

from engine.autograd.function import Function, ShapeError, sum_to
from engine.backend import array_module, rows_gram, rows_matmul, to_host
from engine.tensor import Tensor

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # einsum's subscripts
SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])


class LinAlgError(RuntimeError):
    """A matrix that the asked decomposition does not exist for (singular, not positive-definite), as torch's."""


class Matmul(Function):
    promotes = True

    def forward(ctx, a, b):  # the shapes were checked by _check_product, under the name the person called
        # keep only what backward reads (as PyTorch): `y[0] = y[1] @ w` then changes nothing saved
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save(a if need_b else None, b if need_a else None)
        ctx.shapes = a.shape, b.shape
        return rows_matmul(a, b) if b.ndim == 2 else a @ b

    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        sa, sb = ctx.shapes
        if len(sa) == 1 and len(sb) == 1:
            return (grad * b if need_a else None), (grad * a if need_b else None)
        # 1-D operands take part as a (1, k) row or a (k, 1) column, whose dim leaves the result
        sa2, sb2 = ((1, *sa) if len(sa) == 1 else sa), ((*sb, 1) if len(sb) == 1 else sb)
        g2 = grad
        if len(sa) == 1:
            g2 = g2[..., None, :]
        if len(sb) == 1:
            g2 = g2[..., None]
        ga = gb = None
        if need_a:
            bt = b.reshape(sb2).swapaxes(-1, -2)
            ga = sum_to(rows_matmul(g2, bt) if bt.ndim == 2 else g2 @ bt, sa2).reshape(sa)
        if need_b:  # a weight matrix's gradient sums over every leading position: one product
            gb = (rows_gram(a.reshape(sa2), g2) if len(sb2) == 2
                  else sum_to(a.reshape(sa2).swapaxes(-1, -2) @ g2, sb2)).reshape(sb)
        return ga, gb


# the argument names of torch's products that run as Matmul, for the shape check they share
_PRODUCT_ARGS = {"matmul": ("input", "other"), "mm": ("input", "mat2"), "bmm": ("input", "mat2"),
                 "mv": ("input", "vec")}


def _check_product(op: str, a, b) -> None:
    """Raise a ShapeError naming `op` when a @ b has no inner dimension to sum over or its sizes differ."""
    first, second = _PRODUCT_ARGS[op]
    sa, sb = tuple(getattr(a, "shape", ())), tuple(getattr(b, "shape", ()))
    if not sa or not sb:
        raise ShapeError(f"{op}: both arguments need at least 1 dimension, but they are {len(sa)}-D and {len(sb)}-D")
    inner = 0 if len(sb) == 1 else len(sb) - 2  # the dim of b that a's last dim is summed against
    if sa[-1] != sb[inner]:
        shown = "x".join(map(str, sa)), "x".join(map(str, sb))
        raise ShapeError(f"{op}: {first} and {second} shapes cannot be multiplied ({shown[0]} and {shown[1]}): "
                         f"{first}'s last dim has size {sa[-1]} but {second}'s dim {inner} has size {sb[inner]}")
    ba, bb = sa[:-2], sb[:-2]  # the batch dims, which broadcast against each other
    for k, (x, y) in enumerate(zip(reversed(ba), reversed(bb)), 1):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"{op}: the batch dims of {first} {sa} and {second} {sb} do not broadcast: size {x} "
                             f"against {y} at batch dim -{k}")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D operands and broadcast batch dimensions."""
    _check_product("matmul", a, b)
    return Matmul.apply(a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """The inner product of two 1-D tensors of one size (torch.dot)."""
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ShapeError(f"dot: expected two 1-D tensors of the same size, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return Matmul.apply(a, b)


def mv(a: Tensor, v: Tensor) -> Tensor:
    """A matrix times a vector (torch.mv)."""
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D matrix and a 1-D vector, got {tuple(a.shape)} and {tuple(v.shape)}")
    _check_product("mv", a, v)
    return Matmul.apply(a, v)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Product of two matrices (2-D only, as torch.mm)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: both arguments must be 2-D, got {tuple(a.shape)} and {tuple(b.shape)}; "
                         "use matmul for other ranks")
    _check_product("mm", a, b)
    return Matmul.apply(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of (B, n, m) and (B, m, p) tensors, without broadcasting (as torch.bmm)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expected two 3-D tensors with the same batch size, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}; use matmul to broadcast")
    _check_product("bmm", a, b)
    return Matmul.apply(a, b)


class Triangle(Function):
    """The lower (tril) or upper (triu) triangle of the last two dims, from `ctx.diagonal` on; zeros elsewhere."""

    def forward(ctx, x):
        if x.ndim < 2:
            raise ShapeError(f"{ctx.op}: input must have at least 2 dimensions, got {tuple(x.shape)}")
        return getattr(array_module(x), ctx.op)(x, ctx.diagonal)

    def backward(ctx, grad):
        return getattr(array_module(grad), ctx.op)(grad, ctx.diagonal)


class Tril(Triangle):
    pass


class Triu(Triangle):
    pass


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """x with the entries above the `diagonal`-th diagonal set to zero."""
    return Tril.apply(x, diagonal=diagonal)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """x with the entries below the `diagonal`-th diagonal set to zero."""
    return Triu.apply(x, diagonal=diagonal)


class Einsum(Function):
    """Einstein summation over explicit subscripts; each operand's gradient is another einsum."""

    promotes = True

    def forward(ctx, *operands):
        ctx.save(*operands)
        return array_module(operands[0]).einsum(ctx.equation, *operands)

    def backward(ctx, grad):
        operands, inputs, output = ctx.saved, ctx.inputs, ctx.output
        xp = array_module(grad)
        grads = []
        for i, (need, x) in enumerate(zip(ctx.needs_input_grad, operands)):
            if not need:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(inputs) if j != i]
            # letters that only x had were summed away: they come back by broadcasting
            kept = "".join(c for c in inputs[i] if c in output or any(c in s for s in others))
            spec = ",".join([output, *others]) + "->" + kept
            g = xp.einsum(spec, grad, *[o for j, o in enumerate(operands) if j != i])
            # a dim of size 1 that broadcast against the others' n sums back to 1; one of size n that the others'
            # size 1 broadcast against has size 1 in g, and broadcasts back (as do the letters summed away)
            g = sum_to(g, tuple(x.shape[k] for k, c in enumerate(inputs[i]) if c in kept))
            size = dict(zip(kept, g.shape))
            grads.append(xp.broadcast_to(g.reshape([size.get(c, 1) for c in inputs[i]]), x.shape))
        return tuple(grads)


def _expand_ellipsis(inputs: list[str], output: str | None, operands) -> tuple[list[str], str | None]:
    """Subscripts with '...' replaced by letters no operand uses, right-aligned as broadcasting aligns them."""
    for s in inputs + ([output] if output else []):
        if s.count("...") > 1 or s.replace("...", "").count("."):
            raise ValueError(f"einsum: {s!r} has a '.' that is not part of one '...'")
    used = set("".join(inputs) + (output or ""))
    spare = [c for c in _LETTERS if c not in used]
    widths = [x.ndim - (len(s) - 3) for s, x in zip(inputs, operands) if "..." in s]
    if any(w < 0 for w in widths):
        raise ShapeError(f"einsum: an operand has fewer dimensions than its subscripts {inputs} name")
    letters = "".join(spare[:max(widths, default=0)])
    inputs = [s.replace("...", letters[len(letters) - (x.ndim - len(s) + 3):]) if "..." in s else s
              for s, x in zip(inputs, operands)]
    if output is not None:
        output = output.replace("...", letters)
    else:  # implicit output: the broadcast dims (if '...' covers any) first, then the letters seen once
        rest = "".join(inputs)
        output = letters + "".join(sorted(c for c in set(rest) if c not in letters and rest.count(c) == 1))
    return inputs, output


def _take_diagonals(s: str, x: Tensor) -> tuple[str, Tensor]:
    """Subscripts and operand with an index that `s` repeats ("bii") kept once, over the diagonal of its dims
    ("bi"), as torch reads it; a view, so the gradient comes from diagonal's own."""
    for c in dict.fromkeys(s):
        while s.count(c) > 1:
            first = s.index(c)
            second = s.index(c, first + 1)
            x = diagonal(x, 0, first, second)
            s = s[:first] + s[first + 1:second] + s[second + 1:] + c
    return s, x


def _sublist_letters(sublist, k: int) -> str:
    """Subscripts given as a list of ints in [0, 52) and Ellipsis (einsum's sublist form) as letters: 0-25 are
    'A'-'Z' and 26-51 'a'-'z', torch's order, so an implicit output sorts as the ints do."""
    letters = []
    for i in sublist:
        if i is Ellipsis:
            letters.append("...")
        elif isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 52:
            letters.append(chr(ord("A") + i) if i < 26 else chr(ord("a") + i - 26))
        else:
            raise ValueError(f"einsum: subscript {i!r} in sublist {k} is not an int in [0, 52) or Ellipsis")
    return "".join(letters)


def _from_sublists(args: tuple) -> tuple[str, tuple]:
    """(equation, operands) of einsum(op0, sublist0, op1, sublist1, ..., [output sublist])."""
    operands, inputs = args[0::2], args[1::2]
    if len(inputs) < len(operands):  # an odd count: the last one is the output's sublist
        operands, output = operands[:-1], args[-1]
    else:
        output = None
    for k, (x, sub) in enumerate(zip(operands, inputs)):
        if not isinstance(x, Tensor) or not isinstance(sub, list | tuple):
            raise TypeError(f"einsum: argument {2 * k} must be a tensor and argument {2 * k + 1} its sublist of "
                            f"subscripts, got {type(x).__name__} and {type(sub).__name__}")
    equation = ",".join(_sublist_letters(sub, k) for k, sub in enumerate(inputs))
    if output is not None:
        if not isinstance(output, list | tuple):
            raise TypeError(f"einsum: the output sublist must be a list, got {type(output).__name__}")
        equation += "->" + _sublist_letters(output, len(inputs))
    return equation, operands


def einsum(equation: str, *operands) -> Tensor:
    """Sum of products over the indices an equation names, as torch.einsum ("ij,jk->ik", "...ij,...jk"), or in
    the sublist form einsum(a, [0, 1], b, [1, 2], [0, 2])."""
    if isinstance(equation, Tensor):
        equation, operands = _from_sublists((equation, *operands))
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    inputs, arrow, output = eq.partition("->")
    inputs = inputs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(inputs)} operands, but {len(operands)} were given")
    if "." in eq:
        inputs, output = _expand_ellipsis(inputs, output if arrow else None, operands)
        arrow = "->"
    if not arrow:  # implicit output: the letters seen once, in alphabetical order (numpy's and torch's rule)
        output = "".join(sorted(c for c in set(eq) if c != "," and eq.count(c) == 1))
    twice = [c for c in dict.fromkeys(output) if output.count(c) > 1]
    if twice:
        raise ValueError(f"einsum: output subscript {twice[0]!r} appears more than once in {output!r}; einsum reads "
                         "a diagonal but does not write one (use diag_embed)")
    for k, (s, x) in enumerate(zip(inputs, operands)):
        if len(s) != x.ndim:
            raise ShapeError(f"einsum: subscripts {s!r} name {len(s)} dimensions, but the operand has shape "
                             f"{tuple(x.shape)}")
        for c in dict.fromkeys(s):  # within one operand a repeated index does not broadcast: its sizes must agree
            repeated = [n for d, n in zip(s, x.shape) if d == c]
            if len(set(repeated)) > 1:
                raise ShapeError(f"einsum: subscript {c!r} is repeated in operand {k} ({s!r}) but its sizes differ: "
                                 f"{' != '.join(map(str, repeated))} (shape {tuple(x.shape)})")
    sizes = {}
    for k, (s, x) in enumerate(zip(inputs, operands)):
        for c, n in zip(s, x.shape):
            if sizes.setdefault(c, (n, k))[0] not in (n, 1) and n != 1:
                raise ShapeError(f"einsum: subscript {c!r} has size {n} in operand {k} (shape {tuple(x.shape)}) "
                                 f"but size {sizes[c][0]} in operand {sizes[c][1]}")
            if sizes[c][0] == 1:
                sizes[c] = (n, k)
    operands = list(operands)
    for k, s in enumerate(inputs):
        inputs[k], operands[k] = _take_diagonals(s, operands[k])
    return Einsum.apply(*operands, equation=f"{','.join(inputs)}->{output}", inputs=inputs, output=output)


class Outer(Function):
    """The outer product a[:, None] * b[None, :] of two vectors."""

    promotes = True

    def forward(ctx, a, b):
        ctx.save(a, b)
        return a[:, None] * b[None, :]

    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (grad @ b if need_a else None), (a @ grad if need_b else None)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two 1-D tensors, shape (n, m), as torch.outer."""
    for name, v in (("self", input), ("vec2", vec2)):
        if v.ndim != 1:
            raise ShapeError(f"outer: Expected 1-D argument {name}, but got {v.ndim}-D (shapes "
                             f"{tuple(input.shape)} and {tuple(vec2.shape)})")
    return Outer.apply(input, vec2)


class Addmm(Function):
    """beta * input + alpha * (mat1 @ mat2) as one op; input broadcasts to the product's shape."""

    promotes = True

    def forward(ctx, x, m1, m2):
        need = ctx.needs_input_grad or (False, False, False)
        ctx.save(m1 if need[2] else None, m2 if need[1] else None)
        product = m1 @ m2
        if ctx.alpha != 1:
            product = product * ctx.alpha
        if ctx.beta == 0:  # as in PyTorch, input is then ignored: its NaN and inf do not propagate
            return product
        return product + (x if ctx.beta == 1 else x * ctx.beta)

    def backward(ctx, grad):
        m1, m2 = ctx.saved
        need_x, need_1, need_2 = ctx.needs_input_grad
        scaled = grad if ctx.alpha == 1 else grad * ctx.alpha
        return ((grad * ctx.beta if need_x else None),
                (scaled @ m2.T if need_1 else None),
                (m1.T @ scaled if need_2 else None))


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), for matrices mat1 (n, m) and mat2 (m, p), as torch.addmm."""
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if m.ndim != 2:
            raise ShapeError(f"addmm: {name} must be a matrix, got {m.ndim}-D tensor (shapes {tuple(mat1.shape)} "
                             f"and {tuple(mat2.shape)})")
    if mat1.shape[1] != mat2.shape[0]:
        raise ShapeError(f"addmm: mat1 and mat2 shapes cannot be multiplied "
                         f"({mat1.shape[0]}x{mat1.shape[1]} and {mat2.shape[0]}x{mat2.shape[1]})")
    out = (mat1.shape[0], mat2.shape[1])
    shape = tuple(input.shape)
    if len(shape) > 2 or any(s not in (1, o) for s, o in zip(shape[::-1], out[::-1])):
        raise ShapeError(f"addmm: input of shape {shape} does not broadcast to the product's shape {out}")
    return Addmm.apply(input, mat1, mat2, beta=beta, alpha=alpha)


# ---- diagonals ---------------------------------------------------------------------------------------------
def _diagonal_length(n_rows: int, n_cols: int, offset: int) -> int:
    """How many elements the `offset`-th diagonal of an (n_rows, n_cols) matrix has."""
    return max(0, min(n_rows + min(offset, 0), n_cols - max(offset, 0)))


def _diagonal_index(n_rows: int, n_cols: int, offset: int):
    """Row and column indices of the `offset`-th diagonal of an (n_rows, n_cols) matrix."""
    rows = np.arange(_diagonal_length(n_rows, n_cols, offset)) - min(offset, 0)
    return rows, rows + offset


def _embed(xp, values, shape, offset: int, dim1: int, dim2: int):
    """Zeros of `shape` with `values` (diagonal last) on the `offset`-th diagonal of dims dim1 and dim2."""
    out = xp.zeros(shape, dtype=values.dtype)
    plane = xp.moveaxis(out, (dim1, dim2), (-2, -1))  # a view: writing it writes out
    rows, cols = _diagonal_index(plane.shape[-2], plane.shape[-1], offset)
    plane[..., rows, cols] = values
    return out


def _diagonal_view(xp, x, offset: int, dim1: int, dim2: int):
    """The `offset`-th diagonal of dims dim1 and dim2 as a new last dim: a writable view of x's memory."""
    plane = xp.moveaxis(x, (dim1, dim2), (-2, -1))
    rows, cols = plane.shape[-2:]
    length = _diagonal_length(rows, cols, offset)
    corner = plane[..., min(max(-offset, 0), rows):, min(max(offset, 0), cols):]  # starts at the first element
    step = plane.strides[-2] + plane.strides[-1]
    # numpy's own diagonal is a read-only view; as_strided gives one that in-place ops can write through
    return xp.lib.stride_tricks.as_strided(corner, (*corner.shape[:-2], length), (*corner.strides[:-2], step))


class Diagonal(Function):
    """The `offset`-th diagonal of dims dim1 and dim2, as a new last dim: a view, as in torch."""

    view = True

    def forward(ctx, x):
        return _diagonal_view(array_module(x), x, ctx.offset, ctx.dim1, ctx.dim2)

    def backward(ctx, grad):
        return _embed(array_module(grad), grad, ctx.shape, ctx.offset, ctx.dim1, ctx.dim2)


class Diag(Diagonal):
    """torch.diag of a matrix: its diagonal, as a copy (torch.diag does not make a view)."""

    view = False

    def forward(ctx, x):
        return _diagonal_view(array_module(x), x, ctx.offset, ctx.dim1, ctx.dim2).copy()


class DiagEmbed(Function):
    """Matrices whose `offset`-th diagonal (in output dims dim1, dim2) holds the input's last dim."""

    op = "diag_embed"

    def forward(ctx, x):
        return _embed(array_module(x), x, ctx.shape, ctx.offset, ctx.dim1, ctx.dim2)

    def backward(ctx, grad):
        return array_module(grad).diagonal(grad, ctx.offset, ctx.dim1, ctx.dim2)


def _two_dims(op: str, ndim: int, dim1: int, dim2: int) -> tuple[int, int]:
    for d in (dim1, dim2):
        if not -ndim <= d < ndim:
            raise IndexError(f"{op}: dimension {d} is out of range for a {ndim}-D tensor")
    dim1, dim2 = dim1 % ndim, dim2 % ndim
    if dim1 == dim2:
        raise ValueError(f"{op}: diagonal dimensions cannot be identical {dim1}, {dim2}")
    return dim1, dim2


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The `offset`-th diagonal over dims dim1 and dim2, appended as the last dim, as torch.diagonal."""
    dim1, dim2 = _two_dims("diagonal", input.ndim, dim1, dim2)
    return Diagonal.apply(input, offset=int(offset), dim1=dim1, dim2=dim2, shape=input.shape)


def linalg_diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonal of each matrix in A (its last two dims by default), as torch.linalg.diagonal."""
    return diagonal(A, offset, dim1, dim2)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices with the last dim of `input` on their `offset`-th diagonal, as torch.diag_embed."""
    ndim = input.ndim + 1
    dim1, dim2 = _two_dims("diag_embed", ndim, dim1, dim2)
    n = (input.shape[-1] if input.ndim else 1) + abs(int(offset))
    rest = iter(input.shape[:-1])
    shape = tuple(n if d in (dim1, dim2) else next(rest) for d in range(ndim))
    return DiagEmbed.apply(input if input.ndim else input.reshape(1), offset=int(offset), dim1=dim1, dim2=dim2,
                           shape=shape)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A square matrix with `input` (1-D) on its diagonal, or the diagonal of `input` (2-D), as torch.diag."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return Diag.apply(input, offset=int(diagonal), dim1=0, dim2=1, shape=input.shape)
    raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")


# ---- decompositions and solves -----------------------------------------------------------------------------
def _t(a):
    return a.swapaxes(-1, -2)


def _solve(xp, a, b):
    """a^-1 b for stacks of square a and matrices b whose batch dims broadcast."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return xp.linalg.solve(xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]))


def _square(op: str, A: Tensor, name: str = "A") -> None:
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        shown = f"{A.shape[-2]} by {A.shape[-1]} matrices" if A.ndim >= 2 else f"a {A.ndim}-D tensor"
        raise ShapeError(f"{op}: {name} must be batches of square matrices, but got {shown} "
                         f"(shape {tuple(A.shape)})")
    if not A.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be a floating point tensor, got {A.dtype.name}")


def _checked(op: str, xp, fn, *arrays, what: str = "singular"):
    """fn(*arrays), with numpy's LinAlgError and CuPy's silent NaN or inf turned into one LinAlgError."""
    try:
        out = fn(*arrays)
    except np.linalg.LinAlgError as err:
        raise LinAlgError(f"{op}: the input matrix is {what} ({err})") from None
    if xp is not np and not bool(xp.isfinite(out).all()) and bool(xp.isfinite(arrays[0]).all()):
        raise LinAlgError(f"{op}: the input matrix is {what}")
    return out


def failing_minors(a) -> np.ndarray:
    """Per matrix of the stack `a`, the order of its first leading minor that is not positive-definite, 0 where
    there is none (torch's `info`): a bisection over the minors, on the host (they are positive-definite up to
    some order and not past it)."""
    host = to_host(a)
    n = host.shape[-1]
    mats = host.reshape(-1, n, n)
    info = np.zeros(len(mats), np.int32)
    for i, m in enumerate(mats):
        if _positive_definite(m):
            continue
        lo, hi = 1, n  # the order n minor (m itself) fails
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if _positive_definite(m[:mid, :mid]) else (lo, mid)
        info[i] = lo
    return info.reshape(host.shape[:-2])


def _positive_definite(m) -> bool:
    try:
        return bool(np.isfinite(np.linalg.cholesky(m)).all())
    except np.linalg.LinAlgError:
        return False


def not_positive_definite(op: str, info: np.ndarray) -> LinAlgError:
    """torch's error for the first matrix whose factorization stopped at a leading minor."""
    first = int(np.flatnonzero(info.reshape(-1))[0])
    where = f"(Batch element {first}): " if info.ndim else ""
    return LinAlgError(f"{op}: {where}The factorization could not be completed because the input is not "
                       f"positive-definite (the leading minor of order {int(info.reshape(-1)[first])} is not "
                       "positive-definite).")


class Cholesky(Function):
    """L with L L^T = A, L lower triangular, for a symmetric positive-definite A."""

    def forward(ctx, a):
        xp = array_module(a)
        try:
            low = xp.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            low = None
        if low is None or not bool(xp.isfinite(low).all()):  # numpy raises; CuPy fills NaN
            raise not_positive_definite("linalg.cholesky", failing_minors(a))
        ctx.save(low)
        return low

    def backward(ctx, grad):
        (low,) = ctx.saved
        xp = array_module(grad)
        phi = xp.tril(_t(low) @ grad)
        phi = phi - 0.5 * xp.eye(low.shape[-1], dtype=low.dtype) * phi  # halve the diagonal
        inner = _solve(xp, _t(low), phi)          # L^-T phi
        s = _t(_solve(xp, _t(low), _t(inner)))    # L^-T phi L^-1
        return 0.5 * (s + _t(s))


class SolveTriangular(Function):
    """X with A X = B for a triangular A (lower unless `upper`); only A's triangle is read, and with
    `unitriangular` not its diagonal either (taken as ones)."""

    op = "solve_triangular"

    def forward(ctx, a, b):
        xp = array_module(a)
        a = _triangle(xp, a, ctx.upper, ctx.unitriangular)
        x = _checked(ctx.op, xp, functools.partial(_solve, xp), a, b)
        ctx.save(a, x)
        return x

    def backward(ctx, grad):
        a, x = ctx.saved
        xp = array_module(grad)
        gb = _solve(xp, _t(a), grad)
        ga = None
        if ctx.needs_input_grad[0]:
            ga = -gb @ _t(x)
            ga = xp.triu(ga, int(ctx.unitriangular)) if ctx.upper else xp.tril(ga, -int(ctx.unitriangular))
        return ga, gb


def _triangle(xp, a, upper: bool, unit: bool):
    """The upper or lower triangle of a, with ones on the diagonal if `unit`."""
    if not unit:
        return xp.triu(a) if upper else xp.tril(a)
    eye = xp.eye(a.shape[-1], dtype=a.dtype)
    return (xp.triu(a, 1) if upper else xp.tril(a, -1)) + eye


class Solve(Function):
    """X with A X = B (B's batch dims broadcast against A's); B may be a (batch of) vectors."""

    promotes = True

    def forward(ctx, a, b):
        xp = array_module(a)
        b2 = b[..., None] if ctx.vector else b
        x = _checked("linalg.solve", xp, functools.partial(_solve, xp), a, b2)
        ctx.save(a, x)
        return x[..., 0] if ctx.vector else x

    def backward(ctx, grad):
        a, x = ctx.saved
        xp = array_module(grad)
        g2 = grad[..., None] if ctx.vector else grad
        gb = _solve(xp, _t(a), g2)
        ga = -gb @ _t(x) if ctx.needs_input_grad[0] else None
        return ga, (gb[..., 0] if ctx.vector else gb)


class Inverse(Function):
    """A^-1 for each square matrix A; the gradient is -A^-T G A^-T."""

    def forward(ctx, a):
        xp = array_module(a)
        y = _checked("linalg.inv", xp, xp.linalg.inv, a)
        ctx.save(y)
        return y

    def backward(ctx, grad):
        (y,) = ctx.saved
        return -_t(y) @ grad @ _t(y)


class Det(Function):
    """det(A); the gradient is G adj(A)^T, taken from the SVD so that singular matrices get one too."""

    def forward(ctx, a):
        ctx.save(a)
        return array_module(a).linalg.det(a)

    def backward(ctx, grad):
        (a,) = ctx.saved
        xp = array_module(grad)
        u, s, vh = xp.linalg.svd(a)
        # adj(A) = det(U) det(V) V diag(prod of the other singular values) U^T: no division by a zero s
        n = s.shape[-1]
        before = xp.cumprod(xp.concatenate([xp.ones_like(s[..., :1]), s[..., :-1]], -1), -1)
        after = xp.flip(xp.cumprod(xp.concatenate([xp.ones_like(s[..., :1]), xp.flip(s[..., 1:], -1)], -1), -1), -1)
        others = before * after if n else s
        sign = xp.linalg.det(u) * xp.linalg.det(vh)
        adjugate = sign[..., None, None] * (_t(vh) * others[..., None, :]) @ _t(u)
        return grad[..., None, None] * _t(adjugate)


class LogAbsDet(Function):
    """log|det A| (the sign goes to ctx.box); with `signed`, NaN where det < 0 (torch.logdet)."""

    op = "slogdet"

    def forward(ctx, a):
        xp = array_module(a)
        sign, logabs = xp.linalg.slogdet(a)
        ctx.box["sign"] = sign
        ctx.save(a)
        return xp.where(sign < 0, math.nan, logabs) if ctx.signed else logabs

    def backward(ctx, grad):
        (a,) = ctx.saved
        xp = array_module(grad)
        inverse = _checked(ctx.op, xp, xp.linalg.inv, a)
        return grad[..., None, None] * _t(inverse)


class SvdVals(Function):
    """The singular values of each matrix, largest first; the gradient is U diag(G) V^T."""

    def forward(ctx, a):
        u, s, vh = array_module(a).linalg.svd(a, full_matrices=False)
        ctx.save(u, vh, s)
        return s

    def backward(ctx, grad):
        u, vh, _ = ctx.saved
        return (u * grad[..., None, :]) @ vh


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """The lower (or upper) Cholesky factor of each symmetric positive-definite matrix, as torch.linalg.cholesky."""
    _square("linalg.cholesky", input)
    low = Cholesky.apply(input)
    return low.mT if upper else low


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True,
                     unitriangular: bool = False) -> Tensor:
    """X with A X = B (or X A = B if not `left`) for triangular A, as torch.linalg.solve_triangular."""
    op = "linalg.solve_triangular"
    _square(op, A)
    if B.ndim < 2:
        raise ShapeError(f"{op}: The input tensor B must have at least 2 dimensions, got shape {tuple(B.shape)}")
    if B.dtype != A.dtype:
        raise TypeError(f"{op}: Expected A and B to have the same dtype, but found A of type {A.dtype.name} and B "
                        f"of type {B.dtype.name} instead")
    n, rows, cols = A.shape[-1], B.shape[-2], B.shape[-1]
    if (rows if left else cols) != n:
        raise ShapeError(f"{op}: Incompatible shapes of A and B for the equation {'AX' if left else 'XA'} = B "
                         f"({n}x{n} and {rows}x{cols})")
    if not left:  # X A = B is A^T X^T = B^T, and A^T is triangular on the other side
        return SolveTriangular.apply(A.mT, B.mT, upper=not upper, unitriangular=bool(unitriangular)).mT
    return SolveTriangular.apply(A, B, upper=bool(upper), unitriangular=bool(unitriangular))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with A X = B, as torch.linalg.solve; B is (*, n) (vectors) or (*, n, k)."""
    _square("linalg.solve", A)
    if not left:
        raise NotImplementedError("linalg.solve: left=False is not supported by the engine; solve A^T X^T = B^T")
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    rows = B.shape[-1] if vector else (B.shape[-2] if B.ndim >= 2 else None)
    if rows != A.shape[-1]:
        raise ShapeError(f"linalg.solve: incompatible shapes of A {tuple(A.shape)} and B {tuple(B.shape)}: B needs "
                         f"{A.shape[-1]} rows")
    return Solve.apply(A, B, vector=vector)


def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix in A, as torch.linalg.inv; a singular one raises LinAlgError."""
    _square("linalg.inv", A)
    return Inverse.apply(A)


def det(A: Tensor) -> Tensor:
    """The determinant of each square matrix in A, as torch.linalg.det."""
    _square("linalg.det", A)
    return Det.apply(A)


def slogdet(A: Tensor) -> SlogdetResult:
    """(sign, log|det|) of each square matrix in A, as torch.linalg.slogdet; only logabsdet has a gradient."""
    _square("linalg.slogdet", A)
    box = {}
    logabs = LogAbsDet.apply(A, box=box, signed=False)
    return SlogdetResult(Tensor._wrap(box["sign"]), logabs)


def logdet(A: Tensor) -> Tensor:
    """log det A: NaN where det < 0 and -inf where it is 0, as torch.logdet."""
    _square("logdet", A)
    return LogAbsDet.apply(A, box={}, signed=True, op="logdet")


def svdvals(A: Tensor) -> Tensor:
    """The singular values of each matrix in A, in descending order, as torch.linalg.svdvals."""
    if A.ndim < 2:
        raise ShapeError(f"linalg.svdvals: A must have at least 2 dimensions, got shape {tuple(A.shape)}")
    return SvdVals.apply(A)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The vector ord-norm over `dim` (every element by default), as torch.linalg.vector_norm."""
    from engine.ops.reduce import norm as _norm

    if dtype is not None:
        x = x.to(dtype)
    return _norm(x, ord, dim, keepdim)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """The matrix norm over the two dims `dim`: 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, as torch.linalg.matrix_norm."""
    if A.ndim < 2:
        raise ShapeError(f"linalg.matrix_norm: A must have at least 2 dimensions, got shape {tuple(A.shape)}")
    if not isinstance(dim, tuple | list) or len(dim) != 2:
        raise ValueError(f"linalg.matrix_norm: dim must be a 2-tuple of ints, got {dim!r}")
    if dtype is not None:
        A = A.to(dtype)
    rows, cols = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(A.movedim((rows, cols), (-2, -1)))
        out = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
    elif ord in (1, -1, math.inf, -math.inf):
        summed, across = (rows, cols) if ord in (1, -1) else (cols, rows)  # 1: largest column sum; inf: row
        sums = A.abs().sum(summed, keepdim=True)
        out = sums.amax(across, keepdim=True) if ord > 0 else sums.amin(across, keepdim=True)
        return out if keepdim else out.squeeze((rows, cols))
    else:
        raise ValueError(f"linalg.matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got {ord!r}")
    if keepdim:
        out = out.unsqueeze(min(rows, cols)).unsqueeze(max(rows, cols))
    return out


def linalg_norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """A vector or a matrix norm, chosen as torch.linalg.norm chooses: by `dim`, else by A's number of dims."""
    if isinstance(dim, int):
        dim = (dim,)
    if (dim is not None and len(dim) == 2) or (dim is None and ord is not None and A.ndim == 2):
        return matrix_norm(A, "fro" if ord is None else ord, tuple(dim or (-2, -1)), keepdim, dtype=dtype)
    if ord is not None and dim is None and A.ndim != 1:
        raise ShapeError(f"linalg.norm: with ord={ord!r} and no dim, A must be 1-D or 2-D, got shape "
                         f"{tuple(A.shape)}")
    if isinstance(ord, str):
        raise ValueError(f"linalg.norm: ord={ord!r} is a matrix norm: pass a 2-D A or a 2-tuple dim")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


# what engine.linalg holds (torch.linalg's names)
LINALG = {
    "cholesky": cholesky, "solve_triangular": solve_triangular, "solve": solve, "inv": inv, "det": det,
    "slogdet": slogdet, "svdvals": svdvals, "norm": linalg_norm, "vector_norm": vector_norm,
    "matrix_norm": matrix_norm, "diagonal": linalg_diagonal, "matmul": matmul, "LinAlgError": LinAlgError,
    # and cross, vander, lu_factor, lu, lu_solve: engine/ops/linalg_more.py adds them (it imports this file)
}
