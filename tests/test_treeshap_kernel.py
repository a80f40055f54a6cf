"""cds.treeshap's compiled kernel (numba): when it is chosen, when numba is loaded, and the
numpy engine standing in when it cannot load. Exactness of both engines against LightGBM is
in ``tests/test_treeshap.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

import cds.treeshap.compiled as compiled
from cds.treeshap import TreeExplainer
from cds.treeshap import explainer as treeshap

pytest.importorskip("numba")

EXACT = 1e-9


def _model(leaves: int, max_depth: int, seed: int = 3) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 20))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X) @ rng.normal(size=20) + rng.normal(size=3000) > 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "seed": seed,
                         "num_leaves": leaves, "max_depth": max_depth, "min_data_in_leaf": 2},
                        lgb.Dataset(X, y), num_boost_round=5)
    rows = rng.normal(size=(200, 20))
    rows[rng.random(rows.shape) < 0.05] = np.nan
    return booster, rows


@pytest.fixture(scope="module")
def deep() -> tuple[lgb.Booster, np.ndarray]:
    """Leaf-wise trees of unlimited depth: paths too long for byte tables."""
    return _model(63, -1)


@pytest.fixture(scope="module")
def shallow() -> tuple[lgb.Booster, np.ndarray]:
    """Depth-3 trees: byte tables only, like the shipped model."""
    return _model(8, 3)


def test_auto_picks_the_kernel_for_deep_trees_at_every_size(
        deep: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, rows = deep
    explainer = TreeExplainer.from_model_string(booster.model_to_string())
    assert explainer.engine == "numba" and not explainer._programs  # no numpy tables at all
    one = explainer.contributions(rows[:1])
    assert np.abs(one - booster.predict(rows[:1], pred_contrib=True)).max() < EXACT


def test_byte_table_models_use_the_kernel_for_large_batches_only(
        shallow: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, rows = shallow
    explainer = TreeExplainer.from_model_string(booster.model_to_string())
    assert explainer.engine == "numba"
    explainer.contributions(rows[:treeshap.KERNEL_BATCH_ROWS - 1])
    assert explainer._compiled is None, "a small batch built the kernel's layout"
    batch = np.vstack([rows] * (treeshap.KERNEL_BATCH_ROWS // len(rows) + 1))
    ours = explainer.contributions(batch)
    assert explainer._compiled is not None
    assert np.abs(ours - booster.predict(batch, pred_contrib=True)).max() < EXACT


def test_on_byte_tables_both_engines_give_the_same_numbers_to_the_bit(
        shallow: tuple[lgb.Booster, np.ndarray]) -> None:
    """Same sums in the same order: switching engine changes no byte of an answer."""
    booster, rows = shallow
    text = booster.model_to_string()
    numpy_engine = TreeExplainer.from_model_string(text, engine="numpy").contributions(rows)
    assert np.array_equal(TreeExplainer.from_model_string(text, engine="numba").contributions(rows),
                          numpy_engine)


def test_without_numba_installed_auto_uses_numpy(deep: tuple[lgb.Booster, np.ndarray],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treeshap, "numba_available", lambda: False)
    booster, rows = deep
    explainer = TreeExplainer.from_model_string(booster.model_to_string())
    assert explainer.engine == "numpy"
    assert np.abs(explainer.contributions(rows) - booster.predict(rows, pred_contrib=True)).max() < EXACT


def test_a_kernel_that_fails_to_load_leaves_the_numpy_engine_explaining(
        deep: tuple[lgb.Booster, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    booster, rows = deep
    explainer = TreeExplainer.from_model_string(booster.model_to_string())
    assert explainer.engine == "numba"
    monkeypatch.setattr(treeshap, "load_kernel", lambda: None)
    ours = explainer.contributions(rows)
    assert explainer.engine == "numpy"
    assert np.abs(ours - booster.predict(rows, pred_contrib=True)).max() < EXACT
    assert np.abs(explainer.contributions(rows[:2]) - ours[:2]).max() < 1e-12


def _modules_after(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent)
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


_LOADED = "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'numba')))\n"


def test_numba_is_loaded_on_a_deep_models_first_explanation_not_before(
        deep: tuple[lgb.Booster, np.ndarray], tmp_path: Path) -> None:
    booster, rows = deep
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    np.save(tmp_path / "rows.npy", rows)
    setup = ("import json, sys; import numpy as np; from cds.treeshap import TreeExplainer\n"
             f"e = TreeExplainer.from_model_string(open({str(tmp_path / 'model.txt')!r}).read())\n"
             f"rows = np.load({str(tmp_path / 'rows.npy')!r})\n")
    assert _modules_after(setup + _LOADED) == []
    assert "numba" in _modules_after(setup + "e.contributions(rows[:1])\n" + _LOADED)


def test_a_byte_table_model_loads_numba_only_for_a_large_batch(
        shallow: tuple[lgb.Booster, np.ndarray], tmp_path: Path) -> None:
    """The service explains a record's few rows: on a shallow model, never numba."""
    booster, rows = shallow
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    np.save(tmp_path / "rows.npy", np.vstack([rows] * 2))
    setup = ("import json, sys; import numpy as np; from cds.treeshap import TreeExplainer\n"
             f"e = TreeExplainer.from_model_string(open({str(tmp_path / 'model.txt')!r}).read())\n"
             f"rows = np.load({str(tmp_path / 'rows.npy')!r})\n"
             "e.contributions(rows[:3]); e.contributions(rows[:200])\n")
    assert _modules_after(setup + _LOADED) == []
    assert "numba" in _modules_after(setup + "e.contributions(rows)\n" + _LOADED)


def test_without_numba_the_forced_kernel_falls_back_to_numpy(deep: tuple[lgb.Booster, np.ndarray],
                                                             tmp_path: Path) -> None:
    booster, rows = deep
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    np.save(tmp_path / "rows.npy", rows)
    code = ("import json, sys; sys.modules['numba'] = None  # import numba fails\n"
            "import numpy as np; from cds.treeshap import TreeExplainer\n"
            f"e = TreeExplainer.from_model_string(open({str(tmp_path / 'model.txt')!r}).read(), "
            "engine='numba')\n"
            f"out = e.contributions(np.load({str(tmp_path / 'rows.npy')!r}))\n"
            f"np.save({str(tmp_path / 'out.npy')!r}, out); print(json.dumps([e.engine]))\n")
    assert _modules_after(code) == ["numpy"]
    ours = np.load(tmp_path / "out.npy")
    assert np.abs(ours - booster.predict(rows, pred_contrib=True)).max() < EXACT


def test_the_kernel_compiles_where_numba_cannot_cache() -> None:
    from cds.treeshap.kernel import _jit

    namespace: dict[str, object] = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)  # no source file: nowhere to cache
    jitted = _jit(namespace["add_one"])  # type: ignore[arg-type]
    assert jitted(41) == 42


def test_the_kernel_is_loaded_once_per_process() -> None:
    assert compiled.load_kernel() is compiled.load_kernel() is not None


def test_threads_and_chunks_of_the_kernel_give_the_same_numbers(
        deep: tuple[lgb.Booster, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    booster, rows = deep
    explainer = TreeExplainer.from_model_string(booster.model_to_string())
    whole = explainer.contributions(rows, n_threads=1)
    monkeypatch.setattr(treeshap, "KERNEL_CHUNK_ROWS", 7)
    monkeypatch.setattr(treeshap, "KERNEL_MIN_ROWS", 7)
    monkeypatch.setattr(treeshap, "KERNEL_THREAD_READS", 1)  # a thread per 7 rows
    pools: list[int] = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            pools.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(treeshap, "ThreadPoolExecutor", Pool)
    assert np.array_equal(explainer.contributions(rows, n_threads=3), whole)
    assert pools == [3]
    assert np.array_equal(np.vstack([explainer.contributions(r) for r in rows[:5]]), whole[:5])
