"""Matrix products (matmul, mm, bmm, einsum) and triangles (tril, triu)."""

from __future__ import annotations

from engine.autograd.function import Function, ShapeError, sum_to
from engine.backend import array_module
from engine.tensor import Tensor


class Matmul(Function):
    promotes = True

    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError("matmul: both arguments need at least 1 dimension, got a 0-d tensor")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ShapeError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied ({k_a} != {k_b})"
            )
        # keep only what backward reads (as PyTorch): `y[0] = y[1] @ w` then changes nothing saved
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save(a if need_b else None, b if need_a else None)
        ctx.shapes = a.shape, b.shape
        return a @ b

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
            ga = sum_to(g2 @ b.reshape(sb2).swapaxes(-1, -2), sa2).reshape(sa)
        if need_b:
            gb = sum_to(a.reshape(sa2).swapaxes(-1, -2) @ g2, sb2).reshape(sb)
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D operands and broadcast batch dimensions."""
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
    return Matmul.apply(a, v)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Product of two matrices (2-D only, as torch.mm)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: both arguments must be 2-D, got {tuple(a.shape)} and {tuple(b.shape)}; "
                         "use matmul for other ranks")
    return Matmul.apply(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of (B, n, m) and (B, m, p) tensors, without broadcasting (as torch.bmm)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expected two 3-D tensors with the same batch size, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}; use matmul to broadcast")
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
            g = g.reshape([x.shape[k] if c in kept else 1 for k, c in enumerate(inputs[i])])
            grads.append(xp.broadcast_to(g, x.shape))
        return tuple(grads)


def einsum(equation: str, *operands) -> Tensor:
    """Sum of products over the indices an equation names, as torch.einsum ("ij,jk->ik")."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "." in eq:
        raise NotImplementedError(f"einsum: '...' in {equation!r} is not supported by the engine; "
                                  "name every dimension with a letter")
    inputs, arrow, output = eq.partition("->")
    inputs = inputs.split(",")
    if not arrow:  # implicit output: the letters seen once, in alphabetical order (numpy's and torch's rule)
        output = "".join(sorted(c for c in set(eq) if c != "," and eq.count(c) == 1))
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(inputs)} operands, but {len(operands)} were given")
    for s, x in zip(inputs, operands):
        if len(s) != x.ndim:
            raise ShapeError(f"einsum: subscripts {s!r} name {len(s)} dimensions, but the operand has shape "
                             f"{tuple(x.shape)}")
        if len(set(s)) != len(s):
            raise NotImplementedError(f"einsum: a repeated index within one operand ({s!r}, a diagonal) is not "
                                      "supported by the engine; take the diagonal first")
    sizes = {}
    for k, (s, x) in enumerate(zip(inputs, operands)):
        for c, n in zip(s, x.shape):
            if sizes.setdefault(c, (n, k))[0] not in (n, 1) and n != 1:
                raise ShapeError(f"einsum: subscript {c!r} has size {n} in operand {k} (shape {tuple(x.shape)}) "
                                 f"but size {sizes[c][0]} in operand {sizes[c][1]}")
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
