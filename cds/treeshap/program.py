"""The flat arrays a record is explained with: split conditions, bit units, gathers, products.

:class:`Program` flattens every block of every tree (:mod:`cds.treeshap.plan`) into a few
arrays so that a batch of records is explained by the same ~25 numpy calls whatever the number
of trees. Arrays are laid out (items, rows): each gather of one table column for all rows of a
chunk stays inside that small column, so tables are read from cache.

1. ``go_left`` (nodes, rows): every split condition of every tree
   (:mod:`cds.treeshap.nodes`).
2. ``bits`` (bits, rows): each bit is the AND of one or more conditions; bits are ordered by
   (unit size, bit position, unit) so each unit's byte index is built with a few shifts.
3. byte slots: one gather per (byte block, feature), summed per feature.
4. quadrature: each chunk's product columns are gathered; a feature column of chunk ``c`` is
   multiplied by the product of the block's other chunks at the same node (for two chunks, the
   other's column; for more, the path total times the subtree divided by chunk ``c``) and
   summed per feature.

A single record takes a shorter road (:meth:`Program.explain_one`): its bits are kept in unit
order, so each index is one ``reduceat``, and ``bincount`` sums by feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import Block, ByteBlock, Condition, Unit


def block_bytes_per_row(block: Block) -> int:
    """A block's share of :meth:`Program.bytes_per_row` (to group trees before building programs)."""
    if isinstance(block, ByteBlock):
        return 2 * len(block.unit.bits) + 1 + 17 * len(block.features)
    m = len(block.units)
    multipliers = block.n_nodes * (m + (m + 1 if m > 2 else 0))
    return (2 * sum(len(u.bits) for u in block.units) + m + 8 * multipliers
            + 25 * block.n_nodes * sum(len(f) for f in block.features))


class AndBits:
    """Row ``b`` is the AND of ``conds[b]`` over a (nodes, rows) "goes left" matrix."""

    def __init__(self, conds: list[list[Condition]]) -> None:
        self.size = len(conds)
        self.node = np.array([c[0][0] for c in conds], np.intp)
        self.right = np.array([not c[0][1] for c in conds], bool)
        self.extra: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        level = 1
        while members := [b for b, c in enumerate(conds) if len(c) > level]:
            self.extra.append((np.array(members, np.intp),
                               np.array([conds[b][level][0] for b in members], np.intp),
                               np.array([not conds[b][level][1] for b in members], bool)))
            level += 1

    def remap(self, rank: np.ndarray) -> None:
        """Switch node ids to rows of the "goes left" matrix."""
        self.node = rank[self.node]
        self.extra = [(members, rank[node], right) for members, node, right in self.extra]

    def evaluate(self, go_left: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(bits, rows) from (nodes, rows), or (bits,) from (nodes,)."""
        column = (slice(None), None) if go_left.ndim == 2 else (slice(None),)
        bits: np.ndarray = np.take(go_left, self.node, axis=0, out=out)
        bits ^= self.right[column]
        for members, node, right in self.extra:
            bits[members] &= go_left[node] ^ right[column]
        return bits


class Products:
    """Row ``p`` is the product of rows ``factors[p]`` of a matrix (empty product: 1)."""

    def __init__(self, factors: list[list[int]], ones_row: int) -> None:
        self.first = np.array([f[0] if f else ones_row for f in factors], np.intp)
        self.extra: list[tuple[np.ndarray, np.ndarray]] = []
        level = 1
        while members := [p for p, f in enumerate(factors) if len(f) > level]:
            self.extra.append((np.array(members, np.intp),
                               np.array([factors[p][level] for p in members], np.intp)))
            level += 1

    def evaluate(self, matrix: np.ndarray) -> np.ndarray:
        out: np.ndarray = matrix[self.first]
        for members, rows in self.extra:
            out[members] *= matrix[rows]
        return out


class Scratch:
    """Reusable buffers of one worker thread, reallocated only when a shape changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype)
        return array


@dataclass
class _Gathers:
    """Table gathers ``values[index[unit] + start]``, ordered by feature when summed per feature."""

    unit: np.ndarray
    start: np.ndarray
    feature: np.ndarray
    present: np.ndarray
    segment: np.ndarray

    @classmethod
    def build(cls, unit: list[int], start: list[int], feature: list[int] | None = None) -> _Gathers:
        order = np.argsort(feature, kind="stable") if feature is not None else np.arange(len(unit))
        present, segment = (np.unique(np.asarray(feature, np.intp)[order], return_index=True)
                            if feature is not None and len(feature) else (np.zeros(0, np.intp),) * 2)
        features = np.asarray(feature if feature is not None else [0] * len(unit), np.intp)[order]
        return cls(np.asarray(unit, np.intp)[order].reshape(-1),
                   np.asarray(start, np.intp)[order].reshape(-1),
                   features.reshape(-1), present.astype(np.intp), segment.astype(np.intp))

    def gather(self, values: np.ndarray, index: np.ndarray, scratch: Scratch, name: str) -> np.ndarray:
        """(items, rows) table values from the (units, rows) uint8 index."""
        shape = (self.unit.size, index.shape[1])
        codes = np.take(index, self.unit, axis=0, out=scratch.get(name + ".code", shape, np.uint8))
        position = np.add(codes, self.start[:, None], out=scratch.get(name + ".pos", shape, np.intp))
        out: np.ndarray = np.take(values, position, out=scratch.get(name, shape, np.float64), mode="clip")
        return out

    def add_by_feature(self, terms: np.ndarray, out: np.ndarray, scratch: Scratch, name: str) -> None:
        """``out[feature] += sum of the terms of that feature`` (terms in feature order)."""
        rows = terms.shape[1]
        sums = scratch.get(name + ".sums", (self.present.size, rows), np.float64)
        stops = [*self.segment[1:].tolist(), terms.shape[0]]
        for i, (start, stop) in enumerate(zip(self.segment.tolist(), stops, strict=True)):
            np.add.reduce(terms[start:stop], axis=0, out=sums[i])
        out[self.present] += sums


class Program:
    """Flattened blocks of all trees (see the module docstring)."""

    def __init__(self, blocks: list[Block], rank: np.ndarray) -> None:
        """Lay out every block's units, tables and gathers in one flat program.

        Long: one pass that assigns each unit its rank, its bit positions and its table offset,
        then builds the gathers from those same offsets; split into steps, each would need the
        others' running offsets passed back and forth, which is where layout bugs come from.
        """
        units: list[Unit] = []
        for block in blocks:
            units.extend([block.unit] if isinstance(block, ByteBlock) else block.units)
        # units ordered by bit count; bits of a size group laid out (position, unit)
        order = sorted(range(len(units)), key=lambda i: len(units[i].bits))
        unit_id = {id(units[i]): rank for rank, i in enumerate(order)}
        conds: list[list[Condition]] = []
        self.groups: list[tuple[int, int, int, int]] = []
        for size in range(0, 9):
            members = [units[i] for i in order if len(units[i].bits) == size]
            if members:
                self.groups.append((size, len(conds), unit_id[id(members[0])], len(members)))
                conds.extend(m.bits[b] for b in range(size) for m in members)
        self.n_units = len(units)
        self.n_constant = sum(1 for u in units if not u.bits)
        self.bits = AndBits(conds) if conds else AndBits([[(0, True)]])
        if rank.size:
            self.bits.remap(rank)
        # one record: bits in unit order, each unit's byte a sum of shifted bits
        self.one_bits = AndBits([b for i in order for b in units[i].bits] or [[(0, True)]])
        if rank.size:
            self.one_bits.remap(rank)
        self.one_shift = np.array([b for i in order for b in range(len(units[i].bits))], np.uint8)
        sizes = [len(units[i].bits) for i in order if units[i].bits]
        self.one_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        # table columns, flat
        column_start: dict[tuple[int, int], int] = {}
        chunks: list[np.ndarray] = []
        position = 0
        for unit in units:
            for c, column in enumerate(unit.columns):
                column_start[id(unit), c] = position
                chunks.append(column)
                position += column.size
        self.values = np.concatenate(chunks) if chunks else np.zeros(1)
        slot_unit: list[int] = []
        slot_start: list[int] = []
        slot_feature: list[int] = []
        pcol_unit: list[int] = []
        pcol_start: list[int] = []
        totals: list[list[int]] = []
        subtree: list[int] = []
        ratios: list[tuple[int, int]] = []
        x_unit: list[int] = []
        x_start: list[int] = []
        x_multiplier: list[tuple[str, int]] = []
        x_feature: list[int] = []
        for block in blocks:
            if isinstance(block, ByteBlock):
                for c, f in enumerate(block.features):
                    slot_unit.append(unit_id[id(block.unit)])
                    slot_start.append(column_start[id(block.unit), c])
                    slot_feature.append(f)
                continue
            q_nodes = block.n_nodes
            first_pcol = len(pcol_unit)
            for unit in block.units:
                for q in range(q_nodes):
                    pcol_unit.append(unit_id[id(unit)])
                    pcol_start.append(column_start[id(unit), q])
            m = len(block.units)
            for q in range(q_nodes):
                rows = [first_pcol + c * q_nodes + q for c in range(m)]  # the chunks' products
                if m == 1:
                    multiplier: list[tuple[str, int]] = [("ones", 0)]
                elif m == 2:  # the other chunk's product column, in place
                    multiplier = [("product", rows[1]), ("product", rows[0])]
                else:  # above-path total T, W = T * subtree; chunk c of the path: W / P_c
                    t = len(totals)
                    totals.append(rows[:-1])
                    subtree.append(rows[-1])
                    multiplier = []
                    for c in range(m - 1):
                        multiplier.append(("ratio", len(ratios)))
                        ratios.append((t, rows[c]))
                    multiplier.append(("total", t))
                for c, (unit, features) in enumerate(zip(block.units, block.features, strict=True)):
                    for i, f in enumerate(features):
                        x_unit.append(unit_id[id(unit)])
                        x_start.append(column_start[id(unit), q_nodes + i * q_nodes + q])
                        x_multiplier.append(multiplier[c])
                        x_feature.append(f)
        self.slots = _Gathers.build(slot_unit, slot_start, slot_feature)
        self.pcols = _Gathers.build(pcol_unit, pcol_start)
        # multiplier rows: products, ones, totals T, W = T * subtree product, ratios W / P_c
        self.n_products = len(pcol_unit) + 1
        base = {"product": 0, "ones": self.n_products - 1, "total": self.n_products,
                "ratio": self.n_products + 2 * len(totals)}
        self.totals = Products(totals, ones_row=self.n_products - 1)
        self.subtree = np.asarray(subtree, np.intp)
        self.ratio_w = np.asarray([t for t, _ in ratios], np.intp) + len(totals)
        self.ratio_p = np.asarray([r for _, r in ratios], np.intp)
        self.n_multipliers = self.n_products + 2 * len(totals) + len(ratios)
        x_partner = [base[kind] + i for kind, i in x_multiplier]
        self.xcols = _Gathers.build(x_unit, x_start, x_feature)
        self.x_partner = np.asarray(x_partner, np.intp)[np.argsort(x_feature, kind="stable")]

    def bytes_per_row(self) -> int:
        """Scratch bytes per explained row (for chunk sizing)."""
        return (2 * self.bits.size + self.n_units + 17 * self.slots.unit.size
                + 8 * self.n_multipliers + 25 * self.xcols.unit.size)

    def _index(self, bits: np.ndarray, scratch: Scratch) -> np.ndarray:
        """(units, rows) uint8: each unit's bits packed into its table index."""
        rows = bits.shape[1]
        index = scratch.get("index", (self.n_units, rows), np.uint8)
        index[:self.n_constant] = 0
        shifted = scratch.get("shifted", (max(n for _, _, _, n in self.groups), rows), np.uint8)
        for size, first_bit, first_unit, count in self.groups:
            if size == 0:
                continue
            target = index[first_unit:first_unit + count]
            slab = bits[first_bit:first_bit + size * count].reshape(size, count, rows)
            target[...] = slab[0]
            for b in range(1, size):
                np.left_shift(slab[b], b, out=shifted[:count])
                target |= shifted[:count]
        return index

    def _multipliers(self, products: np.ndarray) -> np.ndarray:
        """Fill the rows after the product columns (see ``__init__``) and return the matrix.

        Dividing by a path chunk's product is safe: it is a product of ``z (1 - u) + o u`` with
        ``z > 0`` and ``0 < u < 1``, so it is positive, and division is exact to an ulp.
        """
        n_totals = self.subtree.size
        if n_totals:
            start = self.n_products
            totals = products[start:start + n_totals]
            totals[...] = self.totals.evaluate(products[:start])
            weighted = products[start + n_totals:start + 2 * n_totals]
            np.multiply(totals, products[self.subtree], out=weighted)
            np.divide(products[start + self.ratio_w], products[self.ratio_p],
                      out=products[start + 2 * n_totals:])
        return products

    def explain_one(self, go_left: np.ndarray, n_features: int) -> np.ndarray:
        """Contributions (n_features,) of one record from its (nodes,) "goes left" vector."""
        index = np.zeros(self.n_units, np.intp)
        if self.one_shift.size:
            shifted = self.one_bits.evaluate(go_left).view(np.uint8) << self.one_shift
            index[self.n_constant:] = np.add.reduceat(shifted, self.one_start)
        out = np.zeros(n_features)
        if self.slots.unit.size:
            gathered = self.values.take(index[self.slots.unit] + self.slots.start)
            out += np.bincount(self.slots.feature, weights=gathered, minlength=n_features)
        if self.xcols.unit.size:
            products = np.ones(self.n_multipliers)
            products[:self.n_products - 1] = self.values.take(index[self.pcols.unit] + self.pcols.start)
            terms = self.values.take(index[self.xcols.unit] + self.xcols.start)
            terms *= self._multipliers(products)[self.x_partner]
            out += np.bincount(self.xcols.feature, weights=terms, minlength=n_features)
        return out

    def contributions(self, go_left: np.ndarray, out: np.ndarray, scratch: Scratch) -> None:
        """Add the contributions of a (nodes, rows) "goes left" matrix to ``out`` (features, rows)."""
        rows = go_left.shape[1]
        bits = self.bits.evaluate(go_left, out=scratch.get("bits", (self.bits.size, rows), bool))
        index = self._index(bits.view(np.uint8), scratch)
        if self.slots.unit.size:
            gathered = self.slots.gather(self.values, index, scratch, "slots")
            self.slots.add_by_feature(gathered, out, scratch, "slots")
        if self.xcols.unit.size:
            products = scratch.get("products", (self.n_multipliers, rows), np.float64)
            products[:self.n_products - 1] = self.pcols.gather(self.values, index, scratch, "pcols")
            products[self.n_products - 1] = 1.0
            terms = self.xcols.gather(self.values, index, scratch, "xcols")
            terms *= self._multipliers(products)[self.x_partner]
            self.xcols.add_by_feature(terms, out, scratch, "xcols")
