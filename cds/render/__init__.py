"""Renderers: each is a function of a typed :class:`~cds.assessment.Assessment`, nothing else.

=================  ==========================================  ===============================
renderer           function                                    media type / where it is used
=================  ==========================================  ===============================
JSON body          :func:`cds.render.body.json_body`           ``application/json`` (``/v1``)
FHIR               :func:`cds.render.risk_assessment.           ``application/fhir+json``
RiskAssessment     risk_assessment`
CDS Hooks cards    :func:`cds.render.cards.cards`              ``/cds-services/<id>``
text               :func:`cds.render.text.as_text`             ``cds assess --explain``
patient handout    :func:`cds.render.handout.handout` (and      ``/ui/assessments/<id>/handout``
                   ``handout_pdf``: reportlab, imported when   (``.pdf``)
                   a PDF is drawn)
HTML result        :func:`cds.render.html.result_view` (SVG:   ``/ui/assessments/<id>`` (the
fragment           :mod:`cds.render.svg`; markupsafe)          template stays in ``service``)
=================  ==========================================  ===============================

The JSON body's schema is derived from the dataclasses (:func:`cds.render.body.json_schemas`);
the OpenAPI document publishes it, so a field added to the type is documented without an edit.

A stored result (the ``to_dict()`` form) becomes an Assessment again with
:meth:`Assessment.from_dict <cds.assessment.Assessment.from_dict>`. A renderer computes nothing
clinical: everything it shows is in the Assessment.

Adding the next renderer (say ``application/x-summary+json``):

1. write ``cds/render/summary.py`` with ``def summary(assessment: Assessment, ...) -> ...``
   (no Flask here; a heavy library is imported inside the function, as ``handout_pdf`` does:
   ``tests/test_imports.py`` fails if ``import cds`` pulls one in);
2. re-export it below if it is light (no web, PDF or plotting library);
3. offer it where a route negotiates: add ``media type -> renderer`` to the route's offers
   (``CREATED`` / ``STORED`` in ``service/routes/assessments.py``), which
   :func:`service.http.negotiate.negotiate` chooses from by ``Accept``; add a recorded answer in
   ``tests/recorded/record.py`` and run
   ``PYTHONPATH=$PWD python -m tests.recorded.record``; a test in ``tests/test_render.py``.
"""

from .body import json_body as json_body
from .cards import cards as cards
from .risk_assessment import risk_assessment as risk_assessment
from .text import as_text as as_text

__all__ = ["as_text", "cards", "json_body", "risk_assessment"]
