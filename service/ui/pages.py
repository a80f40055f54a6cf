"""The clinician page (blueprint ``ui``, under ``/ui/``): form, result, SMART launch target, model facts.

Routes:

* ``GET /ui/`` - the intake and findings form, generated from the feature contract (every field
  may be left empty but the contract's required ones: :mod:`service.ui.form_text`);
  ``POST /ui/assessments`` validates it, assesses, stores the assessment in the same store as
  the API (linked to the visit it was made from, if any) and redirects (303) to its page, so the
  page has an opaque-id URL and a reload never re-submits. Invalid input re-renders the form
  (422) with what to enter, in plain words, beside each field.
* ``GET /ui/assessments/<id>`` - one stored assessment: per complaint the probability and band,
  the probability scale, the factor waterfall from the complaint's starting point, the words
  (top factors in percentage points, the findings not recorded on one line, missing items, next
  best assessment), the warnings, and the model facts panel; a refer result shows the referral
  and the red flags, and no estimate at all. This is
  the target of the CDS card's SMART link: opened with ``iss`` and ``launch`` it starts the
  SMART EHR launch (:mod:`service.security.smart`) and comes back here signed in.
* ``GET /ui/smart/callback`` - the end of a SMART launch (the EHR's authorization code).
* ``GET /ui/hook-instances/<hookInstance>`` - the assessment a CDS Hooks call made, by its hook
  instance (only the signed-in patient's: another patient's is 404, its id never shown);
  ``GET /ui/assessments/<id>/edit`` - the form filled with that assessment's inputs (add the
  next finding without re-entering the rest).
* ``GET /ui/model`` - the model facts of the model being served (:mod:`service.serving.model_facts`).
* The patient's visits and two visits compared (:mod:`service.ui.history`), and the patient's
  handout as a page and a PDF (:mod:`service.ui.handout`): their views are on this blueprint.

Security for a page embedded in an EHR: a Content-Security-Policy with no inline script or style
and ``frame-ancestors`` from ``UI_FRAME_ANCESTORS`` (config or ``GMED_UI_FRAME_ANCESTORS``; a list
or space-separated sources; default ``'self'``; no X-Frame-Options, which cannot list an EHR's
origin); a CSRF token on the form (signed double-submit bound to the session: a random cookie,
and in the form an HMAC of it and of the SMART session's id under the CSRF key of
:mod:`service.security.keys`, so every worker verifies every other's tokens, and a cookie and token pair
from one session is refused in another);
``Cache-Control: no-store`` on every page; no patient data in URLs, only opaque ids. With
``UI_AUTH="smart"`` (the default; :mod:`service.security.smart`) a page with patient data is shown only to
a browser signed in through a SMART launch for that patient (401 without a session, 403 for
another patient's assessment); the form needs a session and stores what it assesses under the
session's patient. The model facts need none. The page computes nothing clinical: it renders the
stored :class:`~cds.assessment.Assessment`.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from cds.assessment import Assessment
from cds.errors import CdsError, FieldError, InvalidRecord
from cds.features import BY_NAME, GROUPS, ROWS, YES_NO, Feature, record_fields
from cds.render.html import GROUP_TEXT, result_view
from cds.safety import NOT_APPLICABLE, OUT_OF_POPULATION, WARNING_TITLES
from cds.validate import validate_record

from ..http.headers import page_csp
from ..security import keys, patient_label, smart
from ..serving.assessing import assess_and_record
from ..serving.model_facts import current_model_info, model_facts, short_unit
from ..store import AssessmentRow, get_store
from .form_text import needed_sentence, plain_message, why_required

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="../static",
               static_url_path="/static", template_folder="../templates")

CSRF_COOKIE = "gmed_ui_csrf"
CSRF_FIELD = "csrf_token"
_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


# ------------------------------------------------------------------------------ security


def _frame_ancestors() -> str:
    value = current_app.config["UI_FRAME_ANCESTORS"]
    sources = value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    allowed = " ".join(str(s) for s in sources if s and not any(c in str(s) for c in ";\r\n"))
    return allowed or "'none'"


@bp.after_request
def _headers(response: Response) -> Response:
    """The page's CSP and the CSRF cookie; the other security headers (no-store on pages,
    nosniff, referrer) come from :mod:`service.http.headers`, which runs after this."""
    response.headers["Content-Security-Policy"] = page_csp(_frame_ancestors())
    nonce = g.pop("csrf_new_nonce", None)
    if nonce:
        # embedded in an EHR the page is a cross-site frame: only SameSite=None cookies reach it
        secure = request.is_secure
        response.set_cookie(CSRF_COOKIE, nonce, path="/ui/", httponly=True, secure=secure,
                            samesite="None" if secure else "Lax", partitioned=secure)
    return response


def _csrf_token() -> str:
    """The token for this browser's form (creating its cookie nonce on first use)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not 32 <= len(nonce) <= 128:
        nonce = g.csrf_new_nonce = secrets.token_urlsafe(32)
    return _sign(nonce)


def _sign(nonce: str) -> str:
    """The token for ``nonce`` in this browser's session (its SMART session id, if any)."""
    return keys.mac(keys.get_keys().csrf, "csrf", smart.session_id(), nonce)


def _csrf_ok() -> bool:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    return bool(nonce and sent) and hmac.compare_digest(_sign(nonce), sent)


def _gate(patient_ref: str | None = None, *, any_patient: bool = False
          ) -> ResponseReturnValue | None:
    """``None`` when this browser may see a page of ``patient_ref`` (or, ``any_patient``, the
    form); otherwise the answer: the start of a SMART launch, or a 401/403 page."""
    if not smart.enabled():
        return None
    if smart.is_launch(request):
        return smart.begin(request.path)
    signed_in = smart.patient_ref()
    if signed_in is None:
        return render_template("ui/error.html", title="Open this page from the EHR",
                               message="Patient data here is shown only after a sign-in "
                                       "from the EHR (a SMART launch from the patient's chart)."
                               ), 401
    if not any_patient and (patient_ref is None or not hmac.compare_digest(signed_in,
                                                                             patient_ref)):
        return render_template("ui/error.html", title="Not this patient's assessment",
                               message="This assessment is about another patient than the one "
                                       "the EHR opened. Open it from that patient's chart."), 403
    return None


@bp.get("/smart/callback")
def smart_callback() -> ResponseReturnValue:
    """The end of a SMART EHR launch (see :mod:`service.security.smart`)."""
    return smart.callback()


# ------------------------------------------------------------------------------ the form


def _range_text(f: Feature) -> str:
    if f.minimum is None or f.maximum is None:
        return ""
    return "valid " + short_unit(f"{f.minimum:g} to {f.maximum:g}", f.unit)


def _field_view(f: Feature) -> dict[str, Any]:
    choices = list(zip(f.allowed, f.allowed_labels or f.allowed, strict=True))
    if f.kind == "boolean":
        choices = [("yes", "Yes"), ("no", "No")]
    unit = f.unit if f.unit and f.unit != YES_NO else None
    when = None
    if f.restricted and f.role != "red_flag":
        # the page dims the finding while the answer it depends on says it does not apply
        on, values = (("activity_profile", f.profiles) if f.profiles is not None
                      else (ROWS.name, f.complaints))
        when = {"field": on, "value": " ".join(values), "text": f"Applies to {f.condition}"}
    hint = [f"pain-free people {short_unit(f.reference, unit)}" if f.reference else "",
            _range_text(f), when["text"] if when else "",
            f.help.split(". ")[0].rstrip(".") + "." if f.help else "",
            why_required(f) + "." if f.required else ""]  # the first sentence of the help
    return {"name": f.name, "label": f.label, "kind": "rows" if f.role == "rows" else f.kind,
            "unit": unit, "hint": " · ".join(h for h in hint if h), "choices": choices,
            "required": f.required, "when": when}


def form_groups() -> list[dict[str, Any]]:
    """The form's sections in care-setting order; red flags get their own block in intake."""
    fields = record_fields()
    out = []
    for group in GROUPS:
        title, intro = GROUP_TEXT[group]
        out.append({"key": group, "title": title, "intro": intro,
                    "fields": [_field_view(f) for f in fields
                               if f.group == group and f.role != "red_flag"],
                    "red_flags": [_field_view(f) for f in fields
                                  if f.group == group and f.role == "red_flag"]})
    return out


def parse_form(form: MultiDict[str, str]) -> tuple[dict[str, Any], list[FieldError]]:
    """A patient record from the posted form: empty means not recorded (omitted), never zero.

    Numbers that do not parse are reported here (``type``); every other rule is the contract's
    own validator's, so the page and the API say the same thing about the same value.
    """
    record: dict[str, Any] = {}
    errors: list[FieldError] = []
    patient = form.get("patient_id", "").strip()
    if patient:
        record["patient_id"] = patient
    for f in record_fields():
        if f.role == "rows":
            chosen = [v for v in form.getlist(f.name) if v]
            if chosen:
                record[f.name] = chosen
            continue
        raw = form.get(f.name, "").strip()
        if not raw:
            continue
        if f.kind == "boolean":
            record[f.name] = {"yes": True, "no": False}.get(raw, raw)
        elif f.kind == "category":
            record[f.name] = raw
        else:
            try:
                number = float(raw.replace(",", ".").replace("\u2212", "-"))
            except ValueError:
                errors.append(FieldError(f.name, "type", f"{f.label}: must be a number"))
                continue
            record[f.name] = int(number) if number.is_integer() else number
    return record, errors


def _form_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """What each input shows: the text as typed, ``yes``/``no``, or the chosen values."""
    values: dict[str, Any] = {}
    for name, v in record.items():
        if isinstance(v, bool):
            values[name] = "yes" if v else "no"
        elif isinstance(v, list):
            values[name] = [str(x) for x in v]
        else:
            values[name] = "" if v is None else str(v)
    return values


def _render_form(values: Mapping[str, Any], errors: list[FieldError], status: int = 200,
                 notice: str = "", source_id: str | None = None) -> ResponseReturnValue:
    by_field: dict[str, list[str]] = {}
    for e in errors:
        name = e.field.split("[")[0]
        by_field.setdefault(name, []).append(plain_message(BY_NAME.get(name), e))
    order = {f.name: i for i, f in enumerate(record_fields())}
    summary = [{"field": name, "label": _label(name), "messages": by_field[name]}
               for name in sorted(by_field, key=lambda n: order.get(n, -1))]
    html = render_template("ui/form.html", groups=form_groups(), values=values, errors=by_field,
                           summary=summary, csrf_token=_csrf_token(), notice=notice,
                           source_id=source_id, model=current_model_info(),
                           needed=needed_sentence([f for f in record_fields() if f.required]))
    return html, status


def _label(name: str) -> str:
    return BY_NAME[name].label if name in BY_NAME else name


@bp.get("/")
def new_assessment() -> ResponseReturnValue:
    """An empty form."""
    return _gate(any_patient=True) or _render_form({}, [])


@bp.post("/assessments")
def create_assessment() -> ResponseReturnValue:
    """Validate, assess, store, then 303 to the assessment's page (POST-redirect-GET)."""
    if (refused := _gate(any_patient=True)) is not None:
        return refused
    record, errors = parse_form(request.form)
    posted = {k: request.form.getlist(k) if k == ROWS.name else request.form.get(k)
              for k in request.form if k != CSRF_FIELD}
    if not _csrf_ok():
        return _render_form(posted, [], 400, source_id=request.form.get("previous_id"),
                            notice="This form had expired or did not come from this page. Your "
                                   "entries are kept: check them and press Estimate again.")
    try:
        validate_record({k: v for k, v in record.items()
                         if k not in {e.field for e in errors}})
    except InvalidRecord as e:
        errors += e.errors
    if errors:
        return _render_form(posted, errors, 422, source_id=request.form.get("previous_id"))
    patient_ref = (smart.patient_ref() if smart.enabled()  # the patient the EHR opened
                   else get_store().pseudonym(record.get("patient_id")))
    patient_label.remember(patient_ref, record.get("patient_id"))
    previous, patient_ref = ui_history.made_from(request.form.get("previous_id", ""), patient_ref)
    aid = assess_and_record(record, source="ui", caller="clinician page", patient_ref=patient_ref,
                            issuer=smart.issuer() if smart.enabled() else None,
                            previous_id=previous).id
    return redirect(url_for("ui.show_assessment", aid=aid), 303)


# ------------------------------------------------------------------------------ results


def _stored(aid: str) -> AssessmentRow | None:
    return get_store().get_assessment(aid) if _ID.match(aid) else None


def _viewable(aid: str) -> dict[str, Any] | ResponseReturnValue:
    """The stored assessment (a dict) if this browser may see it; else the answer instead: the
    start of a SMART launch, 401, 403, or 404."""
    row = _stored(aid)
    if row is None:
        return _gate(any_patient=True) or _not_found()
    return _gate(row["patient_ref"]) or row


def _not_found() -> ResponseReturnValue:
    return render_template("ui/error.html", title="Assessment not found",
                           message="No assessment has this id. It may have been made on another "
                                   "server, or the link is incomplete."), 404


@bp.get("/assessments/<aid>")
def show_assessment(aid: str) -> ResponseReturnValue:
    """One stored assessment, as the clinician reads it (also the SMART link's target).

    A refer result shows the referral and no estimate, even one stored before refer results
    stopped carrying estimates."""
    if not isinstance(row := _viewable(aid), dict):
        return row
    assessment = Assessment.from_dict(row["result"])
    facts = model_facts(assessment.model)
    created = row["created_at"]
    return render_template(
        "ui/result.html", aid=row["id"], facts=facts,
        **result_view(assessment, facts["bands"] if facts else None),
        patient_shown=patient_label.shown(row["patient_ref"]),
        previous_id=get_store().previous_of(row["id"]),
        warning_titles=WARNING_TITLES, estimate_warnings=(OUT_OF_POPULATION, NOT_APPLICABLE),
        created=created.strftime("%d %b %Y, %H:%M UTC") if isinstance(created, datetime) else "")


@bp.get("/assessments/<aid>/edit")
def edit_assessment(aid: str) -> ResponseReturnValue:
    """The form filled with a stored assessment's inputs: a new assessment, not an overwrite."""
    if not isinstance(row := _viewable(aid), dict):
        return row
    values = {**_form_values(row["inputs"]), "patient_id": patient_label.shown(row["patient_ref"])}
    return _render_form(values, [], source_id=row["id"])


@bp.get("/hook-instances/<instance>")
def by_hook_instance(instance: str) -> ResponseReturnValue:
    """The assessment a CDS Hooks call made, found by its ``hookInstance``: with SMART, only one
    of the signed-in patient (another patient's is not found, so its id is never revealed)."""
    if (refused := _gate(any_patient=True)) is not None:
        return refused
    if not _ID.match(instance):
        return _not_found()
    aid = get_store().assessment_of_hook(instance, of_patient=smart.enabled(),
                                         patient_ref=smart.patient_ref())
    if aid is None:
        return _not_found()
    return redirect(url_for("ui.show_assessment", aid=aid), 303)


@bp.get("/model")
def model_page() -> ResponseReturnValue:
    """The facts of the model being served."""
    info = current_model_info()
    facts = model_facts(info) if info else None
    if facts is None:
        return render_template("ui/error.html", title="Model not available",
                               message="No verified model is loaded. Try again shortly."), 503
    return render_template("ui/model.html", facts=facts)


@bp.errorhandler(CdsError)
def _on_error(e: CdsError) -> ResponseReturnValue:
    """Errors on these pages are pages, not JSON; details stay out of them as in the API."""
    if e.status >= 500:
        return render_template("ui/error.html", title="Service not ready",
                               message="The model or the store is not available. Your entries "
                                       "were not assessed; go back and try again shortly."), e.status
    return render_template("ui/error.html", title="Request not accepted", message=str(e)), e.status


from . import handout  # noqa: E402,F401  (its views are on this blueprint)
from . import history as ui_history  # noqa: E402  (its views are on this blueprint)
