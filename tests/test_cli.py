"""The ``cds`` command line: assess, simulate, train, models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main

from .conftest import EXAMPLES


def test_assess_prints_the_assessment_json(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", "--input", str(EXAMPLES / "cyclist_itbs.json"),
                 "--model", str(tiny_model_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["complaint"] == "itbs"


def test_assess_explain_prints_words(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", "--input", str(EXAMPLES / "red_flag_trauma_swelling.json"),
                 "--model", str(tiny_model_dir), "--explain"]) == 0
    text = capsys.readouterr().out
    assert "RED FLAG" in text and "Trauma with rapid swelling" in text and "SIMULATED" in text


def test_invalid_record_exits_2_naming_fields(tiny_model_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"complaints": ["pfp"], "age_years": 200, "sex": "female"}))
    assert main(["assess", "--input", str(bad), "--model", str(tiny_model_dir)]) == 2
    assert "age_years" in capsys.readouterr().err


def test_simulate_train_promote_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "sim.parquet"
    assert main(["simulate", "--n", "4500", "--seed", "5", "--out", str(data)]) == 0
    root = tmp_path / "models"
    assert main(["train", "--data", str(data), "--out", str(root / "gmed-driver" / "1.2.3"),
                 "--threads", "1"]) == 0
    assert main(["models", "promote", "1.2.3", "--alias", "production", "--root", str(root)]) == 0
    registry = json.loads((root / "registry.json").read_text())
    assert registry["aliases"] == {"production": "1.2.3"}


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("assess", "simulate", "train", "evaluate", "recalibrate", "score", "models"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "example: cds " in capsys.readouterr().out


COMMANDS = ("assess", "simulate", "train", "evaluate", "score", "recalibrate", "monitor", "columns",
            "models")


def test_the_console_script_offers_every_command_from_training_cli(
        capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"cds": "training.cli:main"}
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "{" + ",".join(COMMANDS) + "}" in capsys.readouterr().out


def test_python_m_cds_cli_assesses_without_importing_training(tiny_model_dir: Path) -> None:
    """The core's own entry point: ``assess`` works and no training module is loaded."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = ("import sys; from cds.cli import main; "
            f"code = main(['assess', '--input', {str(EXAMPLES / 'cyclist_itbs.json')!r}, "
            f"'--model', {str(tiny_model_dir)!r}]); "
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'service')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []"
    refused = subprocess.run([sys.executable, "-m", "cds.cli", "train", "--help"],
                             capture_output=True, text=True, cwd=root)
    assert refused.returncode == 2 and "invalid choice: 'train'" in refused.stderr
