"""Every split condition of every tree, evaluated for a batch of records in a few numpy calls.

Nodes get global ids (tree offset + LightGBM node index) and are stored sorted by feature, so a
batch is evaluated with one broadcast comparison per feature written straight into a (nodes,
rows) boolean matrix; a handful of rows use a single gather instead. :attr:`SplitConditions.rank`
maps a global id to its row in that matrix.

Decisions replicate LightGBM's ``Tree::NumericalDecision`` and ``Tree::CategoricalDecision``:
``x <= threshold`` goes left; NaN becomes 0 when the split's missing type is None; with missing
type Zero, 0 (and so NaN) takes the default direction; with missing type NaN, NaN takes it. A
categorical value goes left when its integer code (C++ ``static_cast<int>``: truncation toward
zero) is in the split's bitset; NaN, negative and unknown codes go right.
"""

from __future__ import annotations

import numpy as np

from .model import (
    CATEGORICAL_MASK,
    DEFAULT_LEFT_MASK,
    MISSING_NONE,
    MISSING_ZERO,
    ParsedModel,
)

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (a float constant): values this close to 0 count as zero."""


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


class SplitConditions:
    """The internal nodes of all trees; :meth:`go_left` evaluates them for a batch."""

    def __init__(self, model: ParsedModel) -> None:
        """Every tree's internal nodes as parallel arrays with global node and leaf ids.

        Long: one pass over the trees that keeps the node and leaf counters running; the arrays
        (feature, threshold, decision, children, leaf values, categorical bitsets) are filled
        together because each child id depends on the counters at that tree.
        """
        self.offsets: list[int] = []
        features, thresholds, decisions, lefts, rights, leaf_values, roots = [], [], [], [], [], [], []
        cat_words: dict[int, np.ndarray] = {}
        n_nodes = n_leaves = 0
        for tree in model.trees:
            self.offsets.append(n_nodes)
            if tree.num_leaves == 1:
                continue
            features.append(tree.feature)
            thresholds.append(tree.threshold)
            decisions.append(tree.decision_type)
            # children in global ids: internal >= 0, leaf -> -(global leaf id) - 1
            lefts.append(np.where(tree.left >= 0, tree.left + n_nodes, -(~tree.left + n_leaves) - 1))
            rights.append(np.where(tree.right >= 0, tree.right + n_nodes, -(~tree.right + n_leaves) - 1))
            leaf_values.append(tree.leaf_value)
            roots.append(n_nodes)
            for node in np.flatnonzero(tree.decision_type & CATEGORICAL_MASK):
                cat_words[n_nodes + int(node)] = tree.cat_bitset(int(node))
            n_nodes += tree.num_leaves - 1
            n_leaves += tree.num_leaves
        self.size = n_nodes
        self.child_left = _concat(lefts, np.intp)
        self.child_right = _concat(rights, np.intp)
        self.leaf_value = _concat(leaf_values, np.float64)
        self.roots = np.array(roots, np.intp)
        feature = _concat(features, np.intp)
        order = np.argsort(feature, kind="stable")
        self.rank = np.empty(n_nodes, np.intp)
        self.rank[order] = np.arange(n_nodes)
        self.feature = feature[order]
        self.threshold = _concat(thresholds, np.float64)[order]
        decision = _concat(decisions, np.int64)[order]
        present, starts = np.unique(self.feature, return_index=True)
        stops = [*starts[1:].tolist(), n_nodes] if n_nodes else []
        categorical = (decision & CATEGORICAL_MASK) > 0
        # a feature's splits are all numerical or all categorical
        segments = list(zip(present.tolist(), starts.tolist(), stops, strict=True))
        self.segments = [(f, a, b) for f, a, b in segments if not categorical[a]]
        self.cat_segments = [(f, a, b) for f, a, b in segments if categorical[a]]
        default_left = (decision & DEFAULT_LEFT_MASK) > 0
        missing = (decision >> 2) & 3
        numerical = (decision & CATEGORICAL_MASK) == 0
        nan_left = np.where(missing == MISSING_NONE, self.threshold >= 0.0, default_left)
        self.nan_left = np.flatnonzero(numerical & nan_left & (missing != MISSING_ZERO))
        self.zero = np.flatnonzero(numerical & (missing == MISSING_ZERO))
        self.nan_feature = self.feature[self.nan_left]
        self.zero_feature = self.feature[self.zero]
        self.zero_default = default_left[self.zero]
        self.zero_threshold = self.threshold[self.zero]
        cat_ids = sorted(cat_words, key=lambda g: self.rank[g])
        self.cat = np.array([self.rank[g] for g in cat_ids], np.intp)
        width = max((32 * len(w) for w in cat_words.values()), default=0) + 1
        self.cat_lut = np.zeros((len(cat_ids), width), bool)  # last column: "goes right"
        for r, g in enumerate(cat_ids):
            codes = np.arange(32 * len(cat_words[g]))
            self.cat_lut[r, :codes.size] = (cat_words[g][codes // 32] >> (codes % 32).astype(np.uint32)) & 1
        self.cat_feature = self.feature[self.cat]
        self.cat_row = np.arange(len(cat_ids), dtype=np.intp)
        # per categorical feature: its contiguous rows and their LUT rows, for a column gather
        first = {int(p): r for r, p in enumerate(self.cat)}
        self.cat_blocks = [(f, a, b, np.ascontiguousarray(self.cat_lut[first[a]:first[a] + b - a]))
                           for f, a, b in self.cat_segments]

    def go_left(self, XT: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(nodes, rows) bool from (features, rows) values, rows in :attr:`rank` order."""
        left = out if out is not None else np.empty((self.size, XT.shape[1]), bool)
        for feature, start, stop in self.segments:
            np.less_equal(XT[feature], self.threshold[start:stop, None], out=left[start:stop])
        if self.nan_left.size:
            nan = np.isnan(XT)
            if nan.any():
                left[self.nan_left] |= nan[self.nan_feature]
        if self.zero.size:
            v = XT[self.zero_feature]
            missing = (np.abs(v) <= ZERO_THRESHOLD) | np.isnan(v)
            left[self.zero] = np.where(missing, self.zero_default[:, None], v <= self.zero_threshold[:, None])
        for feature, start, stop, lut in self.cat_blocks:
            np.take(lut, self._category(XT[feature]), axis=1, out=left[start:stop])
        return left

    def go_left_one(self, x: np.ndarray) -> np.ndarray:
        """(nodes,) bool for one record: the same decisions with a single gather."""
        left: np.ndarray = x[self.feature] <= self.threshold
        if self.nan_left.size:
            nan = np.isnan(x)
            if nan.any():
                left[self.nan_left] |= nan[self.nan_feature]
        if self.zero.size:
            v = x[self.zero_feature]
            missing = (np.abs(v) <= ZERO_THRESHOLD) | np.isnan(v)
            left[self.zero] = np.where(missing, self.zero_default, v <= self.zero_threshold)
        if self.cat.size:
            left[self.cat] = self.cat_lut[self.cat_row, self._category(x[self.cat_feature])]
        return left

    def _category(self, v: np.ndarray) -> np.ndarray:
        """LUT column: the truncated code, or the last ("goes right") column for NaN/negative/unknown."""
        width = self.cat_lut.shape[1]
        code: np.ndarray = np.where((v > -1.0) & (v < width - 1), v, width - 1).astype(np.intp)
        return code

    def leaf_sum(self, left: np.ndarray) -> np.ndarray:
        """Per row, the sum of the leaf values reached in every tree (rows of ``left``: rank order)."""
        rows = left.shape[1]
        node = np.repeat(self.roots[:, None], rows, axis=1)
        column = np.arange(rows)[None, :]
        while (inside := node >= 0).any():
            current = np.where(inside, node, 0)
            goes = left[self.rank[current], column]
            step = np.where(goes, self.child_left[current], self.child_right[current])
            node = np.where(inside, step, node)
        total: np.ndarray = self.leaf_value[-node - 1].sum(axis=0)
        return total
