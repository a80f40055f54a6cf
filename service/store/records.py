"""The writes every store makes the same way, as :class:`~service.store.interface.Insert` values.

An implementation of :class:`~service.store.interface.Store` subclasses :class:`Records` and
gives :meth:`Records.write`, :meth:`Records.secret` and its reads; the rows of an assessment,
its cards, feedback, outcomes and audit lines (and the pseudonym of a patient reference, under
the key :mod:`service.security.keys` derives from the store's secret) are built here once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..security import keys
from .interface import Insert, Work, audit_row, now, summary


class Records:
    """The shared half of a store: the rows it writes (see the module docstring)."""

    _pseudonym_key: bytes | None = None

    def secret(self) -> bytes:
        raise NotImplementedError

    def write(self, work: Sequence[Insert]) -> None:
        raise NotImplementedError

    def pseudonym(self, patient_id: str | None, issuer: str | None = None) -> str | None:
        """The keyed pseudonym of a patient reference in ``issuer``'s namespace (``None``: auth
        off), of its NFC form (:func:`service.security.keys.pseudonym`): not reversible without the key."""
        if not patient_id:
            return None
        if self._pseudonym_key is None:
            self._pseudonym_key = keys.derive(self.secret()).pseudonym
        return keys.pseudonym(self._pseudonym_key, patient_id, issuer or "")

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def audit_event(self, caller: str, action: str, patient_ref: str | None,
                    returned: Any, model_version: str | None = None) -> None:
        """An audit line for an answer that stored no assessment (e.g. no cards)."""
        self.write([Insert("audit", (audit_row(
            caller=caller, action=action, patient_ref=patient_ref, model_version=model_version,
            returned=returned),))])

    def assessment_work(self, *, source: str, inputs: Mapping[str, Any],
                        result: Mapping[str, Any], patient_ref: str | None, caller: str,
                        hook_instance: str | None = None,
                        card_rows: list[dict[str, Any]] | None = None, returned: Any = None,
                        aid: str | None = None, result_json: Any = None,
                        issuer: str | None = None) -> tuple[str, Work]:
        """The rows of an assessment, its cards and its audit line (not yet written), and its
        id: :meth:`write` them, alone or with other assessments' in one transaction.

        ``result_json``: ``result`` already encoded (:class:`service.http.jsontext.EncodedJSON`: the
        response sends the same text); ``issuer``: the calling token's issuer, the only one the
        API shows it to."""
        aid = aid or self.new_id()
        model = result["model"]
        work: Work = [Insert("assessments", ({
            "id": aid, "created_at": now(), "patient_ref": patient_ref, "source": source,
            "hook_instance": hook_instance, "model_id": model["id"],
            "model_version": model["version"], "action": result["action"],
            "inputs": dict(inputs),
            "result": result_json if result_json is not None else dict(result),
            "issuer": issuer},))]
        if card_rows:
            work.append(Insert("cards", tuple({**c, "assessment_id": aid} for c in card_rows)))
        work.append(Insert("audit", (audit_row(
            caller=caller, action=source, patient_ref=patient_ref,
            model_version=model["version"], assessment_id=aid,
            returned=returned if returned is not None else summary(result)),)))
        return aid, work

    def save_assessment(self, **fields: Any) -> str:
        """Store an assessment, its cards and its audit line in one transaction; return its id
        (the fields of :meth:`assessment_work`)."""
        aid, work = self.assessment_work(**fields)
        self.write(work)
        return aid

    def save_assessment_from(self, previous_id: str, **fields: Any) -> str:
        """:meth:`save_assessment`, and in the same transaction the link to the assessment it
        was made from (``previous_id``, which must exist: the caller checked its patient)."""
        aid, work = self.assessment_work(**fields)
        work.append(Insert("assessment_links", ({"assessment_id": aid,
                                                 "previous_id": previous_id},)))
        self.write(work)
        return aid

    def save_feedback(self, items: list[dict[str, Any]], caller: str) -> None:
        received = now()
        self.write([Insert("feedback", tuple({**i, "received_at": received, "caller": caller}
                                             for i in items)),
                    Insert("audit", (audit_row(caller=caller, action="feedback",
                                               returned={"feedback": len(items)}),))])

    def save_outcome(self, *, assessment_id: str, complaint: str, hip_driver: bool,
                     confirmed_on: str | None, caller: str, patient_ref: str | None) -> str:
        oid = str(uuid.uuid4())
        self.write([Insert("outcomes", ({
            "id": oid, "assessment_id": assessment_id, "complaint": complaint,
            "hip_driver": hip_driver, "confirmed_on": confirmed_on, "recorded_at": now(),
            "caller": caller},)),
            Insert("audit", (audit_row(caller=caller, action="outcome", patient_ref=patient_ref,
                                       assessment_id=assessment_id,
                                       returned={"outcome": oid}),))])
        return oid

    def shadow_work(self, assessment_id: str, model_id: str, model_version: str,
                    scores: list[dict[str, Any]]) -> Work:
        """The row of a shadow model's estimates of assessment ``assessment_id`` (not yet
        written: :meth:`write` it with the assessment's rows, or after them)."""
        return [Insert("shadow_assessments", ({
            "id": self.new_id(), "assessment_id": assessment_id, "created_at": now(),
            "model_id": model_id, "model_version": model_version, "scores": scores},))]
