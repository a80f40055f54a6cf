"""Progress lines (issue 13): every long step of the data scientist's commands says what it is
doing, with "n of N" where it loops and the elapsed time, on stderr only; ``--quiet`` silences
them and stdout (the data) is byte-identical either way."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from training.cli import main
from training.simulate import simulate

from .test_monitor import months
from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["months", "retrain_data", "retrain_root"]

LINE = re.compile(r"^\[\s*\d+\.\d s\] (.*)$", re.M)


def _steps(text: str) -> list[str]:
    """The progress lines' messages, warnings left out (those are said under --quiet too)."""
    return [m for m in LINE.findall(text) if not m.lstrip().lower().startswith("warning")]


def _loud_and_quiet(capsys: pytest.CaptureFixture[str],
                    args: Callable[[str], list[str]]) -> list[str]:
    """Run a command (``args(tag)``: the arguments for a run tagged ``loud`` or ``quiet``) with
    and without --quiet; check stdout and the exit status are the same and no progress line
    reaches stdout or a quiet stderr; return the loud run's progress messages."""
    code = main(args("loud"))
    loud = capsys.readouterr()
    quiet_code = main([*args("quiet"), "--quiet"])
    quiet = capsys.readouterr()
    assert code == quiet_code == 0
    assert loud.out == quiet.out
    assert not LINE.search(loud.out)
    assert _steps(quiet.err) == []
    steps = _steps(loud.err)
    elapsed = [float(s) for s in re.findall(r"^\[\s*(\d+\.\d) s\]", loud.err, re.M)]
    assert elapsed == sorted(elapsed)
    return steps


def test_simulate_says_its_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = _loud_and_quiet(capsys, lambda tag: ["simulate", "--n", "500", "--seed", "3",
                                                 "--out", str(tmp_path / f"{tag}.parquet")])
    assert steps[0] == "simulating 500 people (seed 3)" and steps[-1].startswith("writing ")


def test_train_says_each_step_and_tuning_candidate(retrain_data: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    steps = _loud_and_quiet(capsys, lambda tag: [
        "train", "--data", str(retrain_data / "train_a.parquet"), "--out",
        str(tmp_path / tag / "gmed-driver" / "9.0.0"), "--tune", "--tune-trials", "2",
        "--threads", "1"])
    assert steps[0].startswith("reading and validating ")
    assert any(s.startswith("fitting on ") and "tuning: up to 2 trials" in s for s in steps)
    assert any("candidate 2/2" in s for s in steps)
    assert any(s.startswith("no --eval-data: evaluating") for s in steps)


def test_evaluate_says_each_model_and_the_bootstrap(retrain_root: Path, retrain_data: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    steps = _loud_and_quiet(capsys, lambda tag: [
        "evaluate", "--model", "1.1.0", "--root", str(retrain_root), "--data",
        str(retrain_data / "eval.parquet"), "--reps", "10", "--out", str(tmp_path / f"{tag}.html")])
    assert any("bootstrap samples; model 1 of 2" in s for s in steps)
    assert any("bootstrap samples; model 2 of 2" in s for s in steps)
    assert "paired bootstrap of the differences (10 samples)" in steps


def test_score_says_each_file(tiny_model_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    panel = tmp_path / "panel"
    panel.mkdir()
    for i in range(2):
        simulate(200, 40 + i).to_parquet(panel / f"p{i}.parquet", index=False)
    steps = _loud_and_quiet(capsys, lambda tag: [
        "score", "--model", str(tiny_model_dir), "--data", str(panel), "--out",
        str(tmp_path / tag)])
    assert any("(1/2 files)" in s for s in steps) and any("(2/2 files)" in s for s in steps)


def test_recalibrate_says_its_steps(retrain_root: Path, retrain_data: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    def args(tag: str) -> list[str]:
        root = shutil.copytree(retrain_root, tmp_path / tag)
        return ["recalibrate", "--model", "1.0.0", "--root", str(root), "--data",
                str(retrain_data / "eval.parquet"), "--version", "1.0.0-recal"]

    steps = _loud_and_quiet(capsys, args)
    assert steps[0].startswith("reading and validating ")
    assert any(s.startswith("recalibrating 1.0.0 -> 1.0.0-recal") for s in steps)


def test_the_gate_says_its_bootstrap(retrain_root: Path, retrain_data: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    def args(tag: str) -> list[str]:
        root = shutil.copytree(retrain_root, tmp_path / tag)
        return ["models", "promote", "1.1.0", "--root", str(root), "--data",
                str(retrain_data / "eval.parquet"), "--reps", "10", "--force", "--reason", "test"]

    steps = _loud_and_quiet(capsys, args)
    assert any("model 2 of 2" in s for s in steps)
    assert "paired bootstrap of the differences (10 samples)" in steps


def test_monitor_says_each_month(tiny_model_dir: Path, months: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    steps = _loud_and_quiet(capsys, lambda tag: [
        "monitor", "--data", str(months), "--model", str(tiny_model_dir)])
    assert steps[0] == f"reading {months}"
    assert [s.strip() for s in steps if "month " in s] == [
        "month 1 of 3: 2026-01", "month 2 of 3: 2026-02", "month 3 of 3: 2026-03"]
