"""cds.treeshap: exact LightGBM TreeSHAP in numpy, checked against LightGBM and shap.

Fixture models are trained here on small seeded data (well under a second each) in the shapes
that change the explainer's work: stumps to 6-deep trees, deep leaf-wise trees (quadrature
blocks), categorical splits with several levels, NaN going left and right, zero-as-missing, a
single-leaf tree in the ensemble and monotone constraints. Both engines are checked against
LightGBM: the numpy engine and the compiled kernel (numba), whatever ``auto`` would pick.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

import cds.treeshap.plan as plan
from cds.treeshap import TreeExplainer
from cds.treeshap import explainer as treeshap

EXACT = 1e-9
N_FEATURES = 8
CATEGORICAL = [6, 7]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixed columns: NaN-bearing, exact zeros, integers, a 3-level and a 12-level category."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([
        rng.normal(size=n),                                  # 0: missing in training
        rng.normal(size=n),                                  # 1
        np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),  # 2: many exact zeros
        rng.uniform(-1, 1, size=n),                          # 3
        rng.integers(0, 11, size=n).astype(float),           # 4: small integer
        rng.normal(size=n),                                  # 5
        rng.integers(0, 3, size=n).astype(float),            # 6: category, 3 levels
        rng.integers(0, 12, size=n).astype(float),           # 7: category, 12 levels
    ])
    X[rng.random(n) < 0.15, 0] = np.nan
    X[rng.random(n) < 0.1, 6] = np.nan
    signal = (np.nan_to_num(X[:, 0], nan=1.0) + X[:, 1] - 0.5 * X[:, 3] + 0.2 * X[:, 4]
              + (X[:, 2] > 0) + np.isin(X[:, 7], [1, 4, 5, 9]) - (X[:, 6] == 1))
    y = (signal + rng.normal(size=n) > 1.0).astype(float)
    return X, y


def _train(params: dict[str, Any], rounds: int = 25, seed: int = 0) -> lgb.Booster:
    X, y = _data(1500, seed)
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": seed,
            "min_data_per_group": 10, "cat_smooth": 1.0, "deterministic": True}
    data = lgb.Dataset(X, y, categorical_feature=CATEGORICAL, free_raw_data=False)
    return lgb.train({**base, **params}, data, num_boost_round=rounds)


def _scoring_rows(seed: int = 1) -> np.ndarray:
    """Fresh records plus edge values: NaN everywhere, zeros, odd and unseen category codes."""
    X, _ = _data(400, seed)
    edges = np.zeros((12, N_FEATURES))
    edges[0] = np.nan
    edges[2, 6:] = [-1.0, 2.7]
    edges[3, 6:] = [99.0, -0.5]
    edges[4, 6:] = [1e10, np.nan]
    edges[5, :6] = [np.nan, -3.0, 1e-40, 5.0, 50.0, -1e-36]
    edges[6, :6] = [np.inf, -np.inf, np.nan, np.inf, -np.inf, np.nan]
    edges[7:, 6] = [0, 1, 2, 3, np.nan]
    edges[7:, 7] = [0, 5, 11, 12, 7.99]
    return np.vstack([X, edges])


SHAPES: dict[str, dict[str, Any]] = {
    "stumps": {"num_leaves": 2},
    "depth2": {"num_leaves": 4, "max_depth": 2},
    "depth3": {"num_leaves": 7, "max_depth": 3},
    "depth6_31_leaves": {"num_leaves": 31, "max_depth": 6, "min_data_in_leaf": 5},
    "deep_leaf_wise": {"num_leaves": 31, "min_data_in_leaf": 3},
    "one_hot_categories": {"num_leaves": 8, "max_cat_to_onehot": 16},
    "zero_as_missing": {"num_leaves": 15, "zero_as_missing": True},
    "monotone": {"num_leaves": 12, "monotone_constraints": [1, 1, 0, -1, 1, 0, 0, 0]},
    "no_missing_handling": {"num_leaves": 10, "use_missing": False},
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def booster(request: pytest.FixtureRequest) -> lgb.Booster:
    return _train(SHAPES[request.param])


@pytest.fixture(params=["numpy", "numba"])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "numba":
        pytest.importorskip("numba")
    return str(request.param)


def test_contributions_match_lightgbm_pred_contrib(booster: lgb.Booster, engine: str) -> None:
    X = _scoring_rows()
    explainer = TreeExplainer.from_model_string(booster.model_to_string(), engine=engine)
    assert explainer.engine == engine
    ours = explainer.contributions(X)
    assert ours.shape == (X.shape[0], N_FEATURES + 1)
    assert np.abs(ours - booster.predict(X, pred_contrib=True)).max() < EXACT


def test_contributions_add_up_to_the_raw_score(booster: lgb.Booster, engine: str) -> None:
    X = _scoring_rows()
    explainer = TreeExplainer.from_model_string(booster.model_to_string(), engine=engine)
    raw = booster.predict(X, raw_score=True)
    assert np.abs(explainer.contributions(X).sum(axis=1) - raw).max() < EXACT
    assert np.abs(explainer.predict_raw(X) - raw).max() < EXACT


def test_model_dump_and_text_model_give_the_same_explainer(booster: lgb.Booster) -> None:
    X = _scoring_rows()
    from_text = TreeExplainer.from_model_string(booster.model_to_string()).contributions(X)
    from_dump = TreeExplainer.from_model_dump(booster.dump_model()).contributions(X)
    assert np.abs(from_text - from_dump).max() < 1e-12


def test_single_records_small_and_threaded_batches_agree(booster: lgb.Booster, engine: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treeshap, "MAX_CHUNK_ROWS", 16)  # many chunks: 3 threads get work
    monkeypatch.setattr(treeshap, "KERNEL_CHUNK_ROWS", 16)
    monkeypatch.setattr(treeshap, "KERNEL_MIN_ROWS", 16)
    monkeypatch.setattr(treeshap, "KERNEL_THREAD_READS", 1)
    X = _scoring_rows()
    explainer = TreeExplainer.from_model_string(booster.model_to_string(), engine=engine)
    batch = explainer.contributions(X, n_threads=1)
    singles = np.vstack([explainer.contributions(X[i]) for i in range(0, X.shape[0], 7)])
    assert np.abs(singles - batch[::7]).max() < 1e-12
    assert np.abs(explainer.contributions(X[:3]) - batch[:3]).max() < 1e-12
    assert np.abs(explainer.contributions(X, n_threads=3) - batch).max() == 0.0


def test_a_single_leaf_tree_only_moves_the_expected_value(engine: str) -> None:
    X, y = _data(1500, 0)
    data = lgb.Dataset(X, y, categorical_feature=CATEGORICAL, free_raw_data=False)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_per_group": 10}
    constant = lgb.train({**params, "min_data_in_leaf": 10_000}, data, num_boost_round=1)
    booster = lgb.train({**params, "num_leaves": 6}, data, num_boost_round=10, init_model=constant)
    text = booster.model_to_string()
    assert "num_leaves=1\n" in text
    Xs = _scoring_rows()
    explainer = TreeExplainer.from_model_string(text, engine=engine)
    ours = explainer.contributions(Xs)
    assert np.abs(ours - booster.predict(Xs, pred_contrib=True)).max() < EXACT
    assert np.abs(explainer.predict_raw(Xs) - booster.predict(Xs, raw_score=True)).max() < EXACT
    constant_only = TreeExplainer.from_model_string(constant.model_to_string(),
                                                    engine=engine).contributions(Xs)
    assert np.all(constant_only[:, :-1] == 0.0)
    assert np.allclose(constant_only[:, -1], constant.predict(Xs, raw_score=True))


def test_paths_with_many_features_use_quadrature_blocks_exactly(engine: str) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 20))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X) @ rng.normal(size=20) + rng.normal(size=3000) > 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 63,
                         "min_data_in_leaf": 2}, lgb.Dataset(X, y), num_boost_round=8)
    explainer = TreeExplainer.from_model_string(booster.model_to_string(), engine=engine)
    numpy_engine = TreeExplainer.from_model_string(booster.model_to_string(), engine="numpy")
    assert numpy_engine._programs[0].xcols.unit.size > 0, "expected paths too long for a byte table"
    rows = rng.normal(size=(300, 20))
    rows[rng.random(rows.shape) < 0.05] = np.nan
    ours = explainer.contributions(rows)
    assert np.abs(ours - booster.predict(rows, pred_contrib=True)).max() < EXACT
    assert np.abs(explainer.contributions(rows[0]) - ours[:1]).max() < 1e-12


def test_quadrature_blocks_with_many_chunks_are_exact(engine: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # tiny tables force every block through quadrature, with several chunks per path
    monkeypatch.setattr(plan, "BYTE_BITS", 2)
    monkeypatch.setattr(plan, "SUBTREE_BITS", 2)
    monkeypatch.setattr(plan, "CHUNK_FEATURES", 1)
    booster = _train(SHAPES["depth6_31_leaves"], rounds=10)
    explainer = TreeExplainer.from_model_string(booster.model_to_string(), engine=engine)
    numpy_engine = TreeExplainer.from_model_string(booster.model_to_string(), engine="numpy")
    assert numpy_engine._programs[0].subtree.size, "expected blocks of three or more chunks"
    X = _scoring_rows()
    ours = explainer.contributions(X)
    assert np.abs(ours - booster.predict(X, pred_contrib=True)).max() < EXACT
    assert np.abs(np.vstack([explainer.contributions(x) for x in X[:20]]) - ours[:20]).max() < 1e-12


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_matches_shap_tree_explainer_on_a_numerical_model() -> None:
    shap = pytest.importorskip("shap")
    X, y = _data(1500, 0)
    numeric = X[:, :6]
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 15},
                        lgb.Dataset(numeric, y), num_boost_round=20)
    rows = _scoring_rows()[:400, :6]
    reference = shap.TreeExplainer(booster)
    theirs = reference.shap_values(rows)
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    explainer = TreeExplainer.from_model_string(booster.model_to_string())
    ours = explainer.contributions(rows)
    assert np.abs(ours[:, :-1] - theirs).max() < 1e-6
    assert abs(explainer.expected_value - float(np.ravel(reference.expected_value)[-1])) < 1e-6


def test_wrong_column_count_is_refused() -> None:
    explainer = TreeExplainer.from_model_string(_train(SHAPES["stumps"], rounds=2).model_to_string())
    with pytest.raises(ValueError, match="expected a"):
        explainer.contributions(np.zeros((3, N_FEATURES + 1)))


def test_multiclass_models_are_refused() -> None:
    X, _ = _data(300, 0)
    y = np.arange(300) % 3
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(X, y), num_boost_round=2)
    with pytest.raises(ValueError, match="num_class"):
        TreeExplainer.from_model_string(booster.model_to_string())


def test_importing_the_explainer_loads_no_heavy_library() -> None:
    code = ("import json, sys; import cds.treeshap; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('lightgbm', 'shap', 'numba', 'dask', 'matplotlib'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


@pytest.mark.shipped
def test_shipped_model_explanations_match_lightgbm(engine: str) -> None:
    from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS, column_feature
    from cds.model import MODEL_FILE, resolve
    from training.dataset import prepare
    from training.simulate import simulate

    text = (resolve("production") / MODEL_FILE).read_text()
    booster = lgb.Booster(model_str=text)
    X = prepare(simulate(20_000, 7)).X
    # every categorical level, and a missing value, in every column
    extra = np.repeat(X[:1], 2 * len(MODEL_COLUMNS) + 8, axis=0)
    for c, column in enumerate(MODEL_COLUMNS):
        extra[c, c] = np.nan
        if column in CATEGORICAL_COLUMNS:
            levels = len(column_feature(column).allowed)
            extra[len(MODEL_COLUMNS):len(MODEL_COLUMNS) + levels, c] = np.arange(levels)
    X = np.vstack([X, extra])
    explainer = TreeExplainer.from_model_string(text, engine=engine)
    ours = explainer.contributions(X)
    assert np.abs(ours - booster.predict(X, pred_contrib=True, num_threads=2)).max() < EXACT
    assert np.abs(ours.sum(axis=1) - booster.predict(X, raw_score=True)).max() < EXACT


def test_the_worked_example_in_the_package_docstring_gives_the_hand_numbers() -> None:
    import doctest

    import cds.treeshap

    result = doctest.testmod(cds.treeshap, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def _hand_tree_values(x0: float, x1: float) -> dict[frozenset[int], float]:
    """v(S) = E[f | x_S] along the docstring's tree, unknown features split by training counts."""
    def right_subtree(known1: bool) -> float:
        return (0.5 if x1 <= 1.0 else 2.0) if known1 else (20 * 0.5 + 40 * 2.0) / 60

    def value(known0: bool, known1: bool) -> float:
        if known0:
            return -1.0 if x0 <= 0.5 else right_subtree(known1)
        return 0.4 * -1.0 + 0.6 * right_subtree(known1)

    return {frozenset(s): value(0 in s, 1 in s) for s in ([], [0], [1], [0, 1])}


@pytest.mark.parametrize("x", [(1.0, 2.0), (0.0, 0.0), (0.0, 5.0), (3.0, -1.0)])
def test_the_worked_example_agrees_with_the_shapley_definition(x: tuple[float, float]) -> None:
    import doctest

    import cds.treeshap

    namespace: dict[str, Any] = {"TreeExplainer": TreeExplainer}
    for example in doctest.DocTestParser().get_examples(cds.treeshap.__doc__ or "")[:2]:
        exec(example.source, namespace)  # the docstring's tree and explainer
    explainer = namespace["explainer"]
    v = _hand_tree_values(*x)
    phi0 = ((v[frozenset([0])] - v[frozenset()]) + (v[frozenset([0, 1])] - v[frozenset([1])])) / 2
    phi1 = ((v[frozenset([1])] - v[frozenset()]) + (v[frozenset([0, 1])] - v[frozenset([0])])) / 2
    ours = explainer.contributions(np.array([x]))[0]
    assert np.abs(ours - [phi0, phi1, v[frozenset()]]).max() < 1e-12


def _deep_model(seed: int, leaves: int, rounds: int) -> tuple[lgb.Booster, np.ndarray]:
    """A leaf-wise model of unlimited depth on numeric columns with NaNs, and fresh rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2500, 12))
    X[rng.random(X.shape) < 0.08] = np.nan
    y = (np.nan_to_num(X) @ rng.normal(size=12) + 1.5 * rng.normal(size=2500) > 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "seed": seed,
                         "num_leaves": leaves, "min_data_in_leaf": 2, "max_depth": -1},
                        lgb.Dataset(X, y), num_boost_round=rounds)
    rows = rng.normal(size=(300, 12))
    rows[rng.random(rows.shape) < 0.08] = np.nan
    rows[:12] = np.where(np.eye(12, dtype=bool), np.nan, rows[:12])  # each column missing once
    return booster, rows


@pytest.mark.parametrize(("seed", "leaves"), [(11, 31), (12, 63), (13, 63)])
def test_random_deep_models_match_pred_contrib(seed: int, leaves: int, engine: str) -> None:
    booster, rows = _deep_model(seed, leaves, rounds=6)
    depth = max(_depth(t["tree_structure"]) for t in booster.dump_model()["tree_info"])
    assert depth >= 10, "expected deep leaf-wise trees"
    explainer = TreeExplainer.from_model_string(booster.model_to_string(), engine=engine)
    ours = explainer.contributions(rows)
    assert np.abs(ours - booster.predict(rows, pred_contrib=True)).max() < EXACT
    assert np.abs(explainer.contributions(rows[5]) - ours[5:6]).max() < 1e-12


def _depth(node: dict[str, Any]) -> int:
    if "leaf_index" in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def test_trees_explained_in_many_groups_agree_with_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    booster, rows = _deep_model(14, 63, rounds=8)
    text = booster.model_to_string()
    whole = TreeExplainer.from_model_string(text, engine="numpy")  # small enough for one group
    monkeypatch.setattr(treeshap, "SCRATCH_BYTES", 1 << 20)  # "too big": grouped
    monkeypatch.setattr(treeshap, "GROUP_SCRATCH_BYTES", 1)  # a group per tree
    grouped = TreeExplainer.from_model_string(text, engine="numpy")
    assert len(grouped._programs) == 8 and len(whole._programs) == 1
    assert np.abs(grouped.contributions(rows) - whole.contributions(rows)).max() < 1e-12
    assert np.abs(grouped.contributions(rows) - booster.predict(rows, pred_contrib=True)).max() < EXACT
    assert np.abs(grouped.contributions(rows[:2]) - whole.contributions(rows[:2])).max() < 1e-12
