"""CDS Hooks prefetch: the templates we ask for, and what each answer means.

Per the specification, a prefetch key in the request is either a FHIR resource (often a
``searchset`` Bundle), ``null`` (the client has no such data), or absent (the client chose not to,
or failed to, prefetch it). CDS Hooks 2.0 also lets a client send an ``OperationOutcome`` for a
failed prefetch: we read it as absent. An absent key is fetched from ``fhirServer`` with the
request's ``fhirAuthorization`` when that server is within a base URL of ``FHIR_SERVER_ALLOWLIST``
(same scheme, host and port, path under the base's: :mod:`service.security.origins`); otherwise a key
the service needs (the Patient, and the Conditions unless the intake form names the complaints)
makes the call fail with 412 Precondition Failed. An empty Bundle is the same as ``null``.

What is fetched counts against ``FHIR_MAX_RESOURCES`` with the request's own resources
(:class:`service.http.limits.ResourceBudget`): the page that passes the cap ends the fetch with 413
``too-costly``, naming the prefetch key and the cap.

The queries to fetch are fetched at the same time, at most :data:`FETCHERS` at once per call
(a pool of the process), each following its own pages over one kept connection; each query has
the timeout (cut to the request's deadline) it had when they ran one after the other, and once
the budget is spent no query asks for another page.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import current_app

from cds.errors import FieldError
from cds.features import LOCAL_SYSTEM, Feature, record_fields
from cds.fhir import COMPLAINT_CODES, QUESTIONNAIRE_URL

from ..http import deadline, httpget, limits
from ..http.errors import BadRequest, PreconditionFailed, TooCostly
from ..security import origins

log = logging.getLogger("service")
MAX_PAGES = 5
MAX_PAGE_BYTES = 8 << 20
FETCHERS = 4
"""Queries of one call fetched at once (each holds at most one page of MAX_PAGE_BYTES)."""
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="gmed-prefetch")
"""The process's fetching threads, shared by the calls (each call takes at most FETCHERS)."""


DEMOGRAPHICS = ("age_years", "sex")  # from the Patient resource, not Observations


def _is_patient_reported_local(f: Feature) -> bool:
    return f.group == "intake" and f.coding.system == LOCAL_SYSTEM


def _query(f: Feature) -> str:
    """Which Observation query asks for ``f``: ``observations`` (clinical exam and
    standard-coded findings), ``observations-intake`` (patient-reported findings with local
    codes), ``observations-movement`` (movement analysis and the dynamometer's raw readings) or
    ``observations-safety`` (the red-flag questions)."""
    if f.role == "red_flag":
        return "observations-safety"
    if _is_patient_reported_local(f):
        return "observations-intake"
    raw_reading = f.role == "input" and f.norm is None and f.coding.system == LOCAL_SYSTEM
    if f.group == "movement" or raw_reading:
        return "observations-movement"
    return "observations"


def _code_list(intake: bool = False, *, key: str | None = None) -> str:
    """The codes of one Observation query (``intake``: ``observations-intake``). Four queries
    keep each expanded URL well under the 2,048 characters many servers accept (contract v2
    asks for ~70 findings). A finding with a standard code is asked for by it and by its local
    code (``Feature.codings``): an EHR may have stored either."""
    key = key or ("observations-intake" if intake else "observations")
    return ",".join(f"{c.system}|{c.code}" for f in record_fields()
                    if f.role != "rows" and f.name not in DEMOGRAPHICS and _query(f) == key
                    for c in f.codings)


def _complaint_codes() -> str:
    return ",".join(f"{system}|{code}" for codes in COMPLAINT_CODES.values()
                    for system, code in codes)


TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    **{key: ("Observation?patient={{context.patientId}}&code=" + _code_list(key=key)
             + "&_sort=-date&_count=200")
       for key in ("observations", "observations-intake", "observations-movement",
                   "observations-safety")},
    "conditions": ("Condition?patient={{context.patientId}}&code=" + _complaint_codes()
                   + "&clinical-status=active"),
    "intake": ("QuestionnaireResponse?patient={{context.patientId}}&questionnaire="
               + QUESTIONNAIRE_URL + "&status=completed&_sort=-authored&_count=1"),
}
DESCRIPTIONS = {
    "patient": "Patient demographics (sex, birth date -> age)",
    "observations": "Recent exam and movement findings and pain score, by the contract's codes",
    "observations-intake": "Patient-reported findings recorded as Observations (local codes)",
    "observations-movement": "Movement-analysis findings and raw dynamometer readings",
    "observations-safety": "Red-flag questions answered and recorded as Observations",
    "conditions": "Active presenting complaints (patellofemoral pain, IT band syndrome, low back "
                  "pain)",
    "intake": "The latest completed gmed-intake QuestionnaireResponse",
}


@dataclass
class Gathered:
    """What the prefetch (and any fetching) produced."""

    resources: list[Any] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # keys neither prefetched nor fetched
    empty: list[str] = field(default_factory=list)         # keys the client has no data for
    refused: str | None = None  # why the service could not fetch (named in a 412)


def _is_outcome(value: Mapping[str, Any]) -> bool:
    kind = value.get("resourceType")
    if kind == "OperationOutcome":
        return True
    if kind != "Bundle":
        return False
    entries = value.get("entry")
    return (isinstance(entries, list) and bool(entries)
            and all(isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
                    and e["resource"].get("resourceType") == "OperationOutcome"
                    for e in entries))


def _is_empty(value: Mapping[str, Any]) -> bool:
    return value.get("resourceType") == "Bundle" and not value.get("entry")


def render(template: str, context: Mapping[str, Any]) -> str:
    """A template with its ``{{context.x}}`` tokens replaced (values URL-quoted)."""
    out = template
    for key, value in context.items():
        if isinstance(value, str | int):
            out = out.replace("{{context." + key + "}}", urllib.parse.quote(str(value), safe=""))
    return out


class _SharedBudget:
    """A call's :class:`~service.limits.ResourceBudget` spent from several fetching threads: one
    page counted at a time; once spent (413), :attr:`spent` tells the other queries to stop."""

    def __init__(self, budget: limits.ResourceBudget) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self.spent = threading.Event()

    def spend(self, page: Any, where: str) -> None:
        with self._lock:
            if self.spent.is_set():
                raise _Stopped
            try:
                self._budget.spend(page, where)
            except TooCostly:
                self.spent.set()
                raise


class _Stopped(Exception):
    """Another query of the call spent the budget: this one stops (the 413 is the other's)."""


def _fetch(server: str, relative: str, auth: Mapping[str, Any], timeout: float,
           budget: limits.ResourceBudget | _SharedBudget, key: str,
           private_hosts: list[str] | tuple[str, ...] = ()) -> Any:
    """GET one prefetch query from the client's FHIR server, following ``next`` pages on that
    server only (:func:`service.security.origins.within` its base URL). The pages together take at most
    ``timeout`` seconds (connect, headers and body: :mod:`service.http.httpget`, with its address
    filter), each is capped at :data:`MAX_PAGE_BYTES`, and no redirect is followed, so the
    bearer token never leaves the server the client named. Each page is counted against
    ``budget`` before the next is asked for (413 once it is spent)."""
    ends = time.monotonic() + timeout
    url: str | None = f"{server.rstrip('/')}/{relative}"
    headers = {"Accept": "application/fhir+json",
               "Authorization": f"Bearer {auth['access_token']}"}
    pages: list[dict[str, Any]] = []
    with httpget.Session() as session:  # the pages of one query: one connection
        while url and len(pages) < MAX_PAGES:
            if not origins.within(url, server):
                break  # never follow a link off the server we were given
            if isinstance(budget, _SharedBudget) and budget.spent.is_set():
                raise _Stopped
            url = _page(url, headers, ends, budget, key, private_hosts, session, pages)
    return pages[0] if len(pages) == 1 else {"resourceType": "Bundle", "type": "collection",
                                             "entry": [{"resource": p} for p in pages]}


def _page(url: str, headers: Mapping[str, str], ends: float,
          budget: limits.ResourceBudget | _SharedBudget, key: str,
          private_hosts: list[str] | tuple[str, ...], session: httpget.Session,
          pages: list[dict[str, Any]]) -> str | None:
    """One page of a query, counted and kept in ``pages``: the URL of the next, if any."""
    fetched = httpget.get(url, headers, ends - time.monotonic(), MAX_PAGE_BYTES,
                          private_hosts=private_hosts, session=session)
    if fetched.status != 200:
        raise ValueError("a FHIR server answered with a status other than 200")
    page = orjson.loads(fetched.body)  # its errors are ValueErrors, as json's
    if not isinstance(page, dict):
        raise ValueError("a FHIR server answered with something other than a resource")
    budget.spend(page, f"prefetch.{key}")
    pages.append(page)
    links = page.get("link")
    return next((link["url"] for link in (links if isinstance(links, list) else [])
                 if isinstance(link, Mapping) and link.get("relation") == "next"
                 and isinstance(link.get("url"), str)), None)


def _can_fetch(request: Mapping[str, Any], allowlist: list[str]) -> bool:
    server, auth = request.get("fhirServer"), request.get("fhirAuthorization")
    return (isinstance(server, str) and isinstance(auth, Mapping)
            and isinstance(auth.get("access_token"), str)
            and origins.allowed(server, allowlist))


ALLOWLIST_KEY = "FHIR_SERVER_ALLOWLIST (environment GMED_FHIR_SERVER_ALLOWLIST)"


def _refusal(request: Mapping[str, Any]) -> str:
    """Why an absent key cannot be fetched, naming the configuration that decides it (logged:
    the reason only, never the server's URL or the token)."""
    if not isinstance(request.get("fhirServer"), str):
        reason = "the request has no fhirServer"
    elif not isinstance(request.get("fhirAuthorization"), Mapping):
        reason = "the request has no fhirAuthorization"
    else:
        reason = f"its fhirServer is not on the service's allowlist, {ALLOWLIST_KEY}"
        log.info("fhirServer not on the allowlist", extra={"reason": "FHIR_SERVER_ALLOWLIST"})
    return reason


def gather(request: Mapping[str, Any], *, allowlist: list[str], timeout: float,
           private_hosts: list[str] | tuple[str, ...] = ()) -> Gathered:
    """Collect the resources of every template key, fetching what was not prefetched if allowed.

    Raises 400 for a prefetch value that is not a FHIR resource (or ``null``), 413 when a
    prefetched Bundle has more entries than ``FHIR_MAX_RESOURCES`` or what is fetched passes it.
    """
    prefetch = request.get("prefetch") or {}
    out = Gathered()
    most = int(current_app.config["FHIR_MAX_RESOURCES"])
    outcomes: dict[str, Any] = {}  # key -> (Gathered list, resource), ("fetch", query), Future
    for key, template in TEMPLATES.items():
        value = prefetch.get(key, ...) if isinstance(prefetch, Mapping) else ...
        if value is None:
            outcomes[key] = ("empty", None)
            continue
        if value is not ... and not ((type(value) is dict or isinstance(value, Mapping))
                                     and isinstance(value.get("resourceType"), str)):
            raise BadRequest(f"prefetch.{key} is not a FHIR resource",
                             [FieldError(f"prefetch.{key}", "type",
                                         "A prefetch value is a FHIR resource or null")])
        if value is not ... and not _is_outcome(value):
            if limits.fhir_items(value)[0] > most:
                limits.check_fhir_items(value, f"prefetch.{key}")  # 413, naming the key
            outcomes[key] = ("empty", None) if _is_empty(value) else ("resources", value)
            continue
        if not _can_fetch(request, allowlist):
            outcomes[key] = ("unavailable", None)
            out.refused = out.refused or _refusal(request)
            continue
        outcomes[key] = ("fetch", template)
    if any(where == "fetch" for where, _ in outcomes.values()):  # every value checked: now fetch
        _submit(outcomes, request, timeout, most, private_hosts)
    results = {key: o.result() if isinstance(o, Future) else o for key, o in outcomes.items()}
    for where, fetched in results.values():
        if where == "too-costly":
            raise fetched  # the query whose page passed the cap (the others stopped)
    if any(isinstance(o, Future) for o in outcomes.values()):
        deadline.check("prefetch")  # a fetch cut by the request's deadline: 503, as before
    for key, (where, value) in results.items():
        getattr(out, where).append(value if where == "resources" else key)
    return out


def _submit(outcomes: dict[str, Any], request: Mapping[str, Any], timeout: float, most: int,
            private_hosts: list[str] | tuple[str, ...]) -> None:
    """Each ``("fetch", template)`` of ``outcomes`` replaced by its Future in the pool, the
    queries sharing one budget of ``most`` resources and :data:`FETCHERS` slots."""
    budget = _SharedBudget(limits.ResourceBudget(most, request))
    slots = threading.BoundedSemaphore(FETCHERS)
    for key, (where, template) in outcomes.items():
        if where == "fetch":
            ends = time.monotonic() + deadline.bounded(timeout, "prefetch")
            outcomes[key] = _POOL.submit(
                _fetch_one, slots, ends, request["fhirServer"],
                render(template, request["context"]), request["fhirAuthorization"], budget,
                key, private_hosts)


def _fetch_one(slots: threading.BoundedSemaphore, ends: float, server: str, relative: str,
               auth: Mapping[str, Any], budget: _SharedBudget, key: str,
               private_hosts: list[str] | tuple[str, ...]) -> tuple[str, Any]:
    """One query fetched by ``ends`` (in a pool thread, holding one of the call's ``slots``):
    where it goes in :class:`Gathered` and the resource, or ``("too-costly", error)``."""
    with slots:
        try:
            fetched = _fetch(server, relative, auth, ends - time.monotonic(), budget, key,
                             private_hosts)
        except TooCostly as e:
            return "too-costly", e
        except (_Stopped, httpget.FetchError, ValueError, RecursionError):
            # another query spent the budget; or unreachable, timed out, too large, not 200,
            # not JSON, or nested past the parser
            return "unavailable", None
    if isinstance(fetched, Mapping) and not _is_outcome(fetched) and not _is_empty(fetched):
        return "resources", fetched
    return ("unavailable" if isinstance(fetched, Mapping) and _is_outcome(fetched)
            else "empty"), None


def require(gathered: Gathered, has_intake_complaints: bool) -> None:
    """412 when the Patient, or anything that could name the complaints, cannot be had."""
    errors = []
    for key in ("patient", "conditions"):
        if key == "conditions" and has_intake_complaints:
            continue
        if key in gathered.unavailable:
            errors.append(FieldError(f"prefetch.{key}", "required",
                                     f"{DESCRIPTIONS[key]}: not prefetched, and the service "
                                     f"cannot fetch it: {gathered.refused or 'no fhirServer access'}"
                                     ))
        elif key == "patient" and key in gathered.empty:
            errors.append(FieldError("prefetch.patient", "required",
                                     "Patient: the client has no Patient resource for this call"))
    if errors:
        raise PreconditionFailed("Required data is absent and cannot be fetched", errors)
