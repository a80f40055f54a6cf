"""Precomputed TreeSHAP tables: each tree cut into blocks whose contributions are table lookups.

Path-dependent TreeSHAP (LightGBM's ``Tree::TreeSHAP``) sums over leaves. A leaf with value ``v``
has unique path features ``j``, each with a zero fraction ``z_j`` (product of the training-count
ratios of its conditions on the path) and a one fraction ``o_j`` (1 if the record satisfies all
of them, else 0). Its Shapley value for feature ``i`` is (Owen's multilinear extension; the
weights ``s!(k-1-s)!/k!`` are Beta integrals)::

    phi_i = v (o_i - z_i) * integral_0^1 prod_{j != i} (z_j (1 - u) + o_j u) du

a polynomial of degree ``k - 1`` in ``u``, so a Gauss-Legendre rule with ``ceil(k/2)`` nodes is
exact. ``o`` is binary, so everything is a function of a few bits per record (Fast TreeSHAP v2,
Yang 2021, generalised):

* a *byte block* is a subtree whose leaves depend on at most 8 bits (one per unique feature on
  the path above it, holding the AND of that feature's conditions there, plus one per internal
  node inside it, holding "goes left"); its table maps the bits, packed into one byte, to the
  summed contributions on the block's features. A record costs one gather per feature.
* a *quadrature block* serves deeper paths: the integrand factorises into the features above
  the subtree (chunks of at most 4 features, each tabulated over its own bits) and the subtree
  itself (tabulated over at most 8 bits); tables keep the quadrature nodes, and a record
  multiplies one column of each chunk per node. Table sizes stay bounded whatever the depth.

A dynamic programme over each tree picks the cheaper cover (per-record gathers) of its leaves.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .model import ParsedTree

BYTE_BITS = 8
"""Bits of a byte block's index."""
SUBTREE_BITS = 8
"""Bits of a quadrature block's subtree table."""
CHUNK_FEATURES = 4
"""Features per tabulated chunk of the path above a quadrature block."""

Condition = tuple[int, bool]
"""A path condition: (global internal node id, record must go left)."""
Step = tuple[int, bool, int, float]
"""One edge of a path: (global node id, went left, split feature, child count / node count)."""


def gauss_legendre(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1] exact for polynomials of degree ``k - 1`` (read-only arrays)."""
    return _gauss_legendre(max(1, math.ceil(k / 2)))


@functools.cache
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` nodes: computed once per process (a deep model's plan asks thousands of times)."""
    x, w = np.polynomial.legendre.leggauss(n)
    u, weights = (x + 1.0) / 2.0, w / 2.0
    u.flags.writeable = weights.flags.writeable = False
    return u, weights


@dataclass
class _PathFeature:
    """A unique feature of a path: merged conditions and zero fraction."""

    feature: int
    zero: float
    conds: list[Condition]


def merge_path(path: list[Step]) -> dict[int, _PathFeature]:
    """A path's conditions merged by feature (TreeSHAP's unique path), in first-seen order."""
    merged: dict[int, _PathFeature] = {}
    for node, go_left, feature, ratio in path:
        if feature in merged:
            merged[feature].zero = ratio * merged[feature].zero
            merged[feature].conds.append((node, go_left))
        else:
            merged[feature] = _PathFeature(feature, ratio, [(node, go_left)])
    return merged


Requirement = tuple[int, bool]
"""A one fraction's dependence on a unit's bit: (bit position, value it must have)."""
LeafSpec = tuple[float, list[tuple[int, float, list[Requirement]]]]
"""(leaf value, [(column, zero fraction, requirements)]) as seen from one unit's bits."""


def polynomial_tables(n_bits: int, leaves: list[LeafSpec], n_columns: int,
                      u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every bit combination ``e`` and node ``u_q``: ``P[e, q] = sum_l v_l prod_j g_lj(u_q)``
    and ``X[e, c, q] = sum_l v_l (o_li - z_li) prod_{j != i} g_lj(u_q)`` (``i`` in column ``c``),
    where ``g = z (1 - u) + o u``. Exclusive products use prefix/suffix products, never division.
    """
    entries = 1 << n_bits
    bit_values = ((np.arange(entries)[:, None] >> np.arange(n_bits)) & 1).astype(bool)
    P = np.zeros((entries, u.size))
    X = np.zeros((entries, n_columns, u.size))
    for value, features in leaves:
        k = len(features)
        ones = np.ones((entries, k), bool)
        for j, (_, _, requirements) in enumerate(features):
            for bit, want in requirements:
                ones[:, j] &= bit_values[:, bit] == want
        zeros = np.array([z for _, z, _ in features]).reshape(1, k, 1)
        g = zeros * (1.0 - u) + ones[:, :, None] * u  # (entries, k, q)
        prefix = np.ones((entries, k + 1, u.size))  # prefix[:, j] = prod_{j' < j} g
        suffix = np.ones((entries, k + 1, u.size))  # suffix[:, j] = prod_{j' >= j} g
        if k:
            np.cumprod(g, axis=1, out=prefix[:, 1:])
            suffix[:, :k] = np.cumprod(g[:, ::-1], axis=1)[:, ::-1]
            columns = [c for c, _, _ in features]
            exclusive = prefix[:, :k] * suffix[:, 1:]
            X[:, columns] += value * (ones - zeros[:, :, 0])[:, :, None] * exclusive
        P += value * prefix[:, k]
    return P, X


@dataclass
class Unit:
    """A table indexed by up to 8 bits: the bit definitions and the table's columns."""

    bits: list[list[Condition]]
    columns: list[np.ndarray] = field(default_factory=list)


@dataclass
class ByteBlock:
    """A byte block: one unit, one column per feature (exact contributions)."""

    unit: Unit
    features: list[int]


@dataclass
class QuadBlock:
    """A quadrature block: chunk units (the path above, then the subtree) sharing nodes ``q``.

    Each chunk has ``q`` product columns, then ``q`` columns per feature in ``features[c]``.
    """

    units: list[Unit]
    features: list[list[int]]
    n_nodes: int


Block = ByteBlock | QuadBlock
"""What a tree is cut into."""


class TreePlanner:
    """Cuts one tree into byte and quadrature blocks, choosing per subtree the cheaper cover."""

    def __init__(self, tree: ParsedTree, offset: int) -> None:
        self.tree = tree
        self.offset = offset
        self._inner: dict[int, list[int]] = {}
        self.blocks: list[ByteBlock | QuadBlock] = [
            self._byte_block(node, path) if kind == "byte" else self._quad_block(node, path)
            for kind, node, path in self._plan(0, [])[1]]

    # -------------------------------------------------------------- structure
    def _inner_nodes(self, node: int) -> list[int]:
        """Internal nodes of the subtree at ``node`` (pre-order)."""
        if node < 0:
            return []
        if node not in self._inner:
            t = self.tree
            self._inner[node] = [node, *self._inner_nodes(int(t.left[node])),
                                 *self._inner_nodes(int(t.right[node]))]
        return self._inner[node]

    def _step(self, node: int, go_left: bool) -> tuple[int, Step]:
        t = self.tree
        child = int(t.left[node] if go_left else t.right[node])
        count = float(t.internal_count[child] if child >= 0 else t.leaf_count[~child])
        return child, (self.offset + node, go_left, int(t.feature[node]),
                       count / float(t.internal_count[node]))

    def _leaves(self, node: int, path: list[Step]) -> list[tuple[int, list[Step]]]:
        """(leaf, path below ``node``) for every leaf of the subtree."""
        if node < 0:
            return [(~node, path)]
        out = []
        for go_left in (True, False):
            child, step = self._step(node, go_left)
            out.extend(self._leaves(child, [*path, step]))
        return out

    # -------------------------------------------------------------- planning
    def _plan(self, node: int, path: list[Step]) -> tuple[float, list[tuple[str, int, list[Step]]]]:
        """(per-record cost, blocks as (kind, root, path)) of the cheapest cover of a subtree."""
        above = merge_path(path)
        inner = self._inner_nodes(node)
        below = {int(self.tree.feature[n]) for n in inner}
        options: list[tuple[float, list[tuple[str, int, list[Step]]]]] = []
        byte = len(above) + len(inner) <= BYTE_BITS
        if byte:
            features = list(above) + [f for f in dict.fromkeys(int(self.tree.feature[n]) for n in inner)
                                      if f not in above]
            options.append((len(features) + 1.0, [("byte", node, path)]))
        else:
            shared = [f for f in above if f in below]
            if len(shared) + len(inner) <= SUBTREE_BITS:
                outside = len(above) - len(shared)
                chunks = math.ceil(outside / CHUNK_FEATURES) + 1
                depth = max(len(merge_path([*path, *p])) for _, p in self._leaves(node, []))
                n_nodes = max(1, math.ceil(depth / 2))
                cost = n_nodes * (2.0 * (outside + len(below)) + chunks * chunks)
                options.append((cost, [("quad", node, path)]))
        if node >= 0 and not byte:  # a byte block beats any split of it
            split: tuple[float, list[tuple[str, int, list[Step]]]] = (0.0, [])
            for go_left in (True, False):
                child, step = self._step(node, go_left)
                cost, blocks = self._plan(child, [*path, step])
                split = (split[0] + cost, split[1] + blocks)
            options.append(split)
        return min(options, key=lambda option: option[0])

    def _subtree_specs(self, node: int, path: list[Step], shared: list[int],
                       columns: dict[int, int]) -> tuple[list[list[Condition]], list[LeafSpec]]:
        """Bits (shared features' AND above, then inner nodes) and leaf specs of a subtree."""
        above = merge_path(path)
        inner = self._inner_nodes(node)
        bits = [list(above[f].conds) for f in shared] + [[(self.offset + n, True)] for n in inner]
        shared_bit = {f: b for b, f in enumerate(shared)}
        inner_bit = {self.offset + n: len(shared) + b for b, n in enumerate(inner)}
        specs: list[LeafSpec] = []
        for leaf, below_path in self._leaves(node, []):
            merged = merge_path([*path, *below_path])
            below_conds = merge_path(below_path)
            features = []
            for f, pf in merged.items():
                if f in above and f not in shared_bit:
                    continue  # an outside feature: handled by the chunks above
                requirements = [(shared_bit[f], True)] if f in shared_bit else []
                if f in below_conds:
                    requirements += [(inner_bit[n], left) for n, left in below_conds[f].conds]
                features.append((columns[f], pf.zero, requirements))
            specs.append((float(self.tree.leaf_value[leaf]), features))
        return bits, specs

    def _byte_block(self, node: int, path: list[Step]) -> ByteBlock:
        above = merge_path(path)
        inner = self._inner_nodes(node)
        features = list(above) + [f for f in dict.fromkeys(int(self.tree.feature[n]) for n in inner)
                                  if f not in above]
        columns = {f: c for c, f in enumerate(features)}
        bits, specs = self._subtree_specs(node, path, list(above), columns)
        depth = max((len(s[1]) for s in specs), default=1)
        u, w = gauss_legendre(depth)
        _, X = polynomial_tables(len(bits), specs, len(features), u)
        table = X @ w
        return ByteBlock(Unit(bits, [table[:, c] for c in range(len(features))]), features)

    def _quad_block(self, node: int, path: list[Step]) -> QuadBlock:
        above = merge_path(path)
        below = {int(self.tree.feature[n]) for n in self._inner_nodes(node)}
        shared = [f for f in above if f in below]
        outside = [f for f in above if f not in below]
        sub_features = shared + [f for f in dict.fromkeys(int(self.tree.feature[n])
                                                          for n in self._inner_nodes(node))
                                 if f not in shared]
        columns = {f: c for c, f in enumerate(sub_features)}
        bits, specs = self._subtree_specs(node, path, shared, columns)
        depth = len(outside) + max((len(s[1]) for s in specs), default=0)
        u, w = gauss_legendre(depth)
        units: list[Unit] = []
        features: list[list[int]] = []
        for start in range(0, len(outside), CHUNK_FEATURES):
            chunk = outside[start:start + CHUNK_FEATURES]
            spec: LeafSpec = (1.0, [(c, above[f].zero, [(c, True)]) for c, f in enumerate(chunk)])
            P, X = polynomial_tables(len(chunk), [spec], len(chunk), u)
            units.append(_quad_unit([list(above[f].conds) for f in chunk], P, X))
            features.append(chunk)
        P, X = polynomial_tables(len(bits), specs, len(sub_features), u)
        units.append(_quad_unit(bits, P * w, X * w))  # the subtree carries the weights
        features.append(sub_features)
        return QuadBlock(units, features, u.size)


def _quad_unit(bits: list[list[Condition]], P: np.ndarray, X: np.ndarray) -> Unit:
    columns = [P[:, q] for q in range(P.shape[1])]
    columns += [X[:, c, q] for c in range(X.shape[1]) for q in range(X.shape[2])]
    return Unit(bits, columns)
