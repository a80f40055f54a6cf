"""The plan's blocks laid out for the compiled kernel (:mod:`.kernel`), and the kernel's lazy loading.

The numpy engine (:mod:`.program`) reads tables column by column for whole arrays of records;
the kernel reads them record by record, so here each unit's table is stored row-major (one
record reads one contiguous row: a byte block's contributions, or a quadrature chunk's ``q``
products then ``q`` columns per feature) and the block structure is kept as small integer
arrays the kernel walks. Building this needs numpy only; numba is imported when the kernel is
first needed (:func:`load_kernel`), so ``import cds`` never loads it.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .plan import Block, ByteBlock, Unit

Kernel = Callable[..., None]
"""``kernel(go_left, out, *CompiledPlan.arrays())``."""

_lock = threading.Lock()
_kernel: list[Kernel | None] = []


def numba_available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def load_kernel() -> Kernel | None:
    """The compiled kernel, imported and compiled (or loaded from numba's cache) once per process
    and run once on an empty plan, so a compile failure shows here; None when numba is missing
    or fails (the numpy engine then explains)."""
    with _lock:
        if not _kernel:
            try:
                from .kernel import explain

                empty = CompiledPlan([], np.zeros(0, np.intp))  # compiles the one signature now
                explain(np.zeros((1, 1), np.bool_), np.zeros((1, 1)), *empty.arrays())
            except Exception:  # numba missing, or an LLVM/compile failure: numpy explains
                _kernel.append(None)
            else:
                _kernel.append(explain)
        return _kernel[0]


class CompiledPlan:
    """Every block of a model as the kernel's flat arrays (see the module docstring).

    ``blocks[b]`` = (first unit, stop unit, quadrature nodes or 0 for a byte block);
    ``units[u]`` = (first bit, stop bit, table offset, row width, first feature);
    bit ``k``'s conditions are ``bit_conds[k]:bit_conds[k + 1]`` of (``cond_node``: row of the
    "goes left" matrix, ``cond_left``: the value it must have).
    """

    def __init__(self, blocks: list[Block], rank: np.ndarray) -> None:
        block_rows: list[tuple[int, int, int]] = []
        unit_rows: list[tuple[int, int, int, int, int]] = []
        bit_conds = [0]
        cond_node: list[int] = []
        cond_left: list[bool] = []
        features: list[int] = []
        tables: list[np.ndarray] = []
        offset = 0
        for block in blocks:
            if isinstance(block, ByteBlock):
                members: list[tuple[Unit, list[int]]] = [(block.unit, block.features)]
                nodes = 0
            else:
                members = list(zip(block.units, block.features, strict=True))
                nodes = block.n_nodes
            block_rows.append((len(unit_rows), len(unit_rows) + len(members), nodes))
            for unit, unit_features in members:
                table = np.stack(unit.columns, axis=1)  # (2 ** bits, width), row-major
                unit_rows.append((len(bit_conds) - 1, len(bit_conds) - 1 + len(unit.bits), offset,
                                  table.shape[1], len(features)))
                for conds in unit.bits:
                    cond_node.extend(node for node, _ in conds)
                    cond_left.extend(left for _, left in conds)
                    bit_conds.append(len(cond_node))
                features.extend(unit_features)
                tables.append(table.ravel())
                offset += table.size
        self.blocks = np.array(block_rows, np.int64).reshape(-1, 3)
        self.units = np.array(unit_rows, np.int64).reshape(-1, 5)
        self.bit_conds = np.array(bit_conds, np.int64)
        node = np.array(cond_node, np.intp)
        self.cond_node = (rank[node] if rank.size else node).astype(np.int64)
        self.cond_left = np.array(cond_left, np.bool_)
        self.features = np.array(features, np.int64)
        self.values = np.concatenate(tables) if tables else np.zeros(1)
        self.reads_per_row = max(1, int(self.units[:, 3].sum()))
        """Table values a record reads (every unit's row width)."""

    @property
    def nbytes(self) -> int:
        """Memory of the tables and the arrays that describe them."""
        return sum(a.nbytes for a in self.arrays())

    def arrays(self) -> tuple[Any, ...]:
        """The kernel's arguments after ``go_left`` and ``out``."""
        return (self.blocks, self.units, self.bit_conds, self.cond_node, self.cond_left,
                self.features, self.values)
