"""LightGBM trees as plain arrays, read from the native text model or from ``dump_model()``.

A :class:`ParsedTree` keeps LightGBM's own layout (``include/LightGBM/tree.h``): internal nodes
``0..num_leaves-2``, a child ``c >= 0`` is an internal node and ``c < 0`` is leaf ``~c``;
``decision_type`` bit 0 marks a categorical split, bit 1 ``default_left``, bits 2-3 the missing
type (0 None, 1 Zero, 2 NaN); a categorical node's threshold is the index of its bitset in
``cat_boundaries``/``cat_threshold``. Parsing the text model needs no LightGBM at all, so the
serving path reads ``model.txt`` directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CATEGORICAL_MASK = 1
DEFAULT_LEFT_MASK = 2
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING_CODES = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}


@dataclass
class ParsedTree:
    """One tree in LightGBM's array layout (see the module docstring)."""

    leaf_value: np.ndarray
    leaf_count: np.ndarray
    left: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    right: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    feature: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    threshold: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    decision_type: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    internal_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    cat_boundaries: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    cat_threshold: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))

    @property
    def num_leaves(self) -> int:
        return int(self.leaf_value.shape[0])

    def expected_value(self) -> float:
        """LightGBM's ``Tree::ExpectedValue``: leaf values weighted by training counts."""
        if self.num_leaves == 1:
            return float(self.leaf_value[0])
        total = float(self.internal_count[0])
        value = 0.0
        for count, leaf in zip(self.leaf_count.tolist(), self.leaf_value.tolist(), strict=True):
            value += (count / total) * leaf
        return value

    def cat_bitset(self, node: int) -> np.ndarray:
        """The uint32 words of a categorical node's bitset (bit ``c`` set: category ``c`` goes left)."""
        index = int(self.threshold[node])
        start, stop = int(self.cat_boundaries[index]), int(self.cat_boundaries[index + 1])
        return self.cat_threshold[start:stop]


@dataclass
class ParsedModel:
    """The trees of a binary (one tree per iteration) LightGBM model and its column count."""

    trees: list[ParsedTree]
    n_features: int
    feature_names: list[str]


def _numbers(text: str, dtype: type) -> np.ndarray:
    return np.array([float(t) for t in text.split()], dtype=np.float64).astype(dtype)


def _check_supported(num_class: int, per_iteration: int, average_output: bool, linear: bool) -> None:
    if num_class != 1 or per_iteration != 1:
        raise ValueError("TreeExplainer supports binary/regression models (one tree per iteration), "
                         f"not num_class={num_class}")
    if average_output:
        raise ValueError("TreeExplainer does not support averaged (random forest) models")
    if linear:
        raise ValueError("TreeExplainer does not support linear trees")


def parse_model_string(text: str) -> ParsedModel:
    """Parse LightGBM's native text model (``Booster.model_to_string()`` / ``model.txt``)."""
    header: dict[str, str] = {}
    trees: list[ParsedTree] = []
    block: dict[str, str] | None = None
    blocks: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line == "end of trees":
            break
        if line.startswith("Tree="):
            block = {}
            blocks.append(block)
            continue
        if "=" not in line:
            if line == "average_output":
                header["average_output"] = "1"
            continue
        key, _, value = line.partition("=")
        (block if block is not None else header)[key] = value
    if "max_feature_idx" not in header:
        raise ValueError("not a LightGBM text model: no max_feature_idx")
    _check_supported(int(header.get("num_class", "1")), int(header.get("num_tree_per_iteration", "1")),
                     "average_output" in header,
                     any(b.get("is_linear", "0") not in ("0", "") for b in blocks))
    for b in blocks:
        num_leaves = int(b["num_leaves"])
        leaf_value = _numbers(b["leaf_value"], np.float64)
        leaf_count = _numbers(b.get("leaf_count", ""), np.float64)
        if num_leaves == 1:
            trees.append(ParsedTree(leaf_value[:1], leaf_count[:1] if leaf_count.size else np.ones(1)))
            continue
        num_cat = int(b.get("num_cat", "0"))
        tree = ParsedTree(
            leaf_value=leaf_value,
            leaf_count=leaf_count,
            left=_numbers(b["left_child"], np.int64),
            right=_numbers(b["right_child"], np.int64),
            feature=_numbers(b["split_feature"], np.int64),
            threshold=_numbers(b["threshold"], np.float64),
            decision_type=_numbers(b.get("decision_type", "0 " * (num_leaves - 1)), np.int64),
            internal_count=_numbers(b["internal_count"], np.float64),
        )
        if num_cat > 0:
            tree.cat_boundaries = _numbers(b["cat_boundaries"], np.int64)
            tree.cat_threshold = np.array([int(t) for t in b["cat_threshold"].split()], dtype=np.uint32)
        trees.append(tree)
    names = header.get("feature_names", "").split()
    return ParsedModel(trees, int(header["max_feature_idx"]) + 1, names)


def _bitset(categories: list[int]) -> list[int]:
    words = [0] * (max(categories) // 32 + 1 if categories else 1)
    for c in categories:
        words[c // 32] |= 1 << (c % 32)
    return words


def _tree_from_dump(info: dict[str, Any]) -> ParsedTree:
    root = info["tree_structure"]
    num_leaves = int(info["num_leaves"])
    leaf_value = np.zeros(num_leaves)
    leaf_count = np.zeros(num_leaves)
    if "leaf_value" in root:
        leaf_value[0] = root["leaf_value"]
        leaf_count[0] = root.get("leaf_count", 1)
        return ParsedTree(leaf_value, leaf_count)
    m = num_leaves - 1
    left = np.zeros(m, np.int64)
    right = np.zeros(m, np.int64)
    feature = np.zeros(m, np.int64)
    threshold = np.zeros(m)
    decision = np.zeros(m, np.int64)
    internal_count = np.zeros(m)
    boundaries = [0]
    words: list[int] = []

    def child_code(node: dict[str, Any]) -> int:
        return int(node["split_index"]) if "split_index" in node else ~int(node["leaf_index"])

    stack = [root]
    while stack:
        node = stack.pop()
        if "leaf_index" in node:
            if "leaf_coeff" in node:
                raise ValueError("TreeExplainer does not support linear trees")
            leaf_value[node["leaf_index"]] = node["leaf_value"]
            leaf_count[node["leaf_index"]] = node["leaf_count"]
            continue
        i = int(node["split_index"])
        left[i], right[i] = child_code(node["left_child"]), child_code(node["right_child"])
        feature[i] = node["split_feature"]
        internal_count[i] = node["internal_count"]
        code = _MISSING_CODES[node.get("missing_type", "None")] << 2
        code |= DEFAULT_LEFT_MASK if node.get("default_left") else 0
        if node["decision_type"] == "==":
            code |= CATEGORICAL_MASK
            cats = [int(c) for c in str(node["threshold"]).split("||") if c != ""]
            threshold[i] = len(boundaries) - 1
            words.extend(_bitset(cats))
            boundaries.append(len(words))
        else:
            threshold[i] = float(node["threshold"])
            if math.isnan(threshold[i]):
                raise ValueError(f"tree {info.get('tree_index')}: NaN threshold at node {i}")
        decision[i] = code
        stack.extend((node["left_child"], node["right_child"]))
    return ParsedTree(leaf_value, leaf_count, left, right, feature, threshold, decision, internal_count,
                      np.array(boundaries, np.int64), np.array(words, np.uint32))


def parse_model_dump(dump: dict[str, Any]) -> ParsedModel:
    """Parse ``Booster.dump_model()`` (the JSON form of the same trees)."""
    _check_supported(int(dump.get("num_class", 1)), int(dump.get("num_tree_per_iteration", 1)),
                     bool(dump.get("average_output", False)), linear=False)
    trees = [_tree_from_dump(info) for info in dump["tree_info"]]
    return ParsedModel(trees, int(dump["max_feature_idx"]) + 1, list(dump.get("feature_names", [])))
