"""Import cost is a feature: the core and its serving path import no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("flask", "shap", "matplotlib", "dask", "distributed", "numba", "sklearn", "pandas",
         "torch")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
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
