"""A recorded set of requests covering every route and representation, and their answers.

``tests/test_recorded_responses.py`` replays :data:`EXCHANGES` against the current code and
asserts each answer (status, ``Content-Type``, ``Location`` and body) is byte-identical to the
recording apart from ids and times. After a *deliberate* change of an answer, regenerate every
recording with one command and review the diff::

    PYTHONPATH=$PWD python -m tests.recorded.record

Normalisation (:func:`normalise`), the only difference allowed, applied to recording and replay
alike:

* a UUID (``8-4-4-4-12`` hex digits, any case) becomes ``<id>``;
* an ISO 8601 date-time (``YYYY-MM-DDTHH:MM[:SS[.fff]]`` with an optional ``Z`` or ``±HH:MM``)
  becomes ``<time>``; the page's ``DD Mon YYYY, HH:MM UTC`` becomes ``<time>``;
* today's date (``YYYY-MM-DD``, a RiskAssessment's ``occurrenceDateTime``) becomes ``<today>``;
* the CSRF token in a form's hidden field becomes ``<csrf>``;
* today's date as a page or handout writes it (``03 December 2026``) becomes ``<today>``;
* a PDF's ``/CreationDate``, ``/ModDate`` and ``/ID`` values become ``<time>`` / ``<id>``; its
  compressed content streams are compared decoded (they hold the handout's date), so its byte
  offsets (``/Length``, the ``xref`` table, ``startxref``), which move with the date's length,
  become ``<n>``.

Nothing else is normalised: the answers run on the shipped model (``production``) with a fresh
SQLite store, so everything else is deterministic.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import sys
import tempfile
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLES = ROOT / "examples"
MODEL = "production"
MISSING_ID = "00000000-0000-4000-8000-000000000000"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")
_PAGE_TIME = re.compile(r"\d{2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC")
_CSRF = re.compile(r'(name="csrf_token" value=")[^"]*(")')
_PDF_DATE = re.compile(r"(/(?:Creation|Mod)Date \()[^)]*(\))")
_PDF_ID = re.compile(r"(/ID\s*\[)[^\]]*(\])")
_PDF_STREAM = re.compile(r"stream\n(.*?)endstream", re.S)
_PDF_OFFSETS = re.compile(r"(/Length |startxref\n)\d+|^\d{10} \d{5} [nf] ?$", re.M)


def _pdf_decoded(text: str) -> str:
    """A ReportLab PDF (latin-1 text) with its ASCII85+Flate streams decoded and its byte
    offsets replaced by ``<n>``."""
    def decode(m: re.Match[str]) -> str:
        try:
            data = zlib.decompress(base64.a85decode(m.group(1).strip().removesuffix("~>")))
        except (ValueError, zlib.error):
            return m.group(0)
        return "stream\n" + data.decode("latin-1") + "\nendstream"
    text = _PDF_STREAM.sub(decode, text)
    return _PDF_OFFSETS.sub(lambda m: (m.group(1) or "") + "<n>", text)


def normalise(text: str) -> str:
    """``text`` with ids and times replaced by placeholders (the module docstring's rule)."""
    text = _UUID.sub("<id>", text)
    text = _ISO_TIME.sub("<time>", text)
    text = _PAGE_TIME.sub("<time>", text)
    today = date.today()
    text = text.replace(today.isoformat(), "<today>")
    text = text.replace(today.strftime("%d %B %Y"), "<today>")
    text = _CSRF.sub(r"\1<csrf>\2", text)
    text = _PDF_DATE.sub(r"\1<time>\2", text)
    return _PDF_ID.sub(r"\1<id>\2", text)


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def _answer(response: Any) -> dict[str, Any]:
    data: bytes = response.get_data()
    if response.mimetype == "application/pdf":
        body = _pdf_decoded(data.decode("latin-1"))  # one character per byte
    else:
        body = data.decode("utf-8")
    return {"status": response.status_code,
            "content_type": response.headers.get("Content-Type"),
            "location": normalise(response.headers.get("Location", "")) or None,
            "body": normalise(body)}


def _form(record: dict[str, Any], csrf: str) -> MultiDict[str, str]:
    form: list[tuple[str, str]] = []
    for name, value in record.items():
        if isinstance(value, bool):
            form.append((name, "yes" if value else "no"))
        elif isinstance(value, list):
            form += [(name, v) for v in value]
        else:
            form.append((name, str(value)))
    return MultiDict([*form, ("csrf_token", csrf)])


def _hook_call(hook: str, *, red_flag: bool = False) -> dict[str, Any]:
    from tests.service_fixtures import hook_call, observation, runner_prefetch

    prefetch = runner_prefetch()
    if red_flag:
        prefetch["observations"]["entry"].append({"resource": observation(
            "rf_fever", valueBoolean=True, effectiveDateTime="2026-02-01")})
    return hook_call(hook, prefetch=prefetch)


def exchanges(client: FlaskClient) -> dict[str, dict[str, Any]]:
    """Every recorded exchange, in order (later ones read what earlier ones stored): name ->
    normalised answer."""
    out: dict[str, dict[str, Any]] = {}

    def send(name: str, method: str, path: str, **kwargs: Any) -> Any:
        response = client.open(path, method=method, **kwargs)
        out[name] = {"request": normalise(f"{method} {path}"), **_answer(response)}
        return response

    fhir = {"Accept": "application/fhir+json"}
    created = send("api_assess_json", "POST", "/v1/assessments",
                   json=_example("runner_pfp_hip_driven"))
    aid = created.headers["Location"].rsplit("/", 1)[1]
    send("api_read_json", "GET", f"/v1/assessments/{aid}")
    send("api_read_fhir", "GET", f"/v1/assessments/{aid}", headers=fhir)
    send("fhir_read_risk_assessment", "GET", f"/fhir/RiskAssessment/{aid}")
    send("api_assess_fhir", "POST", "/v1/assessments", json=_example("cyclist_itbs"),
         headers=fhir)
    send("api_assess_fhir_bundle", "POST", "/v1/assessments",
         json=json.loads((EXAMPLES / "fhir" / "transaction-bundle.json").read_text()),
         headers=fhir)
    send("api_assess_refer", "POST", "/v1/assessments", json=_example("red_flag_trauma_swelling"))
    send("api_assess_intake_only", "POST", "/v1/assessments",
         json=_example("intake_only_pfp_and_lbp"))
    send("api_422", "POST", "/v1/assessments", json={**_example("cyclist_itbs"), "age_years": 500})
    send("api_422_fhir", "POST", "/v1/assessments", json={**_example("cyclist_itbs"),
                                                          "age_years": 500}, headers=fhir)
    send("api_404", "GET", f"/v1/assessments/{MISSING_ID}")
    send("api_batch", "POST", "/v1/assessments/batch", json={"records": [
        _example("adolescent_pfp_dynamometer"), {"age_years": "x"}]})
    send("api_model", "GET", "/v1/model")
    send("api_features", "GET", "/v1/features")
    send("hooks_discovery", "GET", "/cds-services")
    send("hooks_patient_view", "POST", "/cds-services/gmed-driver",
         json=_hook_call("patient-view"))
    send("hooks_encounter_start", "POST", "/cds-services/gmed-driver-encounter",
         json=_hook_call("encounter-start"))
    send("hooks_red_flag_refer", "POST", "/cds-services/gmed-driver",
         json=_hook_call("patient-view", red_flag=True))
    send("hooks_404", "POST", "/cds-services/no-such-service", json=_hook_call("patient-view"))
    send("fhir_metadata", "GET", "/fhir/metadata")
    send("fhir_code_system", "GET", "/fhir/CodeSystem/findings")
    send("fhir_code_system_search", "GET", "/fhir/CodeSystem")
    send("fhir_questionnaire", "GET", "/fhir/Questionnaire/gmed-intake")
    send("fhir_questionnaire_search", "GET", "/fhir/Questionnaire")
    send("fhir_404", "GET", f"/fhir/RiskAssessment/{MISSING_ID}")
    send("openapi", "GET", "/openapi.json")
    form_page = send("ui_form", "GET", "/ui/")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form_page.get_data(as_text=True))
    csrf = match.group(1) if match else ""
    for name, example in (("ui_result", "runner_pfp_hip_driven"),
                          ("ui_result_refer", "red_flag_trauma_swelling")):
        posted = send(f"{name}_post", "POST", "/ui/assessments",
                      data=_form(_example(example), csrf))
        page = posted.headers.get("Location", "/ui/")
        send(name, "GET", page)
        if name == "ui_result":
            send("ui_handout", "GET", f"{page}/handout")
            send("ui_handout_pdf", "GET", f"{page}/handout.pdf")
    send("ui_422", "POST", "/ui/assessments",
         data=_form({**_example("cyclist_itbs"), "age_years": 500}, csrf))
    send("ui_404", "GET", f"/ui/assessments/{MISSING_ID}")
    return out


def cli_texts() -> dict[str, dict[str, Any]]:
    """The text output of ``cds assess --explain`` (and its JSON) on two examples."""
    from cds.cli import main

    out: dict[str, dict[str, Any]] = {}
    for name, example, explain in (("cli_assess_text", "runner_pfp_hip_driven", True),
                                   ("cli_assess_refer_text", "red_flag_trauma_swelling", True),
                                   ("cli_assess_json", "cyclist_itbs", False)):
        argv = ["assess", "--input", str(EXAMPLES / f"{example}.json"), "--model", MODEL,
                *(["--explain"] if explain else [])]
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = main(argv)
        out[name] = {"request": "cds " + " ".join(argv).replace(str(ROOT) + "/", ""),
                     "status": status, "body": normalise(stdout.getvalue())}
    return out


def make_app(store_dir: Path) -> Flask:
    """The app the recordings are made on: the shipped model, a fresh SQLite store, no auth."""
    import cds
    from service import create_app

    return create_app({
        "MODEL": cds.load_model(MODEL), "DATABASE_URL": f"sqlite:///{store_dir / 'store.sqlite3'}",
        "PSEUDONYM_SECRET": "recorded-secret", "AUTH": "off", "UI_AUTH": "off",
        "ENVIRONMENT": "development", "TESTING": True})


def answers(store_dir: Path) -> dict[str, dict[str, Any]]:
    """Every recorded answer, made now on the current code."""
    return {**exchanges(make_app(store_dir).test_client()), **cli_texts()}


def path_of(name: str) -> Path:
    return HERE / f"{name}.json"


def write(recorded: dict[str, dict[str, Any]], *, echo: Callable[[str], None] = print) -> None:
    """Replace every recording by ``recorded`` (stale files removed)."""
    for old in HERE.glob("*.json"):
        if old.stem not in recorded:
            old.unlink()
    for name, answer in recorded.items():
        path_of(name).write_text(json.dumps(answer, indent=1, ensure_ascii=False) + "\n")
    echo(f"recorded {len(recorded)} answers in {HERE}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        write(answers(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
