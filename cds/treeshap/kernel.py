"""The compiled TreeSHAP kernel: every block of a :class:`~.compiled.CompiledPlan` read per record.

Importing this module imports numba (about half a second) and compiles, or loads from numba's
cache in ``__pycache__``, the one kernel; :func:`cds.treeshap.compiled.load_kernel` does it
lazily, on the first explanation that needs it, and never on ``import cds``. The arithmetic is
the numpy engine's (:mod:`.program`), per record instead of per array: a unit's bits (each the
AND of its conditions) packed into a table row index, a byte block's row added to its features,
a quadrature block's chunk rows multiplied node by node. No temporaries: a record costs its
table reads and multiply-adds, and the GIL is released so threads explain row shares in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def _explain(go_left: np.ndarray, out: np.ndarray, blocks: np.ndarray, units: np.ndarray,
             bit_conds: np.ndarray, cond_node: np.ndarray, cond_left: np.ndarray,
             features: np.ndarray, values: np.ndarray) -> None:  # pragma: no cover - compiled
    """Add every block's contributions of the (nodes, rows) ``go_left`` to ``out`` (features, rows).

    Long: one loop nest the compiler sees whole (blocks, units, bits, nodes, then records
    innermost: contiguous, branch-free, vectorised); split into functions, numba inlines them
    back or pays a call per unit.
    """
    rows = go_left.shape[1]
    width = 1
    for b in range(blocks.shape[0]):
        width = max(width, blocks[b, 1] - blocks[b, 0])
    row = np.empty((width, rows), np.int64)  # each unit's table row offset, per record
    weight = np.empty((width, rows))
    on = np.empty(rows, np.int64)
    for b in range(blocks.shape[0]):
        first, stop, nodes = blocks[b, 0], blocks[b, 1], blocks[b, 2]
        m = stop - first
        for c in range(m):
            u = first + c
            for r in range(rows):
                row[c, r] = 0
            for bit in range(units[u, 0], units[u, 1]):
                for r in range(rows):
                    on[r] = 1
                for k in range(bit_conds[bit], bit_conds[bit + 1]):
                    node, left = cond_node[k], cond_left[k]
                    for r in range(rows):
                        on[r] &= go_left[node, r] == left
                shift = bit - units[u, 0]
                for r in range(rows):
                    row[c, r] |= on[r] << shift
            offset, size = units[u, 2], units[u, 3]
            for r in range(rows):
                row[c, r] = offset + row[c, r] * size
        if nodes == 0:  # a byte block: one row of exact contributions
            f0 = units[first, 4]
            for i in range(units[first, 3]):
                f = features[f0 + i]
                for r in range(rows):
                    out[f, r] += values[row[0, r] + i]
            continue
        # quadrature, node by node: chunk c's columns weigh by the other chunks' products (the
        # subtree, last, carries the Gauss-Legendre weights); exclusive products, no division
        for q in range(nodes):
            if m == 1:
                for r in range(rows):
                    weight[0, r] = 1.0
            else:
                for r in range(rows):
                    weight[m - 1, r] = 1.0
                for c in range(m - 1):
                    for r in range(rows):
                        weight[c, r] = values[row[m - 1, r] + q]
                for c in range(m - 1):
                    for r in range(rows):
                        product = values[row[c, r] + q]
                        weight[m - 1, r] *= product
                        for d in range(m - 1):
                            if d != c:
                                weight[d, r] *= product
            for c in range(m):
                u = first + c
                f0 = units[u, 4]
                for i in range(units[u, 3] // nodes - 1):
                    f = features[f0 + i]
                    column = nodes * (i + 1) + q
                    for r in range(rows):
                        out[f, r] += values[row[c, r] + column] * weight[c, r]


def _jit(function: Callable[..., Any]) -> Callable[..., Any]:
    """``njit(cache=True, nogil=True)``; without a writable cache directory, compiled per process."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


explain = _jit(_explain)
