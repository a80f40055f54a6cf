"""One way to assess for every route: assess, store (with the audit line), count.

:func:`assess_and_record` is used by ``POST /v1/assessments``, the CDS Hooks services and the
clinician page's form; the batch route uses its two halves (:func:`prepare`, then one
:meth:`~service.store.Store.write` of every record's rows and :func:`count`) so that its records
are committed in one transaction. Shadow scoring (:mod:`service.serving.shadow`) is hooked here, once,
for every route. The typed :class:`~cds.assessment.Assessment` is kept
throughout; its JSON form is made once, here, for the store and the response.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cds
from cds.assessment import Assessment

from ..http.jsontext import EncodedJSON, encode_object
from ..http.metrics import count_prediction
from ..store import Work, get_store
from .model_host import get_model
from .shadow import shadow_assess

# the cards of an assessment (any answer made before it is stored) and the rows that keep them
Respond = Callable[[Assessment, str], tuple[Any, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Assessed:
    """One assessment as stored: its id, the typed Assessment, its JSON form (encoded once),
    and what ``respond`` answered for it (the cards of a CDS Hooks call), if anything."""

    id: str
    assessment: Assessment
    result: dict[str, Any]
    encoded: EncodedJSON
    answer: Any = None


def _assess(record: Mapping[str, Any], *, source: str, caller: str, issuer: str | None,
            patient_ref: str | None, extra_warnings: Iterable[Mapping[str, str]],
            hook_instance: str | None, respond: Respond | None
            ) -> tuple[Assessed, dict[str, Any]]:
    """The assessment of ``record`` and the fields that store it (``Store.assessment_work``)."""
    assessment = cds.assess(dict(record), model=get_model())
    if extra_warnings:
        assessment = dataclasses.replace(
            assessment, warnings=[*assessment.warnings, *(dict(w) for w in extra_warnings)])
    aid = get_store().new_id()
    answer, card_rows = respond(assessment, aid) if respond is not None else (None, None)
    result = assessment.to_dict()
    encoded = encode_object(result)
    fields = {"aid": aid, "source": source, "result": result, "result_json": encoded,
              "inputs": {k: v for k, v in record.items() if k != "patient_id"},
              "caller": caller, "issuer": issuer, "patient_ref": patient_ref,
              "hook_instance": hook_instance, "card_rows": card_rows}
    return Assessed(aid, assessment, result, encoded, answer), fields


def prepare(record: Mapping[str, Any], *, source: str, caller: str, issuer: str | None,
            patient_ref: str | None, extra_warnings: Iterable[Mapping[str, str]] = (),
            hook_instance: str | None = None,
            respond: Respond | None = None) -> tuple[Assessed, Work]:
    """Assess ``record`` (validated by :func:`cds.assess`) and the rows that store it, its
    cards and its audit line (not yet written). ``extra_warnings`` join the Assessment's
    (FHIR values set aside); ``respond`` renders what must be stored with it (cards, by id)."""
    assessed, fields = _assess(record, source=source, caller=caller, issuer=issuer,
                               patient_ref=patient_ref, extra_warnings=extra_warnings,
                               hook_instance=hook_instance, respond=respond)
    _, work = get_store().assessment_work(**fields)
    shadow_assess(record, assessed.result, assessed.id, work=work)  # stored with it, never shown
    return assessed, work


def count(assessed: Assessed) -> None:
    """Count a stored assessment's estimates in the metrics."""
    count_prediction(assessed.assessment)


def assess_and_record(record: Mapping[str, Any], *, source: str, caller: str,
                      issuer: str | None, patient_ref: str | None,
                      extra_warnings: Iterable[Mapping[str, str]] = (),
                      hook_instance: str | None = None, respond: Respond | None = None,
                      previous_id: str | None = None) -> Assessed:
    """Assess, store (one transaction: the assessment, its cards, its audit line, and its link
    to ``previous_id`` when it was made from an earlier one) and count one record."""
    assessed, fields = _assess(record, source=source, caller=caller, issuer=issuer,
                               patient_ref=patient_ref, extra_warnings=extra_warnings,
                               hook_instance=hook_instance, respond=respond)
    store = get_store()
    if previous_id:
        store.save_assessment_from(previous_id, **fields)
        shadow_assess(record, assessed.result, assessed.id)  # written now, never shown
    else:
        work = store.assessment_work(**fields)[1]
        shadow_assess(record, assessed.result, assessed.id, work=work)  # stored with it
        store.write(work)
    count(assessed)
    return assessed
