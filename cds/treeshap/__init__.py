"""Exact path-dependent TreeSHAP for LightGBM binary models, in numpy, at prediction speed.

``TreeExplainer(model).contributions(X)`` returns what LightGBM's
``Booster.predict(X, pred_contrib=True)`` returns: per record one contribution per feature and
the expected value E[f], summing to the raw score f(x). The modules, in the order data flows:

* :mod:`~cds.treeshap.model`: the text model (or ``dump_model()``) as plain arrays per tree.
* :mod:`~cds.treeshap.plan`: each tree cut into *blocks* whose contributions are precomputed
  tables indexed by a few bits of the record (the maths is in that module's docstring).
* :mod:`~cds.treeshap.program`: every block of a group of trees flattened into a few arrays,
  so a batch costs the same ~25 numpy calls whatever the number of trees.
* :mod:`~cds.treeshap.nodes`: every split condition of every tree for a batch ("goes left").
* :mod:`~cds.treeshap.explainer`: :class:`TreeExplainer`, the public entry (chunks, threads).
* :mod:`~cds.treeshap.compiled` and :mod:`~cds.treeshap.kernel`: the same tables laid out for
  a numba kernel that reads them record by record, for every explanation of deep trees (plans
  with quadrature blocks: a quarter to a sixth of the numpy engine's CPU) and for large batches
  of the others (a third, the same numbers to the bit); numba is imported on the first
  explanation that needs it, and the numpy engine stands in when it cannot load.

Worked example: one tree by hand
--------------------------------
Depth 2, 3 leaves; training counts (LightGBM's ``internal_count``/``leaf_count``) in brackets::

    node 0: x0 <= 0.5 [100]
    ├── leaf A = -1.0 [40]
    └── node 1: x1 <= 1.0 [60]
        ├── leaf B = 0.5 [20]
        └── leaf C = 2.0 [40]

E[f] = 0.4 (-1.0) + 0.2 (0.5) + 0.4 (2.0) = 0.5. Explain x = (1.0, 2.0): it goes right, right,
to leaf C, so f(x) = 2.0 and the contributions must sum to f(x) - E[f] = 1.5.

Each leaf with value v has *path weights* per feature j on its path: the zero fraction z_j (the
share of training records that follow the path's conditions on j: count ratios multiplied) and
the one fraction o_j (1 if x satisfies them, else 0). The leaf gives feature i

    phi_i = v (o_i - z_i) * integral_0^1 prod_{j != i} (z_j (1 - u) + o_j u) du

(the integral is the Shapley weights s!(k-1-s)!/k! summed over coalitions; with one other
feature it is (z_j + o_j) / 2, with none it is 1):

======  =====================  =====================================  =====================================
leaf    path weights           phi_0                                  phi_1
======  =====================  =====================================  =====================================
A -1.0  z0 = 0.4, o0 = 0       -1.0 (0 - 0.4) = 0.4                   (not on the path)
B  0.5  z0 = 0.6, o0 = 1;      0.5 (1 - 0.6) (1/3 + 0) / 2 = 1/30     0.5 (0 - 1/3) (0.6 + 1) / 2 = -2/15
        z1 = 1/3, o1 = 0
C  2.0  z0 = 0.6, o0 = 1;      2.0 (1 - 0.6) (2/3 + 1) / 2 = 2/3      2.0 (1 - 2/3) (0.6 + 1) / 2 = 8/15
        z1 = 2/3, o1 = 1
======  =====================  =====================================  =====================================

phi_0 = 0.4 + 1/30 + 2/3 = 1.1 and phi_1 = -2/15 + 8/15 = 0.4; 1.1 + 0.4 = 1.5 = f(x) - E[f].
(The same numbers from the Shapley definition with v(S) = E[f | x_S] along the tree: v({}) =
0.5, v({0}) = 1.5, v({1}) = 0.8, v({0, 1}) = 2.0, so phi_0 = ((1.5 - 0.5) + (2.0 - 0.8)) / 2.)

The engine never walks the tree per record. The planner sees that this tree's leaves depend on
two bits (node 0 goes left, node 1 goes left) and makes it one *byte block*: a table of 4 rows
(the bit combinations) by 2 columns (the features), filled with the sums above once, at load.
Explaining x is then: evaluate both conditions (bits 0, 0), pack them into the index 0, read
row 0 of the table. The doctest below runs this example through the engine:

>>> tree = {"num_leaves": 3, "tree_structure": {
...     "split_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "<=",
...     "default_left": True, "missing_type": "None", "internal_count": 100,
...     "left_child": {"leaf_index": 0, "leaf_value": -1.0, "leaf_count": 40},
...     "right_child": {
...         "split_index": 1, "split_feature": 1, "threshold": 1.0, "decision_type": "<=",
...         "default_left": True, "missing_type": "None", "internal_count": 60,
...         "left_child": {"leaf_index": 1, "leaf_value": 0.5, "leaf_count": 20},
...         "right_child": {"leaf_index": 2, "leaf_value": 2.0, "leaf_count": 40}}}}
>>> explainer = TreeExplainer.from_model_dump({"max_feature_idx": 1, "tree_info": [tree]})
>>> [round(v, 12) for v in explainer.contributions([[1.0, 2.0]])[0].tolist()]  # phi_0, phi_1, E[f]
[1.1, 0.4, 0.5]
>>> float(explainer.predict_raw([[1.0, 2.0]])[0])
2.0

To change the engine: the exact maths and the choice of blocks live in :mod:`.plan` (its
``TreePlanner._plan`` cost model decides byte versus quadrature blocks); how tables are read
for a batch lives in :mod:`.program` (numpy) and :mod:`.kernel` (numba); LightGBM's split
semantics (missing values, categories) in :mod:`.nodes`. ``tests/test_treeshap.py`` checks
every change, on both engines, against LightGBM to 1e-9.
"""

from .explainer import TreeExplainer

__all__ = ["TreeExplainer"]
