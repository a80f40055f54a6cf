"""Exact path-dependent TreeSHAP for a LightGBM binary model, in numpy, at prediction speed.

:class:`TreeExplainer` reads LightGBM's text model (or ``dump_model()``) and returns what
``Booster.predict(X, pred_contrib=True)`` returns: one column per feature plus the expected
value, each row summing to the raw score. Instead of walking every tree for every record, it
precomputes tables once (:mod:`cds.treeshap.plan`); a record then costs one vectorised
evaluation of every split condition of every tree (:mod:`cds.treeshap.nodes`), a byte per
tabulated block and a short gather from each table (:mod:`cds.treeshap.program`): the same ~25
numpy calls whatever the number of trees. Batches run in row chunks on a small thread pool
(numpy releases the GIL), with scratch memory bounded by the chunk size. A model too big for
one program (deep trees) is explained in groups of consecutive trees, a program each, with
chunks sized so a group's intermediates stay a few MB (see :data:`GROUP_SCRATCH_BYTES`).

A model whose plan has quadrature blocks (deep trees) is explained by the compiled kernel
instead (:mod:`cds.treeshap.kernel`, numba: a quarter to a sixth of the numpy engine's CPU
there), and so are batches of :data:`KERNEL_BATCH_ROWS` records or more of the other models (a
third of the CPU, the same numbers to the bit): the same tables laid out per record
(:mod:`cds.treeshap.compiled`), chunks on the same threads, the GIL released. numba is
imported on the first explanation that needs it, never by ``import cds`` nor for the few
records the service explains on a shallow model; without numba (or if it fails to load) the
numpy engine explains. ``engine=`` forces either.

Only numpy is imported up front: explaining needs neither LightGBM nor shap, and the text
model is parsed directly (:mod:`cds.treeshap.model`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from .compiled import CompiledPlan, Kernel, load_kernel, numba_available
from .model import ParsedModel, parse_model_dump, parse_model_string
from .nodes import SplitConditions
from .plan import Block, QuadBlock, TreePlanner
from .program import Program, Scratch, block_bytes_per_row

__all__ = ["TreeExplainer"]

NEVER = 1 << 62
"""A record count no batch reaches."""

MAX_CHUNK_ROWS = 256
"""Rows explained together when the whole model is one group; more only grows the scratch."""
ONE_BY_ONE = 4
"""Up to this many rows, records are explained one at a time (lowest latency)."""
SCRATCH_BYTES = 48 << 20
"""Scratch memory a worker thread aims for (the chunk shrinks for very large models)."""
GROUP_CHUNK_ROWS = 1024
"""Rows explained together when trees are explained in groups: every table is read once per
chunk, so more rows amortise it."""
GROUP_SCRATCH_BYTES = 8 << 20
"""Scratch of one tree group for a chunk of :data:`GROUP_CHUNK_ROWS`. A model whose scratch for
:data:`MAX_CHUNK_ROWS` rows exceeds :data:`SCRATCH_BYTES` (deep trees: 300 trees x 31 leaves of
unlimited depth need 1.3 MB per row, so 39-row chunks streaming 34 MB of tables each) is
explained group by group, each group's intermediates a few MB."""
KERNEL_CHUNK_ROWS = 1024
"""Rows the compiled kernel explains together: every table is read once per chunk."""
KERNEL_MIN_ROWS = 64
"""Rows per thread below which the compiled kernel's batch is not worth a second thread."""
KERNEL_THREAD_READS = 2_000_000
"""Table reads (about a nanosecond each) a second kernel thread must have to be worth starting:
a light model (the shipped one, ~1,100 reads a record) explains 1,000 records on one thread."""
KERNEL_BATCH_ROWS = 256
"""With ``engine="auto"``, a model of byte tables only (shallow trees, as shipped) uses the
kernel from this many records (3-4x its numpy engine, the same numbers to the bit): numba's
one-time load (about a second) is worth it for batches. Fewer records, as the service
explains, stay on numpy and never load numba. Deep trees use the kernel at every size."""

Engine = Literal["auto", "numpy", "numba"]
"""``numba``: the compiled kernel; ``numpy``: the numpy engine; ``auto``: numba when installed,
for every batch of a plan with quadrature blocks (deep trees) and for batches of at least
:data:`KERNEL_BATCH_ROWS` records of the others, else numpy."""


def _cpus() -> int:
    """CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class TreeExplainer:
    """Exact TreeSHAP contributions and raw scores of a LightGBM binary model.

    Build with :meth:`from_model_string` (``model.txt``) or :meth:`from_model_dump`. Column
    order, NaN for missing values and categorical codes are LightGBM's: a float matrix in the
    model's column order, categorical columns holding the integer category code.
    """

    def __init__(self, model: ParsedModel, *, engine: Engine = "auto") -> None:
        self.n_features: int = model.n_features
        self.feature_names: list[str] = list(model.feature_names)
        # tree order, as LightGBM accumulates it
        self.expected_value: float = 0.0
        self._constant = 0.0
        for tree in model.trees:
            self.expected_value += tree.expected_value()
            if tree.num_leaves == 1:
                self._constant += float(tree.leaf_value[0])
        self._nodes = SplitConditions(model)
        self._model = model
        self._lock = threading.Lock()
        planned = self._plan()
        deep = any(isinstance(block, QuadBlock) for blocks in planned for block in blocks)
        kernel = engine == "numba" or (engine == "auto" and numba_available())
        # the kernel from this many records; numpy below (a deep plan has no numpy programs)
        self._kernel_rows = (0 if kernel and (deep or engine == "numba") else
                             KERNEL_BATCH_ROWS if kernel else NEVER)
        self._compiled: CompiledPlan | None = None
        self._programs: list[Program] = []
        if self._kernel_rows == 0:
            self._compiled = CompiledPlan([b for blocks in planned for b in blocks], self._nodes.rank)
        else:  # the kernel's layout, if ever needed, is planned again on the first large batch
            self._programs = [Program(group, self._nodes.rank) for group in self._tree_groups(planned)]

    @property
    def engine(self) -> str:
        """The engine explaining batches: ``numba`` (the compiled kernel) or ``numpy``."""
        return "numba" if self._kernel_rows < NEVER else "numpy"

    @property
    def table_bytes(self) -> int:
        """Memory of the precomputed tables (and the arrays that index them), both engines'."""
        compiled = self._compiled.nbytes if self._compiled is not None else 0
        return compiled + sum(p.values.nbytes for p in self._programs)

    def _plan(self) -> list[list[Block]]:
        """Each tree's blocks (single-leaf trees have none)."""
        return [TreePlanner(tree, self._nodes.offsets[t]).blocks
                for t, tree in enumerate(self._model.trees) if tree.num_leaves > 1]

    def _kernel(self, rows: int) -> Kernel | None:
        """The compiled kernel if it explains ``rows`` records, loaded (and the model's layout
        for it built) on first use; if numba fails to load, the numpy engine from then on."""
        if rows < self._kernel_rows:
            return None
        with self._lock:
            kernel = load_kernel()
            if kernel is None:
                self._kernel_rows = NEVER
                if not self._programs:  # plan again for numpy (slow, once)
                    self._programs = [Program(group, self._nodes.rank)
                                      for group in self._tree_groups(self._plan())]
                self._compiled = None
            elif self._compiled is None:
                self._compiled = CompiledPlan([b for blocks in self._plan() for b in blocks],
                                              self._nodes.rank)
        return kernel

    @staticmethod
    def _tree_groups(planned: list[list[Block]]) -> list[list[Block]]:
        """The trees' blocks: one group when the whole model's scratch fits :data:`SCRATCH_BYTES`
        for a chunk of :data:`MAX_CHUNK_ROWS`, else consecutive trees in groups of at most
        :data:`GROUP_SCRATCH_BYTES` for a chunk of :data:`GROUP_CHUNK_ROWS`."""
        costs = [sum(block_bytes_per_row(block) for block in blocks) for blocks in planned]
        if sum(costs) * MAX_CHUNK_ROWS <= SCRATCH_BYTES:
            return [[block for blocks in planned for block in blocks]]
        budget = GROUP_SCRATCH_BYTES // GROUP_CHUNK_ROWS
        groups: list[list[Block]] = [[]]
        size = 0
        for blocks, cost in zip(planned, costs, strict=True):
            if groups[-1] and size + cost > budget:
                groups.append([])
                size = 0
            groups[-1].extend(blocks)
            size += cost
        return groups

    @classmethod
    def from_model_string(cls, text: str, *, engine: Engine = "auto") -> TreeExplainer:
        """From LightGBM's native text model (``model.txt``); no LightGBM needed."""
        return cls(parse_model_string(text), engine=engine)

    @classmethod
    def from_model_dump(cls, dump: dict[str, Any], *, engine: Engine = "auto") -> TreeExplainer:
        """From ``Booster.dump_model()``."""
        return cls(parse_model_dump(dump), engine=engine)

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a (rows, {self.n_features}) matrix, got shape {X.shape}")
        return X

    def _explain_chunk(self, X: np.ndarray, out: np.ndarray, scratch: list[Scratch],
                       kernel: Kernel | None) -> None:
        rows = X.shape[0]
        result = scratch[0].get("result", (self.n_features + 1, rows), np.float64)
        result[:-1] = 0.0
        result[-1] = self.expected_value
        if self._nodes.size:
            if rows <= ONE_BY_ONE:  # a gather per record beats a comparison per feature
                left = np.column_stack([self._nodes.go_left_one(x) for x in X])
            else:
                left = self._nodes.go_left(np.ascontiguousarray(X.T),
                                           out=scratch[0].get("left", (self._nodes.size, rows), bool))
            if kernel is not None and self._compiled is not None:
                kernel(left, result, *self._compiled.arrays())
            else:
                for program, own in zip(self._programs, scratch, strict=True):
                    program.contributions(left, result, own)
        out[...] = result.T

    def _kernel_chunk_rows(self) -> int:
        """Rows per kernel call: :data:`KERNEL_CHUNK_ROWS`, fewer if the "goes left" matrix of
        a chunk would pass :data:`SCRATCH_BYTES`."""
        per_row = self._nodes.size + 16 * (self.n_features + 1)
        return int(min(KERNEL_CHUNK_ROWS, max(KERNEL_MIN_ROWS, SCRATCH_BYTES // per_row)))

    def _chunk_rows(self) -> int:
        if not self._programs:
            return self._kernel_chunk_rows()
        per_row = (max(p.bytes_per_row() for p in self._programs) + self._nodes.size
                   + 8 * (self.n_features + 1))
        if len(self._programs) == 1:
            return int(min(MAX_CHUNK_ROWS, max(16, SCRATCH_BYTES // per_row)))
        # a group is at least one tree: a deep tree's scratch alone can exceed the group budget
        group = max(p.bytes_per_row() for p in self._programs)
        return int(min(GROUP_CHUNK_ROWS, SCRATCH_BYTES // per_row, max(16, GROUP_SCRATCH_BYTES // group)))

    def contributions(self, X: np.ndarray, *, n_threads: int | None = None) -> np.ndarray:
        """TreeSHAP contributions, float64 (rows, n_features + 1), last column the expected value.

        Same as LightGBM ``Booster.predict(X, pred_contrib=True)`` for a binary model; each row sums
        to :meth:`predict_raw`. Batches use ``n_threads`` worker threads (default: the CPUs this
        process may run on), each on its own contiguous share of the rows.
        """
        X = self._check(X)
        n = X.shape[0]
        out = np.empty((n, self.n_features + 1))
        kernel = self._kernel(n)
        if kernel is not None and self._compiled is not None:
            chunk = self._kernel_chunk_rows()
            per_thread = max(KERNEL_MIN_ROWS, KERNEL_THREAD_READS // self._compiled.reads_per_row)
            threads = max(1, min(n_threads or _cpus(), n // per_thread))
        elif n <= ONE_BY_ONE:
            self._explain_one_by_one(X, out)
            return out
        else:
            chunk = self._chunk_rows()
            # a thread per few chunks at least: small batches are not worth a pool
            threads = max(1, min(n_threads or _cpus(), n // (4 * chunk)))

        def work(share: tuple[int, int]) -> None:
            scratch = [Scratch() for _ in range(max(1, len(self._programs)))]
            for start in range(share[0], share[1], chunk):
                stop = min(start + chunk, share[1])
                self._explain_chunk(X[start:stop], out[start:stop], scratch, kernel)

        bounds = np.linspace(0, n, threads + 1).astype(int)
        shares = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        if threads == 1:
            work(shares[0])
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(work, shares))
        return out

    def _explain_one_by_one(self, X: np.ndarray, out: np.ndarray) -> None:
        """The numpy engine on a few records: one gather per table each (lowest latency)."""
        out[:, -1] = self.expected_value
        for r in range(X.shape[0]):
            out[r, :-1] = 0.0
            if self._nodes.size:
                left = self._nodes.go_left_one(X[r])
                for program in self._programs:
                    out[r, :-1] += program.explain_one(left, self.n_features)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Raw score (sum of the trees' leaf values), as ``Booster.predict(X, raw_score=True)``."""
        X = self._check(X)
        out = np.full(X.shape[0], self._constant)
        if not self._nodes.size:
            return out
        chunk = self._chunk_rows()
        for start in range(0, X.shape[0], chunk):
            XT = np.ascontiguousarray(X[start:start + chunk].T)
            out[start:start + chunk] += self._nodes.leaf_sum(self._nodes.go_left(XT))
        return out
