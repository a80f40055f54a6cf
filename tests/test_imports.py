"""Import cost is a feature: the core and its serving path import no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("flask", "shap", "matplotlib", "dask", "distributed", "numba", "sklearn", "pandas",
         "torch")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_cds_loads_no_heavy_module() -> None:
    loaded = _modules_after("import cds")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_public_surface_is_pinned() -> None:
    import cds

    assert cds.__all__ == sorted(cds.__all__)
    assert set(cds.__all__) == {"Assessment", "CdsError", "IntegrityError", "InvalidRecord",
                                "Model", "ModelUnavailable", "assess", "load_model",
                                "validate_record"}


def test_serving_an_assessment_loads_no_heavy_module() -> None:
    """The service's whole request path: app, verified model, explanation, store, response."""
    loaded = _modules_after(
        "import json, tempfile\n"
        "from service import create_app\n"
        "d = tempfile.mkdtemp()\n"
        "app = create_app({'AUTH': 'off', 'ENVIRONMENT': 'development',\n"
        "                  'DATABASE_URL': f'sqlite:///{d}/s.db'})\n"
        "record = json.load(open('examples/runner_pfp_hip_driven.json'))\n"
        "response = app.test_client().post('/v1/assessments', json=record)\n"
        "assert response.status_code == 201, response.status_code\n")
    serving_heavy = {"shap", "matplotlib", "dask", "distributed", "numba", "lightgbm", "sklearn",
                     "pandas", "pandera", "torch"}
    assert not {m for m in loaded if m.split(".")[0] in serving_heavy}


def test_the_renderers_load_no_web_or_pdf_library() -> None:
    """``cds.render`` (and so the CLI's text) never pulls in Flask, Jinja or reportlab: the
    handout's PDF imports reportlab only when one is drawn."""
    loaded = _modules_after("import cds, cds.render, cds.render.handout, cds.fhir")
    assert not {m for m in loaded if m.split(".")[0] in {*HEAVY, "jinja2", "reportlab",
                                                           "werkzeug"}}
