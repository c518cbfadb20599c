"""LU factorization of CuPy arrays through cuBLAS and cuSOLVER, and row permutations from pivots in one launch.

The engine's own factorization (engine/ops/linalg_more.py) works a column at a time with a dozen small array
operations per column: on a GPU each is a kernel launch, so a 512x512 matrix took 0.7 s where the libraries'
getrf takes milliseconds. Both follow LAPACK's getrf (1-based pivots, the largest magnitude in the column
first, a zero pivot left in place), so the two paths give the same factors up to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np

BATCHED_MAX = 64  # cuBLAS's batched getrf (one launch for a whole stack) suits small matrices; above, cuSOLVER's
_PERMUTE = None


def factor(xp, a, pivot: bool):
    """(packed LU, 1-based int32 pivots, row permutation) of each (m, n) matrix of CuPy array `a`, or None where
    the libraries have no routine for it (float16, a wide or tall matrix without pivoting)."""
    if a.dtype not in (np.float32, np.float64) or a.size == 0:
        return None
    *batch, m, n = a.shape
    stack = a.reshape(-1, m, n)
    if m == n and (n <= BATCHED_MAX or not pivot):
        lu, piv = _batched(xp, stack, pivot)
    elif pivot:
        lu, piv = _one_by_one(xp, stack)
    else:
        return None
    k = min(m, n)
    return lu.reshape(a.shape), piv.reshape(*batch, k), permutation(xp, piv, m).reshape(*batch, m)


def _batched(xp, stack, pivot: bool):
    """cuBLAS <t>getrfBatched over the stack of square matrices (no pivoting when not `pivot`)."""
    from cupy.cuda import device
    from cupy_backends.cuda.libs import cublas

    count, n, _ = stack.shape
    work = stack.transpose(0, 2, 1).copy()  # cuBLAS reads column-major: each matrix's transpose, row-major
    size = n * n * work.itemsize
    pointers = xp.arange(work.data.ptr, work.data.ptr + count * size, size, dtype=np.uintp)
    piv = xp.empty((count, n), np.int32)
    info = xp.empty(count, np.int32)
    getrf = cublas.sgetrfBatched if work.dtype == np.float32 else cublas.dgetrfBatched
    getrf(device.get_cublas_handle(), n, pointers.data.ptr, n, piv.data.ptr if pivot else 0, info.data.ptr, count)
    if not pivot:
        piv[...] = xp.arange(1, n + 1, dtype=np.int32)
    return xp.ascontiguousarray(work.transpose(0, 2, 1)), piv


def _one_by_one(xp, stack):
    """cuSOLVER's getrf (through cupyx.scipy.linalg.lu_factor) on each matrix of the stack."""
    from cupyx.scipy.linalg import lu_factor

    count, m, n = stack.shape
    lu = xp.empty_like(stack)
    piv = xp.empty((count, min(m, n)), np.int32)
    with warnings.catch_warnings():  # a singular matrix: the caller decides what to say about it
        warnings.simplefilter("ignore")
        for i in range(count):
            lu[i], piv_i = lu_factor(stack[i], check_finite=False)
            piv[i] = piv_i + 1  # SciPy's pivots count from 0, LAPACK's and torch's from 1
    return lu, piv


def permutation(xp, piv, m: int):
    """The row permutation (int64, per matrix) that swapping row j with row piv[j] - 1, j = 0, 1, ..., makes,
    for a (count, k) stack of 1-based pivots: one kernel on the GPU, k vectorized swaps on the CPU."""
    count, k = piv.shape
    perm = xp.broadcast_to(xp.arange(m), (count, m)).copy()
    if xp is np:
        rows = np.arange(count)
        for j in range(k):
            swap_rows(perm, rows, j, piv[:, j] - 1)
        return perm
    global _PERMUTE
    if _PERMUTE is None:
        _PERMUTE = xp.ElementwiseKernel(
            "raw int32 piv, int64 k, int64 m", "raw int64 perm",
            """
            for (long long j = 0; j < k; ++j) {
                long long p = piv[i * k + j] - 1;
                long long held = perm[i * m + j];
                perm[i * m + j] = perm[i * m + p];
                perm[i * m + p] = held;
            }
            """, "tapescope_lu_permutation")
    _PERMUTE(xp.ascontiguousarray(piv), k, m, perm, size=count)
    return perm


def swap_rows(a, rows, j: int, p) -> None:
    """Swap, in place, row j of each matrix b in `a` with its row p[b] (entries, for a stack of vectors)."""
    held = a[rows, j].copy()
    a[rows, j] = a[rows, p]
    a[rows, p] = held
