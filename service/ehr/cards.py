"""CDS Hooks cards, as the service answers them: :func:`cds.render.cards.cards` with this
service's orderable codes (:func:`service.ehr.orders.order_code`). The renderer, its constants and
the card layout are in :mod:`cds.render.cards`."""

from __future__ import annotations

from typing import Any

from cds.assessment import Assessment
from cds.render.cards import INDICATOR as INDICATOR
from cds.render.cards import OVERRIDE_REASONS as OVERRIDE_REASONS
from cds.render.cards import OVERRIDE_SYSTEM as OVERRIDE_SYSTEM
from cds.render.cards import SUMMARY_MAX as SUMMARY_MAX
from cds.render.cards import TOP_FACTORS as TOP_FACTORS
from cds.render.cards import TOPIC as TOPIC
from cds.render.cards import cards

from .orders import order_code


def build_cards(assessment: Assessment, assessment_id: str, base: str, *,
                patient_id: str | None = None, encounter_id: str | None = None,
                notes: list[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cards for an assessment, and the rows the store keeps for feedback."""
    return cards(assessment, assessment_id, base, order_code=order_code, patient_id=patient_id,
                 encounter_id=encounter_id, notes=notes)
