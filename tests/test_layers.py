"""The layers point one way (issue 15): the core (``cds``) imports neither ``service`` nor
``training``, and ``service`` imports nothing of ``training``; inside ``service``, the routes and
pages are reached only by the app, and the plumbing (``service.http``), the store and security
reach no route, page, EHR or serving code. The contracts are import-linter's
(``[tool.importlinter]`` in ``pyproject.toml``); these tests run them on the tree and show that
they catch a forbidden import, lazy ones inside functions included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cds", "service", "training")
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts of ``root/pyproject.toml`` on the packages under ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True,
                          text=True)


def _copy_tree(to: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, to / package,
                        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))


def test_the_layer_contracts_are_kept() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 6 kept, 0 broken." in out.stdout


def test_the_checker_catches_the_core_reaching_up_a_layer(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "cds" / "_reach_up.py").write_text(
        "def run() -> None:\n    from training.simulate import simulate  # lazy, still a violation\n"
        "    simulate(1, 1)\n")
    out = _lint(tmp_path)
    assert out.returncode == 1
    assert "service and training are above cds; cds imports neither BROKEN" in out.stdout
    assert "cds._reach_up -> training.simulate" in out.stdout
    assert "service is independent of training KEPT" in out.stdout


def test_the_checker_catches_the_service_importing_training(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "service" / "_reach_across.py").write_text("import training.tune  # noqa: F401\n")
    out = _lint(tmp_path)
    assert out.returncode == 1
    assert "service is independent of training BROKEN" in out.stdout
    assert "service._reach_across -> training.tune" in out.stdout


def test_the_checker_catches_the_store_reaching_up_to_a_route(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "service" / "store" / "_reach_up.py").write_text(
        "def run() -> None:\n    from service.routes.assessments import bp  # noqa: F401\n")
    out = _lint(tmp_path)
    assert out.returncode == 1
    assert "service routes are reached only by the app BROKEN" in out.stdout
    assert "service http plumbing and store import no routes, pages, EHR or serving code BROKEN" in out.stdout
    assert "service.store._reach_up -> service.routes.assessments" in out.stdout
    assert "service security imports no routes, pages, EHR or serving code KEPT" in out.stdout


def test_the_checker_catches_security_importing_a_page(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "service" / "security" / "_reach_up.py").write_text(
        "from service.ui import form_text  # noqa: F401\n")
    out = _lint(tmp_path)
    assert out.returncode == 1
    assert "service pages are reached only by the app BROKEN" in out.stdout
    assert "service security imports no routes, pages, EHR or serving code BROKEN" in out.stdout
    assert "service.security._reach_up -> service.ui.form_text" in out.stdout
