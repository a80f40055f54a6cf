"""Where training data comes from: a file, a FHIR R4 Bulk Data export, or the service's store.

Each reader returns a raw frame in the training schema (:mod:`training.schema`; values are not
validated here) plus a description and a SHA-256 of what was read, so a model records exactly
which data it learned from.

* **CSV / Parquet** (a file, or a directory of Parquet parts): read as is.
* **FHIR R4 Bulk Data NDJSON** (a directory of ``<Type>*.ndjson`` files, or one ``.ndjson``
  file): ``Patient``, ``Observation``, ``Condition`` and ``QuestionnaireResponse`` resources are
  grouped by patient and mapped with :func:`cds.fhir.record_from_fhir` (the service's own
  mapping: units checked, safe conversions only). The outcome is an ``Observation`` coded
  ``{LOCAL_SYSTEM}#hip_driver`` (:data:`OUTCOME_CODING`) with ``valueBoolean`` (or a SNOMED
  yes/no ``valueCodeableConcept``), whose ``focus`` references the ``Condition`` of the complaint
  it confirms; without ``focus`` it applies to the patient's only complaint. The latest outcome
  per complaint wins. Age is computed at the date of the latest finding, not at export time.
  A patient whose resources cannot be read safely is rejected with the mapping's reasons.
* **The service's store** (any SQLAlchemy URL): assessments joined with the outcomes recorded
  through ``POST /v1/outcomes``; the stored inputs are the validated record. The tables are the
  ones the service declares (:mod:`cds.store_schema`), not names restated here. The latest outcome
  per assessment and complaint wins (a correction supersedes).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from cds.errors import InvalidRecord, UserError
from cds.features import LOCAL_SYSTEM, ROWS
from cds.fhir import COMPLAINT_CODES, record_from_fhir

from .schema import COMPLAINT, LABEL
from .tables import TABLE_SUFFIXES, read_csv, read_frame

OUTCOME_CODING = (LOCAL_SYSTEM, "hip_driver")
FHIR_TYPES = ("Patient", "Observation", "Condition", "QuestionnaireResponse")
_YES_NO = {"373066001": True, "373067005": False, "Y": True, "N": False}
_COMPLAINT_BY_CODE = {code: c for c, codes in COMPLAINT_CODES.items() for code in codes}
_URL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "oracle")


@dataclass
class Source:
    """Raw rows in the training schema, what they came from, and rows rejected while reading."""

    frame: pd.DataFrame
    description: str
    sha256: str
    kind: str
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)  # with a ``reason`` column
    notes: dict[str, int] = field(default_factory=dict)


def _sha256_files(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def is_database_url(spec: str) -> bool:
    """Whether ``spec`` is a SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``)."""
    return "://" in spec and spec.split("://", 1)[0].split("+")[0] in _URL_SCHEMES


def read_source(spec: str | Path) -> Source:
    """Dispatch on what ``spec`` is: a database URL, NDJSON, Parquet or CSV."""
    text = str(spec)
    if is_database_url(text):
        return read_store(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UserError(f"{scheme}://...: not a database URL this reads (schemes: "
                        f"{', '.join(_URL_SCHEMES)}); a file path has no '://'")
    path = Path(spec)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if (path.is_dir() and any(path.glob("*.ndjson"))) or path.suffix == ".ndjson":
        return read_fhir_ndjson(path)
    return read_table(path)


def read_table(path: Path) -> Source:
    """CSV or Parquet by extension; a directory of Parquet parts or of CSV files (concatenated)."""
    if path.is_dir():
        files = sorted(path.rglob("*.parquet")) or sorted(path.rglob("*.csv"))
        if not files:
            raise UserError(f"{path}: a directory of data must hold .parquet, .csv or .ndjson "
                            "files; it holds none")
        frame = pd.concat([read_frame(f) for f in files], ignore_index=True)
    elif path.suffix.lower() in (".parquet", ".pq"):
        files = [path]
        frame = read_frame(path)
    elif path.suffix.lower() in TABLE_SUFFIXES:
        files = [path]
        frame, dialect = read_csv(path)
        if frame.columns.empty or frame.empty:
            raise UserError(f"{path}: no rows (an empty file, or a header only)")
        digest = _sha256_files(files)
        return Source(frame, f"{path.name} (sha256 {digest[:12]}, {len(frame)} rows; "
                             f"{dialect.describe()})", digest, "table")
    else:
        raise UserError(f"{path}: expected .csv, .tsv, .parquet, .ndjson, a directory or a "
                        "database URL (sqlite:///..., postgresql://...)")
    if frame.columns.empty or frame.empty:
        raise UserError(f"{path}: no rows (an empty file, or a header only)")
    digest = _sha256_files(files)
    return Source(frame, f"{path.name} (sha256 {digest[:12]}, {len(frame)} rows)", digest, "table")


# ------------------------------------------------------------------------------ FHIR NDJSON


def _ndjson_resources(path: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    resources = []
    for file in files:
        with file.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        resources.append(json.loads(line))
                    except ValueError as e:
                        raise UserError(f"{file.name}: line {n}: not a JSON line (FHIR Bulk "
                                        "Data NDJSON has one resource per line)") from e
    return resources, files


def _patient_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    subject = resource.get("subject") or resource.get("patient")
    ref = subject.get("reference") if isinstance(subject, Mapping) else None
    return ref.removeprefix("Patient/") if isinstance(ref, str) and ref.startswith("Patient/") else None


def _is_outcome(resource: Mapping[str, Any]) -> bool:
    if resource.get("resourceType") != "Observation":
        return False
    codings = (resource.get("code") or {}).get("coding") or []
    return any((c.get("system"), c.get("code")) == OUTCOME_CODING for c in codings
               if isinstance(c, Mapping))


def _outcome_value(resource: Mapping[str, Any]) -> bool | None:
    if isinstance(resource.get("valueBoolean"), bool):
        return bool(resource["valueBoolean"])
    for c in (resource.get("valueCodeableConcept") or {}).get("coding") or []:
        if isinstance(c, Mapping) and c.get("code") in _YES_NO:
            return _YES_NO[str(c["code"])]
    return None


def _when(resource: Mapping[str, Any]) -> str:
    for key in ("effectiveDateTime", "authored", "issued", "recordedDate", "onsetDateTime"):
        value = resource.get(key)
        if isinstance(value, str):
            return value
    return ""


def _condition_complaint(resource: Mapping[str, Any]) -> str | None:
    for c in (resource.get("code") or {}).get("coding") or []:
        if isinstance(c, Mapping):
            found = _COMPLAINT_BY_CODE.get((str(c.get("system")), str(c.get("code"))))
            if found:
                return found
    return None


def _patient_rows(pid: str, resources: list[Mapping[str, Any]]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One patient's resources -> (training rows, rejected rows with a reason)."""
    findings = [r for r in resources if not _is_outcome(r)]
    outcomes = sorted((r for r in resources if _is_outcome(r)), key=_when)
    conditions = {f"Condition/{r.get('id')}": _condition_complaint(r) for r in findings
                  if r.get("resourceType") == "Condition"}
    dates = [d[:10] for d in map(_when, findings) if len(d) >= 10]
    try:
        today = date.fromisoformat(max(dates)) if dates else None
    except ValueError:
        today = None
    try:
        mapped = record_from_fhir(findings, today=today).record
    except InvalidRecord as e:
        reason = "; ".join(f"{err.field}: {err.rule}" for err in e.errors)
        return [], [{"patient_id": pid, "reason": f"fhir: {reason}"}]
    complaints = list(mapped.pop(ROWS.name, []))
    mapped.pop("patient_id", None)
    labels: dict[str, bool] = {}
    dated: dict[str, str | None] = {}
    rejected = []
    for obs in outcomes:
        value = _outcome_value(obs)
        focus = [conditions.get(str(f.get("reference"))) for f in obs.get("focus") or []
                 if isinstance(f, Mapping)]
        targets = [c for c in focus if c] or (complaints if len(complaints) == 1 else [])
        if value is None or not targets:
            why = "no boolean value" if value is None else "no focus Condition of a known complaint"
            rejected.append({"patient_id": pid, "reason": f"fhir: outcome Observation/{obs.get('id')} "
                                                          f"has {why}"})
            continue
        labels.update(dict.fromkeys(targets, value))
        dated.update(dict.fromkeys(targets, _when(obs)[:10] or None))
    for c in labels:
        if c not in complaints:
            complaints.append(c)
    rows = [{"patient_id": pid, **mapped, COMPLAINT: c, "recorded_at": dated.get(c),
             LABEL: float(labels[c]) if c in labels else None} for c in complaints]
    if not complaints:
        rows = [{"patient_id": pid, **mapped, COMPLAINT: None, LABEL: None}]
    return rows, rejected


def read_fhir_ndjson(path: Path) -> Source:
    """A FHIR R4 Bulk Data export -> one row per patient and complaint (module docstring)."""
    resources, files = _ndjson_resources(path)
    by_patient: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    unlinked = 0
    for r in resources:
        if r.get("resourceType") not in FHIR_TYPES:
            continue
        pid = _patient_of(r)
        if pid is None:
            unlinked += 1
            continue
        by_patient[pid].append(r)
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for pid in sorted(by_patient):
        good, bad = _patient_rows(pid, by_patient[pid])
        rows += good
        rejected += bad
    digest = _sha256_files(files)
    frame = pd.DataFrame(rows)
    return Source(frame, f"FHIR NDJSON {path.name} (sha256 {digest[:12]}, {len(by_patient)} "
                         f"patients, {len(frame)} rows)", digest, "fhir",
                  rejected=pd.DataFrame(rejected), notes={"resources_without_patient": unlinked})


# ------------------------------------------------------------------------------ the store


def _store_rows(result: list[dict[str, Any]], unlabelled: bool
                ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """One row per (assessment, complaint) from the store's joined rows (the latest outcome of
    each), and that latest row per key."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in result:
        latest[(r["id"], r["complaint"])] = r
    rows = []
    spread: set[str] = set()  # assessments whose complaints without an outcome are listed
    for r in latest.values():
        inputs = r["inputs"] if isinstance(r["inputs"], Mapping) else json.loads(r["inputs"])
        record = {k: v for k, v in inputs.items() if k not in (ROWS.name, "patient_id")}
        found: list[tuple[str, float | None, Any]] = [] if r["complaint"] is None else [
            (r["complaint"], float(bool(r["hip_driver"])), r["recorded_at"])]
        if unlabelled and r["id"] not in spread:
            # every assessed complaint is monitored, as the /metrics gauges count them: those
            # without an outcome too, also when another complaint of the assessment has one
            spread.add(r["id"])
            found += [(c, None, r["created_at"]) for c in inputs.get(ROWS.name) or []
                      if (r["id"], c) not in latest]
        for complaint, label, when in found:
            rows.append({"assessment_id": r["id"], "patient_id": r["patient_ref"], **record,
                         COMPLAINT: complaint, LABEL: label, "recorded_at": str(when)[:10]})
    return rows, latest


def read_store(url: str, *, unlabelled: bool = False) -> Source:
    """Assessments joined with their recorded outcomes, from the service's database.

    ``unlabelled=True`` (monitoring) keeps assessments without an outcome too (``hip_driver``
    empty; ``recorded_at`` the assessment's date), one row per assessed complaint."""
    from sqlalchemy import MetaData, create_engine, inspect, select
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from cds.store_schema import build

    scheme, _, rest = url.partition("://")
    safe_url = f"{scheme}://{rest.rsplit('@', 1)[-1]}"  # never record (or print) a password
    if scheme.startswith("sqlite") and rest.startswith("/") and rest != "/:memory:" \
            and not Path(rest[1:]).is_file():
        raise UserError(f"{safe_url}: no such database file ({rest[1:]})")
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError) as e:
        raise UserError(f"{safe_url}: not a database URL SQLAlchemy can open "
                        "(e.g. sqlite:///instance/gmed.sqlite3)") from e
    tables = build(MetaData())  # the service's own declaration of its tables
    a, o = tables["assessments"], tables["outcomes"]
    try:
        present = inspect(engine)
        if not all(present.has_table(t.name) for t in (a, o)):
            raise UserError(f"{safe_url}: not the service's store (no 'assessments' and "
                            "'outcomes' tables)")
        query = (select(a.c.id, a.c.patient_ref, a.c.inputs, o.c.complaint, o.c.hip_driver,
                        o.c.recorded_at, a.c.created_at)
                 .join(o, o.c.assessment_id == a.c.id, isouter=unlabelled)
                 .order_by(o.c.recorded_at, o.c.id))
        with engine.connect() as conn:
            result = [dict(r) for r in conn.execute(query).mappings()]
    except OperationalError as e:
        raise UserError(f"{safe_url}: cannot be read ({str(e.orig)[:200]})") from e
    finally:
        engine.dispose()
    if not result and unlabelled:
        raise UserError(f"{safe_url}: no assessment stored yet; nothing to monitor")
    if not result:
        raise UserError(f"{safe_url}: no outcome recorded yet (POST /v1/outcomes records them); "
                        "nothing to learn from or evaluate")
    rows, latest = _store_rows(result, unlabelled)
    frame = pd.DataFrame(rows)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    return Source(frame, f"store {safe_url} (sha256 {digest[:12]}, {len(frame)} outcomes)",
                  digest, "store", notes={"superseded_outcomes": len(result) - len(latest)})
